"""A real distillation campaign through Hydra multirun -> submitit -> the local SLURM cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aad_bench.campaign.preflight import slurm_reachable
from aad_bench.campaign.status import campaign_status

pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(not slurm_reachable(), reason="SLURM not reachable (`sinfo` fails): "
                                 "run `bash slurm/local_up.sh` (CI does)")]


def test_distill_arms_finish_on_slurm(tmp_path):
    root = tmp_path / "camp"
    out = subprocess.run([sys.executable, "-m", "aad_bench.cli", "campaign", "launch", str(root), "--preset", "ci",
                          "--", "+ablation=smoke_distill", f"paths.out={tmp_path}"],
                         capture_output=True, text=True, timeout=400, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-3000:]
    rows = campaign_status(root)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"finished"}, rows
    methods = set()
    for r in rows:
        res = json.loads((Path(r["run_dir"]) / "results.json").read_text())
        assert res["status"] == "finished" and res["task"] == "distill"
        assert Path(r["run_dir"], "videos", "long", "index.json").exists() or res["method"] == "teacher"
        prov = json.loads((Path(r["run_dir"]) / "provenance.json").read_text())
        assert prov["slurm"]["SLURM_ARRAY_JOB_ID"] == r["slurm_job_id"].split("_")[0]
        methods.add(res["method"])
        if res["method"] == "symmetric":
            assert res["summary"]["disc"] == {"backbone": "causal", "head": "frame"}
    assert methods == {"aad1", "symmetric", "dmd"}

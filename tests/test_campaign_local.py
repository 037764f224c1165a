"""Campaigns on the local backend (real local submitit processes, no SLURM): relaunch while running, bad jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from aad_bench.campaign.index import CampaignIndex
from aad_bench.campaign.status import campaign_status

TINY_DISTILL = ["task=distill", "size=tiny", "method=aad1", "threads=1", "progress=false", "distill.ckpt_every=20",
                "method.gan.steps=200", "distill.share_stages=false"]


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aad_bench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _wait(cond, timeout: float, what: str) -> None:
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_relaunch_of_a_running_local_campaign_trains_nothing_twice(tmp_path):
    root, out = tmp_path / "camp", tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "aad_bench.cli", "campaign", "launch", str(root), "--preset",
                              "local", "--", *TINY_DISTILL, f"paths.out={out}"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _wait(lambda: any((root / "runs").glob("*/owner.lock")), 240, "the job to own its run folder")
        (run_dir,) = (root / "runs").iterdir()
        # a relaunch, and the same job started by hand into the same run folder, at once
        again, direct = (subprocess.Popen([sys.executable, "-m", "aad_bench.cli", *args], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True)
                         for args in (["campaign", "relaunch", str(root)],
                                      [*TINY_DISTILL, f"paths.out={out}", f"paths.runs={root / 'runs'}"]))
        (_, again_err), (_, direct_err) = again.communicate(timeout=300), direct.communicate(timeout=300)
        assert again.returncode == 0 and "skipped 1 job(s) (still running)" in again_err, again_err[-3000:]
        assert direct.returncode == 2 and "Traceback" not in direct_err, direct_err[-3000:]
        assert f"{run_dir} is in use by pid" in direct_err  # one line naming the owner
        assert first.poll() is None, "the job ended before the duplicates were tried: make it longer"
        text, _ = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, text[-3000:]
    rows = campaign_status(root)
    assert [r["status"] for r in rows] == ["finished"]
    index = CampaignIndex(root).records()
    assert sum(r["status"] == "running" for r in index) == 1  # one job process ever started training
    steps = [(r["stage"], r["step"]) for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())]
    assert len(steps) == len(set(steps)) and steps[-1] == ("gan", 200)
    assert not (run_dir / "owner.lock").exists()


def test_local_sweep_with_a_bad_job_in_an_awkward_folder(tmp_path):
    root = tmp_path / "c,1 $(x)"  # a sweep separator and a shell substitution in the campaign folder
    out = _cli("campaign", "launch", str(root), "--preset", "local", "--", "task=teacher", "size=tiny",
               "teacher.steps=2,-3", "progress=false", f"paths.out={tmp_path / 'out'}")
    assert out.returncode == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("aad-bench: error:")]
    assert len(errors) == 1 and "teacher.steps=-3: must be an integer >= 1" in errors[0], out.stderr[-3000:]
    rows = {next(o for o in r["overrides"] if o.startswith("teacher.steps")): r for r in campaign_status(root)}
    assert rows["teacher.steps=2"]["status"] == "finished" and Path(rows["teacher.steps=2"]["run_dir"]).parent \
        == root / "runs"
    assert rows["teacher.steps=-3"]["status"] == "failed" and "teacher.steps=-3" in rows["teacher.steps=-3"]["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c,1 $(x)", "out"]  # state in one folder only

"""On the real local SLURM cluster: a bad job in a sweep is a failed record, and a SLURM owner's lock goes stale
when SLURM is done with its job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from aad_bench.campaign.preflight import slurm_reachable
from aad_bench.campaign.status import campaign_status
from aad_bench.runfolder import RunFolder
from aad_bench.utils.ownership import FolderBusyError
from aad_bench.utils.slurm import slurm_active

pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(not slurm_reachable(), reason="SLURM not reachable (`sinfo` fails): "
                                 "run `bash slurm/local_up.sh` (CI does)")]


def test_bad_job_in_a_slurm_sweep_is_a_failed_record_and_the_sweep_goes_on(tmp_path):
    root = tmp_path / "camp"
    out = subprocess.run([sys.executable, "-m", "aad_bench.cli", "campaign", "launch", str(root), "--preset", "ci",
                          "--", "task=teacher", "size=tiny", "teacher.steps=2,abc", "progress=false",
                          f"paths.out={tmp_path / 'out'}"], capture_output=True, text=True, timeout=400,
                         env=dict(os.environ))
    assert out.returncode == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("aad-bench: error:")]
    assert len(errors) == 1 and "teacher.steps='abc': must be an integer >= 1" in errors[0], out.stderr[-3000:]
    rows = {next(o for o in r["overrides"] if o.startswith("teacher.steps")): r for r in campaign_status(root)}
    assert rows["teacher.steps=2"]["status"] == "finished" and rows["teacher.steps=2"]["slurm_job_id"]
    bad = rows["teacher.steps=abc"]
    assert bad["status"] == "failed" and "teacher.steps" in bad["error"] and not bad["slurm_job_id"]  # not submitted


def _sbatch_sleep(tmp_path) -> str:
    out = subprocess.run(["sbatch", "--parsable", "-p", "debug", "-c", "1", "--mem=100M", "-o", str(tmp_path / "o"),
                          "--wrap", "sleep 120"], capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip().split(";")[0]


def test_lock_of_a_slurm_owner_elsewhere_goes_stale_when_slurm_is_done(tmp_path):
    job = _sbatch_sleep(tmp_path)
    try:
        t0 = time.time()
        while slurm_active(job) is not True and time.time() - t0 < 60:
            time.sleep(0.5)
        run = RunFolder(tmp_path / "r")
        run.path.mkdir()
        owner = {"host": "node-elsewhere", "pid": 4242, "slurm_job_id": job, "since": time.time()}
        run.lock.path.write_text(json.dumps(owner))
        with pytest.raises(FolderBusyError, match=f"SLURM job {job}"):
            run.start("a: 1\n", {})
    finally:
        subprocess.run(["scancel", job], timeout=30)
    t0 = time.time()
    while slurm_active(job) is not False and time.time() - t0 < 60:
        time.sleep(0.5)
    run.start("a: 1\n", {})  # SLURM is done with the owner's job: its lock is stale
    assert json.loads(run.lock.path.read_text())["pid"] == os.getpid()

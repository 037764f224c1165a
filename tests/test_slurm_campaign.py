"""Campaigns against the real local SLURM cluster (slurm/local_up.sh; CI brings it up).

Hydra multirun -> aad_slurm launcher -> submitit -> SLURM array; tiny teacher jobs of seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aad_bench.campaign.index import CampaignIndex
from aad_bench.campaign.preflight import slurm_reachable
from aad_bench.campaign.status import campaign_status

pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(not slurm_reachable(), reason="SLURM not reachable (`sinfo` fails): "
                                 "run `bash slurm/local_up.sh` (CI does)")]
TINY = ["world=toy_tiny", "model=dit_tiny", "teacher=tiny", "task=teacher", "sample.n_videos=2",
        "progress=false"]


def campaign(*args: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``aad-bench campaign ...`` in a subprocess (Hydra keeps global state)."""
    return subprocess.run([sys.executable, "-m", "aad_bench.cli", "campaign", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def results(run_dir: str) -> dict:
    return json.loads((Path(run_dir) / "results.json").read_text())


def test_smoke_campaign_three_jobs_then_relaunch_skips(tmp_path):
    root = tmp_path / "camp"
    out = campaign("launch", str(root), "--preset", "ci", "--", "+ablation=smoke", f"paths.out={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    rows = campaign_status(root)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"finished"}, rows
    for r in rows:
        assert r["slurm_job_id"] and "_" in r["slurm_job_id"]  # an array task
        assert Path(r["run_dir"]).parent == root / "runs"
        assert results(r["run_dir"])["status"] == "finished"
        prov = json.loads((Path(r["run_dir"]) / "provenance.json").read_text())
        assert prov["slurm"]["SLURM_ARRAY_JOB_ID"] == r["slurm_job_id"].split("_")[0]
        assert prov["git"]["snapshot"] and str(root / "code") in prov["git"]["snapshot"]
        assert prov["git"]["code_root"] == prov["git"]["snapshot"]  # jobs imported the snapshot
    mtimes = [(Path(r["run_dir"]) / "results.json").stat().st_mtime for r in rows]
    again = campaign("relaunch", str(root))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "skipped 3 job(s) (already finished)" in again.stderr
    assert mtimes == [(Path(r["run_dir"]) / "results.json").stat().st_mtime for r in rows]
    launches = sorted(p.name for p in (root / "launches").iterdir())
    assert len(launches) == 2 and not (root / "launches" / launches[1] / ".submitit").exists()
    st = campaign("status", str(root))
    assert st.returncode == 0 and "3 job(s): 3 finished" in st.stdout


def test_failing_job_recorded_then_retry_failed(tmp_path):
    root, out = tmp_path / "camp", tmp_path / "out"
    out.mkdir()
    # job seed=2 fails while running (its config is valid: the schema lets it through to SLURM)
    (out / "cache_s2").mkdir()
    (out / "cache_s2" / "toy").write_text("a file where job 2 wants its data cache folder")
    sweep = ["+ablation=smoke", f"paths.out={out}", "paths.cache='${paths.out}/cache_s${teacher.seed}'"]
    first = campaign("launch", str(root), "--preset", "ci", "--", *sweep)
    assert first.returncode != 0
    rows = {r["overrides"][0]: r for r in campaign_status(root)}
    assert [r["status"] for r in rows.values()].count("finished") == 2
    bad = rows["teacher.seed=2"]
    assert bad["status"] == "failed" and bad["error"] and "cache_s2" in bad["error"], bad
    assert bad["log_out"] and Path(bad["log_out"]).exists()
    errors = [ln for ln in first.stderr.splitlines() if ln.startswith("aad-bench: error:")]
    assert len(errors) == 1 and "job 1 (teacher.seed=2" in errors[0] and "Traceback" not in first.stderr
    skip = campaign("relaunch", str(root))  # failed jobs stay failed without --retry-failed
    assert skip.returncode == 0 and "failed, not retried" in skip.stderr, skip.stderr[-2000:]
    (out / "cache_s2" / "toy").unlink()
    retry = campaign("relaunch", str(root), "--retry-failed")
    assert retry.returncode == 0, retry.stderr[-3000:]
    assert "skipped 2 job(s)" in retry.stderr
    assert {r["status"] for r in campaign_status(root)} == {"finished"}


def _wait(cond, timeout: float, what: str) -> None:
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.3)


def _last_teacher_ckpt(out: Path) -> Path:
    return sorted(out.glob("cache/teacher/*/checkpoints/*.pt"))[-1]


def test_preemption_requeue_resumes_to_same_result(tmp_path):
    import submitit
    import torch

    long = [*TINY, "teacher.steps=400", "teacher.ckpt_every=10", "teacher.seed=11", "threads=1"]
    root, out = tmp_path / "camp", tmp_path / "out"
    cmd = ["campaign", "launch", str(root), "--preset", "ci", "--", *long, f"paths.out={out}"]
    proc = subprocess.Popen([sys.executable, "-m", "aad_bench.cli", *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    index = CampaignIndex(root)
    _wait(lambda: index.path.exists() and any(r["status"] == "running" for r in index.records()), 90, "start")
    _wait(lambda: len(list(out.glob("cache/teacher/*/checkpoints/*.pt"))) >= 2, 60, "a checkpoint")
    job_id = index.latest()[0]["slurm_job_id"]
    submitit.SlurmJob(folder=tmp_path, job_id=job_id)._interrupt()  # SIGTERM + USR2 = preemption
    text, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, text[-3000:]
    recs = index.records()
    assert any(r.get("note", "").startswith("preempted") for r in recs), recs
    assert max(r.get("restarts", 0) for r in recs) >= 1, recs  # SLURM requeued it
    row = campaign_status(root)[0]
    assert row["status"] == "finished"
    # resumed, not restarted: the teacher's log never goes back to its first step
    steps = [json.loads(ln)["step"] for ln in
             (_last_teacher_ckpt(out).parents[1] / "metrics.jsonl").read_text().splitlines()]
    assert steps.count(steps[0]) == 1 and steps[-1] == 400, steps[:5]
    # the same job uninterrupted, locally, in another output folder: identical weights and summary
    ref = tmp_path / "ref"
    done = subprocess.run([sys.executable, "-m", "aad_bench.cli", *long, f"paths.out={ref}"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    a = torch.load(_last_teacher_ckpt(out), weights_only=True)
    b = torch.load(_last_teacher_ckpt(ref), weights_only=True)
    assert _last_teacher_ckpt(out).name == _last_teacher_ckpt(ref).name
    _assert_same(a, b)
    ref_res = results(str(next((ref / "runs").iterdir())))
    assert results(row["run_dir"])["summary"]["speed_ratio"] == ref_res["summary"]["speed_ratio"]


def _assert_same(a, b) -> None:
    import torch

    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            if k not in ("time", "wall", "elapsed"):
                _assert_same(a[k], b[k])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)


def test_two_task_job_gets_torch_distributed_env_gloo(tmp_path):
    import submitit

    from aad_bench.campaign.distributed import allreduce_check

    ex = submitit.AutoExecutor(folder=tmp_path / "%j", cluster="slurm")
    ex.update_parameters(slurm_partition="debug", tasks_per_node=2, cpus_per_task=1, mem_gb=1, timeout_min=3)
    job = ex.submit(allreduce_check, "gloo")
    res = job.results()
    assert len(res) == 2
    assert sorted(r["rank"] for r in res) == [0, 1] and {r["world_size"] for r in res} == {2}
    assert {r["sum"] for r in res} == {3.0}  # 1 + 2
    assert len({(r["master_addr"], r["master_port"]) for r in res}) == 1


@pytest.mark.parametrize("extra, message", [
    (["hydra.launcher.gpus_per_node=4"], "impossible resources: 4 GPU(s)"),
    (["hydra.launcher.partition=null"], "no SLURM partition set"),
    (["hydra.launcher.partition=nope"], "partition 'nope' does not exist"),
    (["hydra.launcher.tasks_per_node=64"], "impossible resources: 64 CPU(s)"),
])
def test_bad_resources_fail_before_submitting(tmp_path, extra, message):
    root = tmp_path / "camp"
    out = campaign("launch", str(root), "--preset", "ci", "--", "+ablation=smoke", f"paths.out={tmp_path}",
                   *extra)
    assert out.returncode != 0
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("aad-bench: error:")]
    assert len(errors) == 1 and message in errors[0], out.stderr[-2000:]
    assert not (root / "index.jsonl").exists()  # nothing submitted


def test_slurm_unreachable_is_one_error_line(tmp_path):
    out = campaign("launch", str(tmp_path / "c"), "--preset", "ci", "--", "+ablation=smoke",
                   f"paths.out={tmp_path}", env={"SLURM_CONF": str(tmp_path / "missing.conf")})
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("aad-bench: error:")]
    assert out.returncode != 0 and len(errors) == 1 and "SLURM not reachable" in errors[0], out.stderr[-2000:]

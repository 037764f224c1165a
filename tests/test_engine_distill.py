"""The real distillation (teacher → I ODE → II DMD + critic → III GAN + R1/R2) under every engine on 2 gloo processes.

Every run shares one cache (teacher, ODE pairs), so all engines start Stage I from the same teacher. Stage ends are
compared with the single-process run's (each stage's result is a full checkpoint file from rank 0).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aad_bench.campaign.preflight import slurm_reachable
from aad_bench.campaign.status import campaign_status

# 3 steps per stage with learning rates large enough that every stage moves the weights (~1e-3)
ARGS = ["task=distill", "size=tiny", "progress=false", "distill.share_stages=false", "distill.keep_checkpoints=50",
        "distill.ckpt_every=1", "method.ode.steps=3", "method.dmd.steps=3", "method.gan.steps=3",
        "method.ode.lr=1e-3", "method.dmd.lr_gen=1e-3", "method.dmd.lr_critic=1e-3", "method.gan.lr_gen=1e-3",
        "method.gan.lr_d_backbone=1e-3", "method.gan.lr_d_head=1e-3"]
TOL = 5e-5  # max |w - w_single| at a stage end; the stages move the weights by ~1e-3 (DMD) and ~4e-4 (GAN)


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _cmd(out: Path, cache: Path, *extra: str, nproc: int = 1) -> list[str]:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] \
        if nproc > 1 else [sys.executable]
    return [*launch, "-m", "aad_bench.cli", *ARGS, f"paths.out={out}", f"paths.cache={cache}", *extra]


def stage_ends(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The student at the end of each stage (the full checkpoint files of the run)."""
    (run,) = (out / "runs").iterdir()
    ends = {}
    for p in sorted((run / "checkpoints").glob("*.pt")):
        state = torch.load(p, weights_only=True)
        ends[state["stage"]] = state["student"]
    return ends


def max_err(a: dict, b: dict) -> dict[str, float]:
    return {st: max((a[st][k] - b[st][k]).abs().max().item() for k in a[st]) for st in a}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    p = subprocess.run(_cmd(root / "single", root / "cache"), env=_env(), capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return root, stage_ends(root / "single")


def _distributed(root: Path, name: str, *extra: str) -> dict:
    p = subprocess.run(_cmd(root / name, root / "cache", *extra, nproc=2), env=_env(), capture_output=True,
                       text=True, timeout=900)
    ends = stage_ends(root / name) if (root / name / "runs").exists() else {}
    # DeepSpeed may abort at interpreter exit after the run is done (research/deepspeed.md): judged by the result
    assert p.returncode == 0 or "terminate called without" in p.stderr, p.stderr[-3000:]
    (run,) = (root / name / "runs").iterdir()
    assert json.loads((run / "results.json").read_text())["status"] == "finished"
    return {"ends": ends, "run": run, "log": p.stdout + p.stderr}


@pytest.mark.parametrize("engine", [pytest.param("ddp", marks=pytest.mark.slow), "fsdp",
                                    pytest.param("zero2", marks=pytest.mark.slow),
                                    pytest.param("zero3", marks=pytest.mark.slow)])
def test_every_stage_equals_single(reference, engine):
    root, ref = reference
    got = _distributed(root, engine, f"trainer={engine}")
    assert set(got["ends"]) == {"ode", "dmd", "gan"}
    errs = max_err(ref, got["ends"])
    assert all(e < TOL for e in errs.values()), errs
    prov = json.loads((got["run"] / "provenance.json").read_text())["distributed"]
    assert prov["world_size"] == 2 and prov["engine"] == {"zero2": "deepspeed", "zero3": "deepspeed"}.get(engine,
                                                                                                         engine)
    assert [r["rank"] for r in prov["ranks"]] == [0, 1]
    assert list((got["run"] / "tensorboard").glob("events.out.tfevents.*"))  # rank 0 tracked, once


@pytest.mark.slow
def test_accumulation_parts_are_the_same_on_one_or_two_processes(reference):
    """Global batch 4 = micro 2 x accumulation 2 x dp 1 = micro 1 x accumulation 2 x dp 2: same numbers."""
    root, _ = reference
    batch4 = [f"method.{s}.batch=4" for s in ("ode", "dmd", "gan")]
    p = subprocess.run(_cmd(root / "single_acc", root / "cache", *batch4, "trainer.micro_batch=2"), env=_env(),
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    got = _distributed(root, "ddp_acc", "trainer=ddp", "trainer.micro_batch=1", *batch4)
    assert all(e < TOL for e in max_err(stage_ends(root / "single_acc"), got["ends"]).values())


def _rank_pids(parent: int) -> dict[int, int]:
    """RANK -> pid of torchrun's worker processes."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = dict(kv.split("=", 1) for kv in (d / "environ").read_text().split("\0") if "=" in kv)
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and "RANK" in env:
            out[int(env["RANK"])] = int(d.name)
    return out


def test_sigkill_one_rank_mid_stage_then_resume_equals_uninterrupted(reference):
    root, ref = reference
    out = root / "killed"
    proc = subprocess.Popen(_cmd(out, root / "cache", "trainer=fsdp", nproc=2), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed, deadline = False, time.time() + 400
    try:
        while time.time() < deadline and proc.poll() is None:
            if [p for p in out.glob("runs/*/checkpoints/*-dmd-0000001") if (p / "meta.json").exists()]:
                os.kill(_rank_pids(proc.pid)[1], signal.SIGKILL)  # rank 1 dies mid-Stage II
                killed = True
                break
            time.sleep(0.05)
    finally:
        proc.wait(timeout=120)
    assert killed and proc.returncode != 0, "the run finished before rank 1 could be killed"
    got = _distributed(root, "killed", "trainer=fsdp")
    assert "resuming from stage dmd" in got["log"]
    assert all(e < TOL for e in max_err(ref, got["ends"]).values())


@pytest.mark.slurm
@pytest.mark.skipif(not slurm_reachable(), reason="SLURM not reachable (`sinfo` fails): run `bash slurm/local_up.sh`")
def test_two_task_slurm_job_is_one_distributed_run(tmp_path):
    camp = tmp_path / "camp"
    p = subprocess.run([sys.executable, "-m", "aad_bench.cli", "campaign", "launch", str(camp), "--preset",
                        "ci_2task", "--", *ARGS, "trainer=ddp", f"paths.out={tmp_path}"],
                       capture_output=True, text=True, timeout=900, env=_env())
    assert p.returncode == 0, p.stderr[-3000:]
    (row,) = campaign_status(camp)
    run = Path(row["run_dir"])
    assert row["status"] == "finished" and json.loads((run / "results.json").read_text())["status"] == "finished"
    prov = json.loads((run / "provenance.json").read_text())["distributed"]
    assert prov["world_size"] == 2 and prov["engine"] == "ddp"
    assert prov["slurm"]["SLURM_NTASKS"] == "2" and prov["slurm"]["SLURM_JOB_ID"]
    assert sorted(r["rank"] for r in prov["ranks"]) == [0, 1]


@pytest.mark.slow
def test_wan_backbone_trains_under_fsdp(tmp_path):
    """model=wan_tiny (diffusers' Wan layers, its own attention and KV cache) trains under FSDP2.

    Stage I equals one process. Stages II and III are only checked to finish: with an empty prompt, Wan's
    cross-attention query weights get a gradient that is rounding noise (about 25% apart between a batch of 4 and
    two of 2, in one process), Adam turns that noise into lr-sized steps, and the runs drift apart by ~1e-3.
    """
    wan = ["model=wan_tiny", "model.channels=3", "model.height=16", "model.width=16", "model.chunk=4",
           "model.window_frames=8", "codec=identity", "method.ode.steps=2", "method.dmd.steps=2",
           "method.gan.steps=2"]
    p = subprocess.run(_cmd(tmp_path / "single", tmp_path / "cache", *wan), env=_env(), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    got = _distributed(tmp_path, "fsdp", "trainer=fsdp", *wan)
    assert set(got["ends"]) == {"ode", "dmd", "gan"}
    assert max_err(stage_ends(tmp_path / "single"), got["ends"])["ode"] < 1e-4


@pytest.mark.slow
def test_early_stop_rollback_under_fsdp(reference):
    """A failed motion check under FSDP restores the last passing (here: Stage I) weights on every rank, and the
    snapshot travels in the sharded checkpoints (``passed.pt``)."""
    root, ref = reference
    stop = ["method.dmd.early_stop.criterion=motion", "method.dmd.early_stop.every=2",
            "method.dmd.early_stop.reference=data", "method.dmd.early_stop.threshold=1000"]
    got = _distributed(root, "rollback", "trainer=fsdp", "method.dmd.steps=4", *stop)
    info = json.loads((got["run"] / "results.json").read_text())["summary"]["stages"]["dmd"]
    assert info["stopped_early"] and info["kept_step"] == 0
    assert max(max_err({"x": ref["ode"]}, {"x": got["ends"]["dmd"]}).values()) < TOL

"""Kill a distillation run at any point, rerun the same command: it ends with the weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aad_bench.training.checkpoint import load_latest, save_checkpoint

ARGS = ["task=distill", "method=aad1", "size=tiny", "progress=false", "distill.share_stages=false",
        "method.ode.steps=4", "method.dmd.steps=4", "method.gan.steps=6", "distill.ckpt_every=1"]


def _cmd(out: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "aad_bench.cli", *ARGS, f"paths.out={out}", f"paths.cache={cache}"]


def _final_student(out: Path) -> dict:
    (run,) = (out / "runs").iterdir()
    return load_latest(run / "checkpoints")["student"]


def _kill_when(cmd: list[str], out: Path, stage: str, sig: int) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if any(f"-{stage}-" in p.name for p in out.glob("runs/*/checkpoints/*.pt")):
                proc.send_signal(sig)
                break
            time.sleep(0.05)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode != 0, "the run finished before it could be interrupted"


@pytest.mark.parametrize("stage,sig", [("gan", signal.SIGKILL),
                                       pytest.param("dmd", signal.SIGTERM, marks=pytest.mark.slow)])
def test_resume_matches_uninterrupted(tmp_path, stage, sig):
    cache = tmp_path / "cache"  # teacher and ODE pairs shared: both runs start from the same teacher
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref"
    subprocess.run(_cmd(ref, cache), check=True, env=env, capture_output=True)
    broken = tmp_path / "broken"
    _kill_when(_cmd(broken, cache), broken, stage, sig)
    done = subprocess.run(_cmd(broken, cache), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming from stage" in done.stdout
    a, b = _final_student(ref), _final_student(broken)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_corrupt_latest_checkpoint_falls_back_with_warning(tmp_path, capsys):
    save_checkpoint(tmp_path, "dmd", 3, {"student": {"w": torch.ones(2)}})
    save_checkpoint(tmp_path, "dmd", 4, {"student": {"w": torch.zeros(2)}})
    latest = sorted(tmp_path.glob("*.pt"))[-1]
    latest.write_bytes(b"\x00" * 64)
    state = load_latest(tmp_path)
    assert state["step"] == 3 and torch.equal(state["student"]["w"], torch.ones(2))
    assert "unreadable" in capsys.readouterr().out

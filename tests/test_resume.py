"""Kill a distillation run at any point, rerun the same command: it ends with the weights of an uninterrupted run.

Bit-identical (``torch.equal``), also when the run reuses a cached Stage I + II (``distill.share_stages``). The
kills are real ``SIGKILL``s of the training process, sent right after a given checkpoint is on disk: at every
stage boundary (the stage-end checkpoint) and after every mid-stage checkpoint of a tiny config.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aad_bench.training.checkpoint import load_final, load_latest, save_checkpoint

ARGS = ["task=distill", "method=aad1", "size=tiny", "progress=false", "threads=1", "distill.ckpt_every=1"]
STAGES = ["ode", "dmd", "gan"]
# every checkpoint the tiny run writes: 2 steps per stage, a checkpoint after each (step 2 = the stage's end)
ALL_POINTS = [f"{s}-{k}" for s in STAGES for k in (1, 2)]

# the training process SIGKILLs itself right after the checkpoint (stage, step) named by KILL_AT is written
KILLER = """
import os, signal, sys
import aad_bench.training.checkpoint as ck
_save, _at = ck.save_checkpoint, os.environ["KILL_AT"]
def save_then_die(folder, stage, step, state, keep=2):
    path = _save(folder, stage, step, state, keep)
    if f"{stage}-{step}" == _at:
        os.kill(os.getpid(), signal.SIGKILL)
    return path
ck.save_checkpoint = save_then_die  # bound before any module imports it by name
from aad_bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _distill(out: Path, cache: Path, share: bool, kill_at: str | None = None) -> subprocess.CompletedProcess:
    args = [*ARGS, f"paths.out={out}", f"paths.cache={cache}", f"distill.share_stages={str(share).lower()}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if kill_at:
        cmd = [sys.executable, "-c", KILLER, *args]
        env["KILL_AT"] = kill_at
    else:
        cmd = [sys.executable, "-m", "aad_bench.cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _run_dir(out: Path) -> Path:
    (run,) = (out / "runs").iterdir()
    return run


def _final(out: Path) -> dict[str, torch.Tensor]:
    return load_final(_run_dir(out) / "checkpoints", STAGES)["student"]


def _steps(out: Path) -> list[tuple[str, int]]:
    lines = (_run_dir(out) / "metrics.jsonl").read_text().splitlines()
    return [(r["stage"], r["step"]) for r in map(json.loads, lines)]


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} of {len(a)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """The teacher cache (shared, so every run starts from the same teacher) and one uninterrupted run."""
    root = tmp_path_factory.mktemp("resume")
    cache, ref = root / "cache", root / "ref"
    done = _distill(ref, cache, share=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return cache, ref


def _kill_chain(out: Path, cache: Path, share: bool, points: list[str]) -> subprocess.CompletedProcess:
    """Kill at each point in turn (each rerun resumes from the previous kill), then finish."""
    for at in points:
        killed = _distill(out, cache, share, kill_at=at)
        assert killed.returncode == -signal.SIGKILL, f"not killed at {at}: {killed.stderr[-2000:]}"
        assert any(p.name.endswith(f"-{at.split('-')[0]}-{int(at.split('-')[1]):07d}.pt")
                   for p in (_run_dir(out) / "checkpoints").iterdir()), at
    done = _distill(out, cache, share)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_kill_after_stage_ii_and_mid_stage_iii_resumes_identically(reference, tmp_path):
    cache, ref = reference
    done = _kill_chain(tmp_path / "run", cache, False, ["dmd-2", "gan-1"])  # dmd-2: the Stage II/III boundary
    assert "resuming from stage gan step 1" in done.stdout
    _assert_identical(_final(ref), _final(tmp_path / "run"))
    assert _steps(tmp_path / "run") == _steps(ref)  # one metrics row per (stage, step)


@pytest.mark.slow
def test_kill_at_every_checkpoint_resumes_identically(reference, tmp_path):
    cache, ref = reference
    _kill_chain(tmp_path / "run", cache, False, ALL_POINTS)
    _assert_identical(_final(ref), _final(tmp_path / "run"))
    assert _steps(tmp_path / "run") == _steps(ref)


def test_reused_stage_prefix_gives_identical_weights(reference, tmp_path):
    cache, ref = reference
    shutil.rmtree(cache / "stages", ignore_errors=True)
    first = _distill(tmp_path / "a", cache, share=True)  # computes Stage I + II and stores them in the cache
    assert first.returncode == 0 and "reusing stages" not in first.stdout, first.stderr[-3000:]
    again = _distill(tmp_path / "b", cache, share=True)
    assert again.returncode == 0 and "reusing stages ['ode', 'dmd']" in again.stdout, again.stderr[-3000:]
    _assert_identical(_final(ref), _final(tmp_path / "a"))
    _assert_identical(_final(ref), _final(tmp_path / "b"))


@pytest.mark.slow
def test_kill_chain_with_shared_prefix(reference, tmp_path):
    cache, ref = reference
    shutil.rmtree(cache / "stages", ignore_errors=True)
    # computing run killed at each boundary (before and after it stores its prefix), then a reusing run killed
    _kill_chain(tmp_path / "a", cache, True, ["ode-2", "dmd-2", "gan-1"])
    _kill_chain(tmp_path / "b", cache, True, ["gan-1", "gan-2"])
    _assert_identical(_final(ref), _final(tmp_path / "a"))
    _assert_identical(_final(ref), _final(tmp_path / "b"))


def test_corrupt_latest_checkpoint_falls_back_with_warning(tmp_path, capsys):
    save_checkpoint(tmp_path, "dmd", 3, {"student": {"w": torch.ones(2)}})
    save_checkpoint(tmp_path, "dmd", 4, {"student": {"w": torch.zeros(2)}})
    latest = sorted(tmp_path.glob("*.pt"))[-1]
    latest.write_bytes(b"\x00" * 64)
    state = load_latest(tmp_path)
    assert state["step"] == 3 and torch.equal(state["student"]["w"], torch.ones(2))
    assert "unreadable" in capsys.readouterr().out

"""Stage-tagged checkpoints: atomic writes, latest + previous kept, corrupt latest falls back to the previous one.

Files are ``<stage>-<step:07d>.pt`` (a global ``seq`` makes "latest" well-defined across stages). Loading uses
``torch.load(weights_only=True)``: a checkpoint is data, never code.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any

import torch

from aad_bench.utils.io import atomic_write_bytes

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(\d{4})-(?P<stage>[a-z0-9_]+)-(?P<step>\d{7})\.pt$")


class CheckpointError(RuntimeError):
    """No usable checkpoint where one is required."""


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.pt") if _NAME.match(p.name)) if folder.is_dir() else []


def save_checkpoint(folder: str | Path, stage: str, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Atomically save ``state``; keep only the newest ``keep`` files."""
    folder = Path(folder)
    existing = _entries(folder)
    seq = int(existing[-1].name[:4]) + 1 if existing else 0
    buf = io.BytesIO()
    torch.save({**state, "stage": stage, "step": step}, buf)
    path = atomic_write_bytes(folder / f"{seq:04d}-{stage}-{step:07d}.pt", buf.getvalue())
    for old in _entries(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_latest(folder: str | Path) -> dict[str, Any] | None:
    """The newest readable checkpoint (a corrupt newest one is skipped with a warning), or None."""
    for path in reversed(_entries(Path(folder))):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated zip, bad pickle opcode, ...
            log.warning("checkpoint %s is unreadable (%s); falling back to the previous one", path, e)
            print(f"warning: checkpoint {path} is unreadable ({type(e).__name__}); using the previous one")
    return None


def load_final(folder: str | Path, stages: list[str]) -> dict[str, Any]:
    """The checkpoint a finished run ended with (the newest file, which must hold every stage of ``stages``).

    Sampling and evaluation use this, never an older checkpoint: a corrupt or incomplete final checkpoint raises
    :class:`CheckpointError` naming the file instead of silently sampling earlier weights.
    """
    entries = _entries(Path(folder))
    if not entries:
        raise CheckpointError(f"{folder}: no checkpoint (the run has no final weights)")
    state = load_file(entries[-1])
    if list(state.get("stages_done", [])) != list(stages):
        raise CheckpointError(f"{entries[-1]}: newest checkpoint holds stages {state.get('stages_done')}, "
                              f"not the finished run's {list(stages)}")
    return state


def load_file(path: str | Path) -> dict[str, Any]:
    """Load one checkpoint file; a missing or corrupt file raises :class:`CheckpointError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: corrupt checkpoint ({type(e).__name__}); delete it to retrain") from None

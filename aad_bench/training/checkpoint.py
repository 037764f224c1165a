"""Stage-tagged checkpoints: atomic writes, latest + previous kept; resume may fall back, final weights never do.

Files are ``<seq:04d>-<stage>-<step:07d>.pt`` (a global ``seq`` makes "latest" well-defined across stages). Loading
uses ``torch.load(weights_only=True)``: a checkpoint is data, never code. Distributed engines checkpoint mid-stage as
a folder of the same name without ``.pt`` (sharded, see ``aad_bench.engine.checkpoint``); stage ends stay files.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from aad_bench.utils.io import atomic_write_bytes

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(\d{4})-(?P<stage>[a-z0-9_]+)-(?P<step>\d{7})(\.pt)?$")


class CheckpointError(RuntimeError):
    """No usable checkpoint where one is required."""


def _entries(folder: Path) -> list[Path]:
    """Checkpoint files and complete sharded folders, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name)
                  and (p.suffix == ".pt" or (p / "meta.json").is_file()))


def next_name(folder: str | Path, stage: str, step: int) -> str:
    """The name (without ``.pt``) of the next checkpoint in ``folder``."""
    existing = _entries(Path(folder))
    seq = int(existing[-1].name[:4]) + 1 if existing else 0
    return f"{seq:04d}-{stage}-{step:07d}"


def prune(folder: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (files or sharded folders)."""
    for old in _entries(Path(folder))[:-keep]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def save_checkpoint(folder: str | Path, stage: str, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Atomically save ``state``; keep only the newest ``keep`` checkpoints."""
    folder = Path(folder)
    buf = io.BytesIO()
    torch.save({**state, "stage": stage, "step": step}, buf)
    path = atomic_write_bytes(folder / f"{next_name(folder, stage, step)}.pt", buf.getvalue())
    prune(folder, keep)
    return path


def load_latest(folder: str | Path) -> dict[str, Any] | None:
    """The newest readable checkpoint (a corrupt newest one is skipped with a warning), or None.

    A sharded folder gives its bookkeeping plus ``"sharded"``: the folder, which the stage loads its models from.
    """
    for path in reversed(_entries(Path(folder))):
        if path.is_dir():
            from aad_bench.engine.checkpoint import read_meta

            return {**read_meta(path)["extra"], "sharded": str(path)}
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated zip, bad pickle opcode, ...
            log.warning("checkpoint %s is unreadable (%s); falling back to the previous one", path, e)
            print(f"warning: checkpoint {path} is unreadable ({type(e).__name__}); using the previous one")
    return None


def load_final(folder: str | Path, stages: list[str] | None = None, step: int | None = None) -> dict[str, Any]:
    """The checkpoint a finished run ended with: the newest file (with ``stages`` done, at ``step``, if given).

    Sampling, evaluation and the cached teacher use this, never an older checkpoint: a corrupt or incomplete
    final checkpoint raises :class:`CheckpointError` naming the file instead of silently using earlier weights.
    """
    entries = _entries(Path(folder))
    if not entries:
        raise CheckpointError(f"{folder}: no checkpoint (the run has no final weights)")
    state = load_file(entries[-1])
    if stages is not None and list(state.get("stages_done", [])) != list(stages):
        raise CheckpointError(f"{entries[-1]}: newest checkpoint holds stages {state.get('stages_done')}, "
                              f"not the finished run's {list(stages)}")
    if step is not None and state.get("step") != step:
        raise CheckpointError(f"{entries[-1]}: newest checkpoint is from step {state.get('step')}, "
                              f"not the finished run's last step {step}")
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

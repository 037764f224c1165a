"""Sharded, resumable checkpoints of prepared models, and their consolidation into one file for sampling.

A checkpoint is a folder ``<tag>/`` written by all ranks into ``.<tag>.partial/`` and renamed by rank 0 once every
rank is done (a crash leaves no half checkpoint behind)::

    <tag>/meta.json       engine, world size, cp, ZeRO stage, what is inside, the loop's own bookkeeping
          <model>/        torch.distributed.checkpoint shards (single/ddp/fsdp) or DeepSpeed's checkpoint
          <ema>/          an EMA in its weights' layout (models and EMAs have distinct names)

Resuming needs the same engine and world size (a requeued SLURM job keeps both); anything else fails with one line
before any state is touched. ``aad-bench consolidate <tag-folder> <out.pt>`` consolidates.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from aad_bench.engine.base import Trained
from aad_bench.engine.ema import ShardedEMA, zero3_consolidate
from aad_bench.engine.runtime import Runtime
from aad_bench.engine.settings import EngineError
from aad_bench.utils.io import atomic_write_bytes, atomic_write_json

FORMAT = "aad-sharded-1"


def save_sharded(folder: Path, tag: str, rt: Runtime, models: dict[str, Trained],
                 emas: dict[str, ShardedEMA] | None = None, extra: dict[str, Any] | None = None,
                 files: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    """Collective: checkpoint ``models`` (+ optimizers) and ``emas`` as ``folder/tag``; ``extra`` is JSON.

    ``files`` are whole state dicts that rank 0 holds (e.g. a snapshot of weights to roll back to), each saved as
    ``<name>.pt`` inside the folder, so they land or vanish with it.
    """
    if set(models) & set(emas or {}):
        raise ValueError(f"checkpoint names must be distinct, got models {sorted(models)} and EMAs {sorted(emas)}")
    final, tmp = folder / tag, folder / f".{tag}.partial"
    if rt.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    rt.barrier()
    for name, m in models.items():
        m.save(tmp / name)
    for name, e in (emas or {}).items():
        e.save(tmp / name)
    rt.barrier()
    if rt.is_main:
        for name, sd in (files or {}).items():
            torch.save(sd, tmp / f"{name}.pt")
        atomic_write_json(tmp / "meta.json", {
            "format": FORMAT, "engine": rt.settings.engine, "world_size": rt.world, "cp": rt.cp,
            "zero_stage": rt.settings.zero_stage, "models": {n: m.layout for n, m in models.items()},
            "emas": {n: e.model.layout for n, e in (emas or {}).items()}, "extra": extra or {}})
        old = folder / f".{tag}.old"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    rt.barrier()
    return final


def read_meta(path: Path) -> dict[str, Any]:
    """``meta.json`` of a checkpoint folder (raises naming the folder when it is not one)."""
    try:
        meta = json.loads((Path(path) / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise EngineError(f"{path}: not a sharded checkpoint ({type(e).__name__}: meta.json)") from None
    if meta.get("format") != FORMAT:
        raise EngineError(f"{path}: unknown checkpoint format {meta.get('format')!r} (expected {FORMAT})")
    return meta


def check_compatible(meta: dict[str, Any], rt: Runtime, path: Path) -> None:
    """The checkpoint must come from the same engine, world size and cp as this run."""
    for key, mine in (("world_size", rt.world), ("engine", rt.settings.engine), ("cp", rt.cp)):
        if meta.get(key) != mine:
            raise EngineError(f"{path}: sharded checkpoint from {key}={meta.get(key)} but this run has {key}={mine}: "
                              f"resume with the same trainer settings and process count, or consolidate it "
                              f"(aad-bench consolidate {path} out.pt) and start from the file")


def load_sharded(path: Path, rt: Runtime, models: dict[str, Trained],
                 emas: dict[str, ShardedEMA] | None = None) -> dict[str, Any]:
    """Collective: restore ``models`` and ``emas`` from ``path``; returns the saved ``extra``."""
    meta = read_meta(path)
    check_compatible(meta, rt, path)
    missing = sorted((set(models) - set(meta["models"])) | (set(emas or {}) - set(meta["emas"])))
    if missing:
        raise EngineError(f"{path}: checkpoint has no state for {', '.join(missing)}")
    for name, m in models.items():
        m.load(path / name)
    for name, e in (emas or {}).items():
        e.load(path / name)
    return meta["extra"]


def _dcp_model(folder: Path, key: str | None) -> dict[str, torch.Tensor]:
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "full.pt"
        dcp_to_torch_save(str(folder), str(out))
        state = torch.load(out, map_location="cpu", weights_only=True)
    return state[key] if key else state


def consolidate(path: Path, out: Path) -> Path:
    """One ``torch.save`` file ``{name: state_dict, ..., "meta": meta}`` of every model and EMA (one process)."""
    path, out = Path(path), Path(out)
    meta = read_meta(path)
    state: dict[str, Any] = {"meta": meta}
    for name in meta["models"]:
        if meta["engine"] == "deepspeed":
            from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

            sd = get_fp32_state_dict_from_zero_checkpoint(str(path / name), tag="state")
            state[name] = {k: v.detach() for k, v in sd.items()}
        else:
            state[name] = _dcp_model(path / name, "model")
    for name, layout in meta["emas"].items():
        folder = path / name
        state[name] = zero3_consolidate(folder) if layout == "zero3" else _dcp_model(folder, None)
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(out, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    """``aad-bench consolidate CKPT OUT``: one file from a sharded checkpoint (no GPU, no process group needed)."""
    ap = argparse.ArgumentParser(prog="aad-bench consolidate", description=main.__doc__)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    try:
        print(f"wrote {consolidate(a.checkpoint, a.out)}")
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

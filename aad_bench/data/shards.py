"""Resumable sharded jobs: items in fixed shards, shards dealt to ranks, one atomic file per finished shard.

Used for the latent cache and for teacher ODE pairs. A shard file exists only once complete, so an interrupted
job reruns exactly the missing shards. ``meta.json`` pins what the folder was built from; a different job in the
same folder is an error rather than a silent mix. Every shard has a small ``.json`` summary (kept, skipped);
rank 0 gathers them into ``index.json`` at the end.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from aad_bench.utils.io import atomic_write_bytes, atomic_write_json, read_json


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard_path(folder: Path, i: int) -> Path:
    """File of shard ``i``."""
    return folder / f"shard-{i:05d}.pt"


def save_shard(path: Path, data: dict[str, Any]) -> None:
    """Write a shard atomically (it appears only once complete)."""
    buf = io.BytesIO()
    torch.save(data, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_shard(path: Path) -> dict[str, Any]:
    """Read a shard (tensors, lists, numbers only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def run_shards(items: Sequence[Any], shard_size: int, folder: str | Path, work: Callable[[Sequence[Any]], dict],
               meta: dict[str, Any], desc: str = "shards", progress: bool = True,
               skipped: Sequence[dict] = ()) -> dict[str, Any]:
    """Run ``work`` on every unfinished shard of ``items`` that belongs to this rank; return the index.

    ``work(items)`` returns the shard's content: tensors/lists, with ``skipped`` = a list of ``{"id", "reason"}``
    and ``n`` = items kept. Shard ``i`` goes to rank ``i % world``. ``skipped`` = items dropped before sharding
    (recorded in the index too).
    """
    folder = Path(folder)
    rank, world = dist_info()
    if shard_size < 1:
        raise ValueError(f"shard size must be >= 1, got {shard_size}")
    n_shards = (len(items) + shard_size - 1) // shard_size
    meta = json.loads(json.dumps({**meta, "items": len(items), "shard_size": shard_size, "shards": n_shards}))
    if (folder / "meta.json").is_file() and read_json(folder / "meta.json") != meta:
        raise ValueError(f"{folder} holds shards of a different job (meta.json differs); use another folder")
    if rank == 0:
        atomic_write_json(folder / "meta.json", meta)
    mine = [i for i in range(n_shards) if i % world == rank]
    todo = [i for i in mine if not shard_path(folder, i).is_file()]
    from tqdm import tqdm

    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=desc, disable=not progress or rank != 0)
    for i in todo:
        data = work(items[i * shard_size:(i + 1) * shard_size])
        # the small summary first: the .pt appearing is what marks the shard finished
        atomic_write_json(shard_path(folder, i).with_suffix(".json"),
                          {"n": int(data.get("n", 0)), "skipped": list(data.get("skipped", []))})
        save_shard(shard_path(folder, i), data)
        bar.update(1)
    bar.close()
    if world > 1:
        torch.distributed.barrier()
    if rank == 0:
        atomic_write_json(folder / "index.json", _index(folder, n_shards, meta, list(skipped)))
    if world > 1:
        torch.distributed.barrier()
    return read_json(folder / "index.json")


def _index(folder: Path, n_shards: int, meta: dict[str, Any], skipped: list[dict]) -> dict[str, Any]:
    shards, kept = [], 0
    for i in range(n_shards):
        d = read_json(shard_path(folder, i).with_suffix(".json"))
        shards.append({"file": shard_path(folder, i).name, "n": int(d.get("n", 0))})
        kept += int(d.get("n", 0))
        skipped += list(d.get("skipped", []))
    return {"meta": meta, "shards": shards, "kept": kept, "skipped": skipped, "n_skipped": len(skipped)}

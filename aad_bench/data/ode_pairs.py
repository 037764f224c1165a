"""Teacher ODE pairs in resumable shards, generated across ranks (Stage I's regression targets).

The training code supplies ``make_pairs(items) -> {"x": [n, ...], "target": [n, ...], ...}`` (the teacher's
trajectory at the student's timesteps for a list of conditionings); this module shards the conditionings, runs
only the missing shards on each rank, and reads the finished set back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from aad_bench.data.shards import load_shard, run_shards
from aad_bench.utils.io import read_json


def build_ode_pairs(items: Sequence[Any], make_pairs: Callable[[Sequence[Any]], dict[str, torch.Tensor]],
                    folder: str | Path, meta: dict[str, Any], shard_size: int = 16,
                    progress: bool = True) -> Path:
    """Generate pairs for ``items`` into ``folder`` (a folder per teacher + settings; ``meta`` pins them)."""
    def work(part: Sequence[Any]) -> dict[str, Any]:
        out = dict(make_pairs(part))
        return {**out, "n": len(part), "skipped": []}

    run_shards(list(items), shard_size, folder, work, meta=meta, desc="teacher ODE pairs", progress=progress)
    return Path(folder)


def load_ode_pairs(folder: str | Path) -> dict[str, torch.Tensor]:
    """All finished pairs, concatenated along the first dimension."""
    folder = Path(folder)
    index = read_json(folder / "index.json")
    parts = [load_shard(folder / s["file"]) for s in index["shards"]]
    keys = [k for k, v in parts[0].items() if isinstance(v, torch.Tensor)]
    return {k: torch.cat([p[k] for p in parts]) for k in keys}

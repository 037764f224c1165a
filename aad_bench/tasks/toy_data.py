"""``task=toy_data``: only build (or find) the cached toy data set and print where it is."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from aad_bench.data.toy import world_config
from aad_bench.world.dataset import build_toy_dataset


def run(cfg: DictConfig) -> dict[str, Any]:
    """Build the toy data set of ``cfg.world`` in the cache."""
    root = build_toy_dataset(world_config(cfg), cfg.paths.cache, progress=cfg.progress)
    print(f"toy data set: {root}")
    return {"status": "finished", "path": str(root)}

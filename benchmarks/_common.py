"""Shared helpers for the benchmarks: the project's default config, timing, the JSON last line."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig

CONF = str(Path(__file__).resolve().parents[1] / "aad_bench" / "conf")


def default_cfg(*overrides: str) -> DictConfig:
    """The app config as ``aad-bench`` composes it (defaults + ``overrides``)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

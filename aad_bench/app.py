"""The Hydra application behind ``aad-bench [train]``: compose the config, pick the task, run it."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from aad_bench.config import CONF_DIR
from aad_bench.registry import UnknownNameError
from aad_bench.tasks import TASKS


def run_task(cfg: DictConfig) -> dict[str, Any]:
    """Run ``cfg.task`` and return its results dict (also written to the run folder)."""
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    return TASKS.get(cfg.task)(cfg)


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> Any:
    try:
        return run_task(cfg)
    except (UnknownNameError, ValueError, FileNotFoundError) as e:
        # configuration errors: one clear line, not a traceback from deep inside
        print(f"aad-bench: error: {e}", file=sys.stderr)
        if os.environ.get("AAD_BENCH_RAISE"):
            raise
        sys.exit(2)


def run_hydra(argv: list[str]) -> int:
    """Run the Hydra app with ``argv`` as its command line."""
    sys.argv = [sys.argv[0] if sys.argv else "aad-bench", *argv]
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    _hydra_main()
    return 0

"""The Hydra application behind ``aad-bench [train]``: compose the config, pick the task, run it.

Run folders are derived from the config (``<task>-<method>-s<seed>-<hash>``), so rerunning the same command
resumes the same run, and a finished run is never overwritten.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from aad_bench.registry import UnknownNameError
from aad_bench.utils.provenance import config_hash

log = logging.getLogger("aad_bench")
# keys that do not change what a run computes (where it writes, how it is launched or displayed)
NON_SEMANTIC = ("paths", "run_dir", "progress", "threads", "campaign", "slurm", "hydra")


def run_name(cfg: DictConfig) -> str:
    """Deterministic run-folder name for a config."""
    semantic = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in NON_SEMANTIC}
    method = cfg.method.name if "method" in cfg and "name" in cfg.method else "none"
    return f"{cfg.task}-{method}-s{cfg.seed}-{config_hash(semantic)}"


def run_dir(cfg: DictConfig) -> Path:
    """The run folder of this job (explicit ``run_dir`` wins)."""
    return Path(cfg.run_dir) if cfg.get("run_dir") else Path(cfg.paths.runs) / run_name(cfg)


def hydra_overrides() -> list[str]:
    """The task overrides of this job (from the command line / sweep), for indexes and reports."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except Exception:
        return []


def run_task(cfg: DictConfig) -> dict[str, Any]:
    """Run ``cfg.task`` and return its results dict (also written to the run folder)."""
    from aad_bench.tasks import TASKS

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    task = TASKS.get(cfg.task)
    return task(cfg)


try:  # campaign launchers (hydra/launcher: aad_slurm | aad_local) used by the slurm/ presets
    from aad_bench.campaign.launcher import register as _register_launchers

    _register_launchers()
except ImportError:  # hydra-submitit-launcher missing: plain runs still work
    pass

# an absolute path makes Hydra read the tree from disk (file://), which follows the group symlinks
CONF_DIR = str(Path(__file__).resolve().parent / "conf")


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

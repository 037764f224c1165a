"""The config tree and what is derived from a composed config.

Where the tree lives, how to compose it outside the app, the job's overrides, and the run folder a config
trains into.

Run folders are named from the config (``<task>-<method>-s<seed>-<hash>``), so rerunning the same command resumes
the same run, and a finished run is never overwritten.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from aad_bench.utils.provenance import config_hash

# an absolute path makes Hydra read the tree from disk (file://), which follows the group symlinks
CONF_DIR = str(Path(__file__).resolve().parent / "conf")
# keys that do not change what a run computes (where it writes, how it is launched or displayed)
NON_SEMANTIC = ("paths", "run_dir", "progress", "threads", "campaign", "slurm", "hydra")


def compose(overrides: list[str]) -> DictConfig:
    """Compose the app config with ``overrides`` as the command line would (inside or outside a Hydra app)."""
    from hydra import compose as h_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return h_compose(config_name="config", overrides=overrides)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return h_compose(config_name="config", overrides=overrides)


def hydra_overrides() -> list[str]:
    """The task overrides of this job (from the command line / sweep), for indexes and reports."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def run_name(cfg: DictConfig) -> str:
    """Deterministic run-folder name for a config."""
    semantic = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in NON_SEMANTIC}
    method = cfg.method.name if "method" in cfg and "name" in cfg.method else "none"
    return f"{cfg.task}-{method}-s{cfg.seed}-{config_hash(semantic)}"


def run_dir(cfg: DictConfig) -> Path:
    """The run folder of this job (explicit ``run_dir`` wins)."""
    return Path(cfg.run_dir) if cfg.get("run_dir") else Path(cfg.paths.runs) / run_name(cfg)

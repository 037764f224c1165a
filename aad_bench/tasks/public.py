"""``task=public``: sample a public checkpoint beside our runs (the Hydra form of ``aad-bench sample --public``).

``aad-bench task=public +public=self_forcing_dmd public.like=RUN [public.checkpoint.path=...]``; the public
settings are mapped onto the run config by :func:`aad_bench.sampling.public.compose_public`, which this task
calls again with the job's overrides so both forms give the same config (and the same run folder).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from aad_bench.config import hydra_overrides
from aad_bench.sampling.public import compose_public, run_public


def run(cfg: DictConfig) -> dict[str, Any]:
    """Sample ``cfg.public`` (select one with ``+public=<name>``)."""
    if not cfg.get("public"):
        raise ValueError("task=public needs a public model: +public=<name> (aad_bench/conf/public/)")
    keep = [o for o in hydra_overrides() if o.split("=", 1)[0].lstrip("+~") not in ("public", "task")]
    return run_public(compose_public(str(cfg.public.name), keep), keep)

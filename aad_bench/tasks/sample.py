"""``task=sample``: (re)sample a finished run's videos from its final weights.

The Hydra form of ``aad-bench sample RUN``: ``aad-bench task=sample run_dir=RUN [sample.n_videos=32 ...]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from aad_bench.config import hydra_overrides
from aad_bench.sampling.cli import sample_one
from aad_bench.sampling.videos import motion_line


def run(cfg: DictConfig) -> dict[str, Any]:
    """Sample the run folder named by ``run_dir`` with this job's ``sample.*`` overrides."""
    if not cfg.get("run_dir"):
        raise ValueError("task=sample needs run_dir=<a finished run folder> (or use `aad-bench sample RUN`)")
    overrides = [o.lstrip("+") for o in hydra_overrides() if o.lstrip("+").startswith("sample.")]
    summary = sample_one(Path(cfg.run_dir), overrides)
    print(f"{cfg.run_dir}/videos: {motion_line(summary)}")
    return {"status": "finished", "run_dir": str(cfg.run_dir), "sampled": summary}

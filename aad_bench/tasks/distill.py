"""``task=distill``: teacher (cached) → the method's stages → samples, in one self-documenting run folder.

Divergence is a result, not a crash: the run ends with status ``diverged`` (stage, step, reason) and a
multirun goes on with the next job. Any other error is recorded as ``failed`` with its reason, then raised.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from aad_bench.config import hydra_overrides, run_dir
from aad_bench.data.sources import data_speed, eval_conditions, latent_frames, training_data
from aad_bench.methods import MethodSpec
from aad_bench.models.backbones import backbone_config
from aad_bench.runfolder import RunFolder
from aad_bench.sampling.videos import sample_run
from aad_bench.training.distill import build_context, run_stages
from aad_bench.training.divergence import Diverged
from aad_bench.training.teacher import get_teacher


def _info(cfg: DictConfig, run: RunFolder, spec: MethodSpec) -> dict[str, Any]:
    return {"task": "distill", "method": spec.name, "method_info": spec.info(), "seed": cfg.seed,
            "run_name": run.path.name, "stages": list(spec.stages), "disc": spec.disc,
            "overrides": hydra_overrides(), "warmup": "dmd" in spec.stages if spec.disc else None,
            "campaign": cfg.get("campaign"), "run_dir": str(run.path)}


def run(cfg: DictConfig) -> dict[str, Any]:
    """Distil ``cfg.method`` and sample it; returns the final ``results.json`` content."""
    spec = MethodSpec.from_cfg(cfg.method)
    spec.validate(cfg.method, cfg.model.depth)  # bad combinations fail before any work
    backbone_config(cfg.model).check_frames(latent_frames(cfg))
    run = RunFolder(run_dir(cfg))
    if run.is_finished():
        print(f"already finished: {run.path} (not overwritten)")
        return run.results()
    info = _info(cfg, run, spec)
    run.start(OmegaConf.to_yaml(cfg), info)
    try:
        data = training_data(cfg)
        teacher, _ = get_teacher(cfg, data, progress=cfg.progress)
        model, stage_info = teacher, {}
        if spec.stages:
            _, probe, _ = eval_conditions(cfg, "eval", min(8, cfg.world.n_eval))
            ctx = build_context(cfg, run, teacher, data, data_speed(cfg), probe)
            run_stages(ctx)
            model, stage_info = ctx.student.eval().requires_grad_(False), ctx.stage_info
        summary = sample_run(cfg, run, model)
    except Diverged as d:
        print(f"run diverged: {d}")
        return run.finish("diverged", d.reason, stage=d.stage, step=d.step)
    except Exception as e:
        run.finish("failed", f"{type(e).__name__}: {e}")
        raise
    res = run.finish("finished", stage=(list(spec.stages) or ["teacher"])[-1],
                     summary={**summary, "stages": stage_info, "disc": info["disc"], "warmup": info["warmup"]})
    print(f"{cfg.method.name}: run folder {run.path}")
    print(f"  sprite speed generated/data {summary['speed_ratio']:.2f}, frozen clips {summary['frozen_share']:.0%}")
    return res

"""``task=distill``: teacher (cached) → the method's stages → samples, in one self-documenting run folder.

Divergence is a result, not a crash: the run ends with status ``diverged`` (stage, step, reason) and a
multirun goes on with the next job. Any other error is recorded as ``failed`` with its reason, then raised.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from aad_bench.methods import get_method
from aad_bench.models.dit import DiTConfig
from aad_bench.runfolder import RunFolder
from aad_bench.tasks.common import data_speed, eval_conditions, training_data
from aad_bench.tasks.sample_task import sample_run
from aad_bench.training.common import Diverged
from aad_bench.training.distill import build_context, run_stages
from aad_bench.training.teacher import get_teacher


def _info(cfg: DictConfig, run: RunFolder) -> dict[str, Any]:
    from aad_bench.app import hydra_overrides

    spec = get_method(cfg.method.name)
    disc = ({"backbone": cfg.method.gan.disc.backbone, "head": cfg.method.gan.disc.head}
            if "gan" in cfg.method.stages else None)
    return {"task": "distill", "method": spec.name, "seed": cfg.seed, "run_name": run.path.name,
            "stages": list(cfg.method.stages), "disc": disc, "overrides": hydra_overrides(),
            "warmup": "dmd" in cfg.method.stages if "gan" in cfg.method.stages else None,
            "campaign": cfg.get("campaign"), "run_dir": str(run.path)}


def run(cfg: DictConfig) -> dict[str, Any]:
    """Distil ``cfg.method`` and sample it; returns the final ``results.json`` content."""
    from aad_bench.app import run_dir

    get_method(cfg.method.name).validate(cfg.method, cfg.model.depth)  # bad combinations fail before any work
    DiTConfig(**cfg.model).check_frames(cfg.world.frames)
    run = RunFolder(run_dir(cfg))
    if run.is_finished():
        print(f"already finished: {run.path} (not overwritten)")
        return run.results()
    run.start(OmegaConf.to_yaml(cfg), _info(cfg, run))
    try:
        data = training_data(cfg)
        teacher, _ = get_teacher(cfg, data, progress=cfg.progress)
        dspeed = data_speed(cfg)
        student = teacher
        stage_info: dict[str, Any] = {}
        if cfg.method.stages:
            _, probe, _ = eval_conditions(cfg, "eval", min(8, cfg.world.n_eval))
            ctx = build_context(cfg, run, teacher, data, dspeed, probe)
            run_stages(ctx)
            student, stage_info = ctx.student.eval().requires_grad_(False), ctx.stage_info
        summary = sample_run(cfg, run, student, dspeed, teacher)
    except Diverged as d:
        print(f"run diverged: {d}")
        return run.finish("diverged", d.reason, stage=d.stage, step=d.step)
    except Exception as e:
        run.finish("failed", f"{type(e).__name__}: {e}")
        raise
    info = _info(cfg, run)
    res = run.finish("finished", stage=(list(cfg.method.stages) or ["teacher"])[-1],
                     summary={**summary, "stages": stage_info, "disc": info["disc"], "warmup": info["warmup"]})
    print(f"{cfg.method.name}: run folder {run.path}")
    print(f"  speed ratio generated/data {summary['speed_ratio']:.2f}, frozen clips {summary['frozen_share']:.0%}")
    return res

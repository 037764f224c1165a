"""``task=distill``: teacher (cached) → the method's stages → samples, in one self-documenting run folder.

Divergence is a result, not a crash: the run ends with status ``diverged`` (stage, step, reason) and a
multirun goes on with the next job. Any other error is recorded as ``failed`` with its reason, then raised.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from aad_bench.config import hydra_overrides, run_dir
from aad_bench.data.sources import check_source, data_speed, eval_conditions, latent_frames, training_data
from aad_bench.engine import Engine, setup
from aad_bench.engine.settings import check_run
from aad_bench.engine.tracking import Tracker
from aad_bench.methods import MethodSpec
from aad_bench.models.backbones import backbone_config
from aad_bench.runfolder import RunFolder
from aad_bench.sampling.videos import motion_line, sample_run
from aad_bench.training.distill import build_context, run_stages
from aad_bench.training.divergence import Diverged
from aad_bench.training.teacher import get_teacher


def _info(cfg: DictConfig, run: RunFolder, spec: MethodSpec) -> dict[str, Any]:
    return {"task": "distill", "method": spec.name, "method_info": spec.info(), "seed": cfg.seed,
            "run_name": run.path.name, "stages": list(spec.stages), "disc": spec.disc,
            "overrides": hydra_overrides(), "warmup": "dmd" in spec.stages if spec.disc else None,
            "campaign": cfg.get("campaign"), "run_dir": str(run.path)}


def run(cfg: DictConfig) -> dict[str, Any]:
    """Distil ``cfg.method`` and sample it; returns the final ``results.json`` content.

    Under a distributed engine every rank trains; rank 0 alone writes the run folder and samples.
    """
    spec = MethodSpec.from_cfg(cfg.method)
    spec.validate(cfg.method, cfg.model.depth)  # bad combinations fail before any work
    check_source(cfg, list(spec.stages))  # data=prompts: no teacher training, no Stage III, no data motion
    mcfg = backbone_config(cfg.model)
    mcfg.check_frames(latent_frames(cfg))
    engine = setup(cfg.get("trainer"))  # device, engine, world size vs cp: checked before the process group exists
    try:
        check_run(engine.rt.settings, engine.rt.dp_size, {f"method.{s}.batch": cfg.method[s].batch
                                                          for s in spec.stages},
                  mcfg.heads, latent_frames(cfg) * mcfg.tokens_per_frame,
                  cfg.model.get("arch", "dit"))  # batch splits and cp: one line, before any work
        return _run(cfg, spec, engine)
    finally:
        engine.rt.close()


def _run(cfg: DictConfig, spec: MethodSpec, engine: Engine) -> dict[str, Any]:
    rt = engine.rt
    run = RunFolder(run_dir(cfg))
    if rt.main_decides(run.is_finished):
        print(f"already finished: {run.path} (not overwritten)")
        return run.results()
    info = _info(cfg, run, spec)
    run.start(OmegaConf.to_yaml(cfg), info, extra_provenance={"distributed": rt.describe()})
    try:
        data = training_data(cfg)
        teacher, _ = get_teacher(cfg, data, progress=cfg.progress and rt.is_main, engine=engine)
        model, stage_info = teacher, {}
        if spec.stages:
            # early-stopping probes come from the val split: selecting weights on the scored eval split would
            # select on the test set (real video has no val split: its probes are cached clips' first frames)
            _, probe, metas = eval_conditions(cfg, "val", int(cfg.world.get("n_val", 8)))
            ctx = build_context(cfg, run, teacher, data, data_speed(cfg), probe, engine,
                                probe_gts=[m["gt"] for m in metas if "gt" in m],
                                probe_captions=[m.get("caption") for m in metas])
            try:
                run_stages(ctx)
            finally:
                ctx.tracker.close()
            model, stage_info = ctx.student.eval().requires_grad_(False), ctx.stage_info
        if not rt.is_main:  # rank 0 samples from the full weights; the others are done
            return {"status": "finished", "rank": rt.rank}
        summary = sample_run(cfg, run, model.to(rt.device))
        samples = Tracker(run.path, rt.settings.tracking, name=run.path.name)  # sample videos to TensorBoard
        for name in ("train_len", "long"):
            samples.video_set(run.videos(name), f"samples/{name}")
        samples.close()
    except Diverged as d:
        print(f"run diverged: {d}")
        return run.finish("diverged", d.reason, stage=d.stage, step=d.step)
    except Exception as e:
        run.finish("failed", f"{type(e).__name__}: {e}")
        raise
    res = run.finish("finished", stage=(list(spec.stages) or ["teacher"])[-1],
                     summary={**summary, "stages": stage_info, "disc": info["disc"], "warmup": info["warmup"]})
    print(f"{cfg.method.name}: run folder {run.path}")
    print(f"  {motion_line(summary)}")
    return res

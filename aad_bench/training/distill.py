"""The distillation driver: stages I → II → III as the method says, resumable at any point.

Resume: the latest checkpoint names its stage, step and the stages already done; the run continues there.
Sharing: when ``distill.share_stages`` is on, a finished stage prefix (same teacher, seed, student and stage
settings) is stored in the cache and reused by other runs — the arms of a discriminator ablation share one
Stage I + II instead of recomputing it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from aad_bench.data.loader import TrainingSet
from aad_bench.engine import Engine
from aad_bench.engine.engines import default_engine
from aad_bench.engine.tracking import Tracker
from aad_bench.methods import MethodSpec
from aad_bench.models.backbones import backbone_config, build_backbone
from aad_bench.models.dit import VideoDiT
from aad_bench.runfolder import RunFolder
from aad_bench.training.checkpoint import CheckpointError, load_file, load_latest
from aad_bench.training.context import DistillContext
from aad_bench.training.dmd import dmd_stage
from aad_bench.training.gan import gan_stage
from aad_bench.training.ode import ode_stage
from aad_bench.training.teacher import teacher_key_for
from aad_bench.utils.io import atomic_write_bytes
from aad_bench.utils.provenance import config_hash
from aad_bench.world.motion import VERSION as MOTION_VERSION


def numerics_key(cfg: DictConfig) -> dict[str, Any]:
    """Trainer settings that change the numbers: bf16, and accumulation (each part draws its own noise).

    Empty for the defaults, so existing cache keys stay; the engine and the process count are not in it (they
    give the single-process numbers).
    """
    tr = cfg.get("trainer") or {}
    key = {"precision": "bf16"} if tr.get("precision", "fp32") == "bf16" else {}
    return {**key, "micro_batch": tr["micro_batch"]} if tr.get("micro_batch") is not None else key


def stage_key(cfg: DictConfig, upto: str) -> dict[str, Any]:
    """Everything that determines the student after stage ``upto`` (used for the shared-prefix cache)."""
    m = OmegaConf.to_container(cfg.method, resolve=True)
    stages = m["stages"][: m["stages"].index(upto) + 1]
    # Stage II's motion early stop judges by the sprite measure: another version of it may stop at another step
    judged = "dmd" in stages and m["dmd"]["early_stop"]["criterion"] == "motion"
    return {"teacher": teacher_key_for(cfg),
            "teacher_sample": OmegaConf.to_container(cfg.teacher.sample), "seed": cfg.seed,
            "student": m["student"], "stages": {s: m[s] for s in stages}, **numerics_key(cfg),
            **({"motion_measure": MOTION_VERSION} if judged else {})}


def ode_pairs_key(cfg: DictConfig) -> dict[str, Any]:
    """What determines Stage I's cached teacher ODE pairs (teacher, its sampler, seed, targets, pair count)."""
    key = stage_key(cfg, "ode")
    bf16 = {"precision": "bf16"} if key.get("precision") == "bf16" else {}  # the teacher solves in bf16 then
    return {"teacher": key["teacher"], "sample": key["teacher_sample"], "seed": key["seed"],
            "targets": key["student"]["steps"], "pairs": cfg.method.ode.pairs,
            "teacher_steps": cfg.method.ode.teacher_steps, **bf16}


def _shared_path(cfg: DictConfig, stage: str) -> Path:
    return Path(cfg.paths.cache) / "stages" / f"{stage}-{config_hash(stage_key(cfg, stage))}.pt"


def _find_shared_prefix(cfg: DictConfig, stages: list[str]) -> tuple[int, Path] | None:
    """The longest prefix of stages that some earlier run already finished with identical settings."""
    for i in reversed(range(len(stages))):
        if stages[i] == "gan":
            continue  # the adversarial stage is what the arms differ in
        path = _shared_path(cfg, stages[i])
        if not path.exists():
            continue
        try:
            load_file(path)
        except CheckpointError as e:
            print(f"warning: {e}; recomputing")
            continue
        return i, path
    return None


def _load_shared_prefix(ctx: DistillContext, stages: list[str]) -> None:
    """Skip the stages some earlier run already finished (rank 0 picks the file: other arms may be writing)."""
    found = ctx.engine.rt.main_decides(lambda: _find_shared_prefix(ctx.cfg, stages))
    if found is not None:
        i, path = found
        state = load_file(path)
        ctx.student.load_state_dict(state["student"])
        ctx.stages_done, ctx.stage_info = list(stages[: i + 1]), dict(state["stage_info"])
        ctx.stage_info["shared_from"] = str(path)
        print(f"reusing stages {ctx.stages_done} from {path}")


def _store_shared(ctx: DistillContext, stage: str) -> None:
    if not ctx.engine.rt.is_main:
        return
    buf = io.BytesIO()
    torch.save({"student": ctx.student.state_dict(), "stage_info": ctx.stage_info}, buf)
    atomic_write_bytes(_shared_path(ctx.cfg, stage), buf.getvalue())


def run_stages(ctx: DistillContext) -> None:
    """Run the method's remaining stages, checkpointing at every stage end."""
    stages = list(ctx.cfg.method.stages)
    state = load_latest(ctx.run.checkpoints)
    ctx.run.rewind_metrics(state)  # one metrics row per (stage, step) after a resume
    if state is not None:
        if "student" in state:  # a sharded (distributed) checkpoint restores the student inside its stage
            ctx.student.load_state_dict(state["student"])
        ctx.stages_done, ctx.stage_info = list(state["stages_done"]), dict(state["stage_info"])
        print(f"resuming from stage {state['stage']} step {state['step']} (done: {ctx.stages_done})")
    elif ctx.cfg.distill.share_stages:
        _load_shared_prefix(ctx, stages)
    for stage in stages:
        if stage in ctx.stages_done:
            continue
        own = state if state is not None and state["stage"] == stage and stage not in state["stages_done"] else None
        if stage == "ode":
            ode_stage(ctx, own, ode_pairs_key(ctx.cfg))
        else:
            {"dmd": dmd_stage, "gan": gan_stage}[stage](ctx, own)
        ctx.stages_done.append(stage)
        ctx.save(stage, int(ctx.stage_info.get(stage, {}).get("steps", 0)), {})
        if ctx.cfg.distill.share_stages and stage != "gan":
            _store_shared(ctx, stage)


def build_context(cfg: DictConfig, run: RunFolder, teacher: VideoDiT, data: TrainingSet | torch.Tensor,
                  data_speed: float | None, probe_cond: torch.Tensor, engine: Engine | None = None,
                  probe_gts: list[dict[str, Any]] | None = None,
                  probe_captions: list[str | None] | None = None) -> DistillContext:
    """A context whose student starts as a copy of the teacher (then used with the block-causal mask).

    ``data``: the training set (a tensor of clips = one without text). ``engine`` (default: one process on the
    CPU) runs the stages; rank 0 also tracks to TensorBoard / W&B. ``probe_gts``: ground truth of the probes' data
    clips (toy world), for Stage II's motion checks; ``probe_captions``: their captions (real video).
    """
    data = TrainingSet.of(data)
    MethodSpec.from_cfg(cfg.method).validate(cfg.method, cfg.model.depth)
    OmegaConf.resolve(cfg)
    backbone_config(cfg.model).check_frames(data.shape[1])
    student = build_backbone(cfg.model)
    student.load_state_dict(teacher.state_dict())
    student.requires_grad_(True)
    engine = engine or default_engine()
    tracker = Tracker(run.path, engine.rt.settings.tracking, engine.rt.is_main, name=run.path.name,
                      config=OmegaConf.to_container(cfg))
    return DistillContext(cfg=cfg, run=run, teacher=teacher, data=data, student=student, data_speed=data_speed,
                          probe_cond=probe_cond, engine=engine, tracker=tracker, probe_gts=list(probe_gts or []),
                          probe_context=data.encode(probe_captions) if probe_captions else None)

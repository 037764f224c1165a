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


def stage_key(cfg: DictConfig, upto: str) -> dict[str, Any]:
    """Everything that determines the student after stage ``upto`` (used for the shared-prefix cache)."""
    m = OmegaConf.to_container(cfg.method, resolve=True)
    stages = m["stages"][: m["stages"].index(upto) + 1]
    return {"teacher": teacher_key_for(cfg),
            "teacher_sample": OmegaConf.to_container(cfg.teacher.sample), "seed": cfg.seed,
            "student": m["student"], "stages": {s: m[s] for s in stages}}


def ode_pairs_key(cfg: DictConfig) -> dict[str, Any]:
    """What determines Stage I's cached teacher ODE pairs (teacher, its sampler, seed, targets, pair count)."""
    key = stage_key(cfg, "ode")
    return {"teacher": key["teacher"], "sample": key["teacher_sample"], "seed": key["seed"],
            "targets": key["student"]["steps"], "pairs": cfg.method.ode.pairs,
            "teacher_steps": cfg.method.ode.teacher_steps}


def _shared_path(cfg: DictConfig, stage: str) -> Path:
    return Path(cfg.paths.cache) / "stages" / f"{stage}-{config_hash(stage_key(cfg, stage))}.pt"


def _load_shared_prefix(ctx: DistillContext, stages: list[str]) -> None:
    """Skip the longest prefix of stages that some earlier run already finished with identical settings."""
    for i in reversed(range(len(stages))):
        if stages[i] == "gan":
            continue  # the adversarial stage is what the arms differ in
        path = _shared_path(ctx.cfg, stages[i])
        if not path.exists():
            continue
        try:
            state = load_file(path)
        except CheckpointError as e:
            print(f"warning: {e}; recomputing")
            continue
        ctx.student.load_state_dict(state["student"])
        ctx.stages_done, ctx.stage_info = list(stages[: i + 1]), dict(state["stage_info"])
        ctx.stage_info["shared_from"] = str(path)
        print(f"reusing stages {ctx.stages_done} from {path}")
        return


def _store_shared(ctx: DistillContext, stage: str) -> None:
    buf = io.BytesIO()
    torch.save({"student": ctx.student.state_dict(), "stage_info": ctx.stage_info}, buf)
    atomic_write_bytes(_shared_path(ctx.cfg, stage), buf.getvalue())


def run_stages(ctx: DistillContext) -> None:
    """Run the method's remaining stages, checkpointing at every stage end."""
    stages = list(ctx.cfg.method.stages)
    state = load_latest(ctx.run.checkpoints)
    ctx.run.rewind_metrics(state)  # one metrics row per (stage, step) after a resume
    if state is not None:
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


def build_context(cfg: DictConfig, run: RunFolder, teacher: VideoDiT, data: torch.Tensor, data_speed: float,
                  probe_cond: torch.Tensor) -> DistillContext:
    """A context whose student starts as a copy of the teacher (then used with the block-causal mask)."""
    MethodSpec.from_cfg(cfg.method).validate(cfg.method, cfg.model.depth)
    OmegaConf.resolve(cfg)
    backbone_config(cfg.model).check_frames(data.shape[1])
    student = build_backbone(cfg.model)
    student.load_state_dict(teacher.state_dict())
    student.requires_grad_(True)
    return DistillContext(cfg=cfg, run=run, teacher=teacher, data=data, student=student, data_speed=data_speed,
                          probe_cond=probe_cond)

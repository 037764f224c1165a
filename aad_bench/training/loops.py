"""One readable loop per stage (I: ODE regression, II: DMD warm-up). Stage III lives in ``gan.py``.

Every loop resumes from ``state`` (the latest checkpoint of this stage, or None) and draws its batches and noise
from generators keyed by (seed, stage, step), so an interrupted run ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from aad_bench.training import dmd, ode
from aad_bench.training.common import (
    StepLogger,
    batch,
    check_finite,
    clip_grad,
    make_optimizer,
    set_lr,
    step_generator,
)
from aad_bench.training.context import DistillContext
from aad_bench.utils.provenance import config_hash


def ode_stage(ctx: DistillContext, state: dict[str, Any] | None, cache_key: dict) -> None:
    """Stage I: regress cached teacher ODE trajectories at the student's target times."""
    oc, s = ctx.cfg.method.ode, ode.STAGE
    path = Path(ctx.cfg.paths.cache) / "ode" / f"{config_hash(cache_key)}.pt"
    pairs = ode.load_or_make_pairs(path, ctx.teacher, ctx.data, oc, ctx.cfg.teacher.sample, ctx.student_steps,
                                   ctx.seed, ctx.progress)
    opt = make_optimizer(ctx.student.parameters(), oc.lr, weight_decay=oc.weight_decay)
    start = 0
    if state is not None:
        opt.load_state_dict(state["opt"])
        start = state["step"]
    ctx.student.train()
    bar = tqdm(total=oc.steps, initial=start, desc="stage I (ODE)", disable=not ctx.progress, leave=False)
    log = StepLogger(ctx.run, s, ctx.cfg.distill.log_every, bar)
    for step in range(start, oc.steps):
        g = step_generator(ctx.seed, s, step)
        lr = set_lr(opt, step, oc.warmup, oc.steps)
        loss = ode.ode_loss(ctx.student, pairs, g, oc.batch, oc.p_clean)
        check_finite(s, step, loss=loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = clip_grad(ctx.student.parameters(), oc.grad_clip, s, step, ctx.cfg.distill.explode_grad)
        opt.step()
        log(step + 1, {"loss/ode": loss.item(), "grad_norm": gn, "lr": lr}, force=step + 1 == oc.steps)
        if (step + 1) % ctx.cfg.distill.ckpt_every == 0 and step + 1 < oc.steps:
            ctx.save(s, step + 1, {"opt": opt})
    bar.close()
    ctx.stage_info[s] = {"steps": oc.steps}


def dmd_stage(ctx: DistillContext, state: dict[str, Any] | None) -> None:
    """Stage II: DMD with self-rollout, critic:generator updates = ``ratio``:1, optional early stopping."""
    dc, s = ctx.cfg.method.dmd, dmd.STAGE
    if dc.ratio < 1:
        raise ValueError(f"method.dmd.ratio (critic updates per generator update) must be >= 1, got {dc.ratio}")
    critic = copy.deepcopy(ctx.teacher).requires_grad_(True).train()  # fake score starts at the real score
    opt_g = make_optimizer(ctx.student.parameters(), dc.lr_gen, betas=dc.betas, weight_decay=dc.weight_decay)
    opt_c = make_optimizer(critic.parameters(), dc.lr_critic, betas=dc.betas, weight_decay=dc.weight_decay)
    start, history = 0, []
    if state is not None:
        critic.load_state_dict(state["critic"])
        opt_g.load_state_dict(state["opt_g"])
        opt_c.load_state_dict(state["opt_c"])
        start, history = state["step"], list(state["stage_info"].get(s, {}).get("motion", []))
    elif dc.early_stop.criterion == "motion":  # the reference: motion of the rollouts before any DMD step
        history.append([0, dmd.motion_ratio(ctx.student, ctx.probe_cond, ctx.frames, ctx.student_steps,
                                            ctx.data_speed, ctx.seed, ctx.decode)])
    ctx.student.train()
    chunks = ctx.frames // ctx.student.cfg.chunk
    grad_chunks = dmd.grad_chunk_set(dc.grad_chunks, chunks)
    bar = tqdm(total=dc.steps, initial=start, desc="stage II (DMD)", disable=not ctx.progress, leave=False)
    log = StepLogger(ctx.run, s, ctx.cfg.distill.log_every, bar)
    stop, step = None, start
    for step in range(start, dc.steps):
        g = step_generator(ctx.seed, s, step)
        torch.manual_seed(g.initial_seed())
        cond = batch(ctx.data, dc.batch, g)[:, 0]
        set_lr(opt_g, step, dc.warmup)
        x_hat = dmd.rollout(ctx.student, cond, ctx.frames, g, ctx.student_steps, grad_chunks)
        loss_g, extra = dmd.dmd_generator_loss(x_hat, cond, ctx.teacher, critic, dc, g)
        check_finite(s, step, loss_g=loss_g.item())
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        gn = clip_grad(ctx.student.parameters(), dc.grad_clip, s, step, ctx.cfg.distill.explode_grad)
        opt_g.step()
        for _ in range(dc.ratio):  # fresh noise levels on the same rollout for each critic update
            loss_c = dmd.critic_loss(critic, x_hat.detach(), cond, g)
            check_finite(s, step, loss_critic=loss_c.item())
            opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            clip_grad(critic.parameters(), dc.grad_clip, s, step, ctx.cfg.distill.explode_grad)
            opt_c.step()
        ratio = None
        if (step + 1) % dc.early_stop.every == 0:
            ratio = dmd.motion_ratio(ctx.student, ctx.probe_cond, ctx.frames, ctx.student_steps, ctx.data_speed,
                                     ctx.seed, ctx.decode)
            history.append([step + 1, ratio])
        log(step + 1, {"loss/dmd": loss_g.item(), "loss/critic": loss_c.item(), "grad_norm": gn, **extra,
                       **({"motion_ratio": ratio} if ratio is not None else {})}, force=ratio is not None)
        ctx.stage_info[s] = {"motion": history}
        stop = dmd.early_stop_reason(dc.early_stop, step + 1, ratio, history[0][1] if history else None)
        if stop:
            break
        if (step + 1) % ctx.cfg.distill.ckpt_every == 0 and step + 1 < dc.steps:
            ctx.save(s, step + 1, {"critic": critic, "opt_g": opt_g, "opt_c": opt_c})
    bar.close()
    ctx.stage_info[s] = {"motion": history, "steps": step + 1 if dc.steps > start else start,
                         "stopped_early": stop is not None, "stop_reason": stop or f"step budget {dc.steps}"}

"""Stage III — adversarial distillation on full self-rollouts against the configured discriminator.

Logistic loss (non-saturating for the generator); real and generated clips are noised at the same τ ~ U[τ_min,
τ_max] before the discriminator; approximated R1 (real) + R2 (fake) with finite-difference perturbations
(σ, λ); separate learning rates for the discriminator backbone and heads; generator EMA; an optional DMD term
(the DMD+GAN variant). Divergence (NaN, exploding gradients, a discriminator pinned at perfect accuracy) stops
the run with a recorded reason.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from aad_bench.models.discriminator import (
    Discriminator,
    approx_r_penalty,
    d_accuracy,
    logistic_d_loss,
    nonsaturating_g_loss,
)
from aad_bench.models.rectified_flow import add_noise, frame_times, with_cond_frame
from aad_bench.training import dmd
from aad_bench.training.checkpoint import EMA
from aad_bench.training.common import (
    Diverged,
    StepLogger,
    batch,
    check_finite,
    clip_grad,
    make_optimizer,
    set_lr,
    step_generator,
)
from aad_bench.training.context import DistillContext

STAGE = "gan"


def build_discriminator(ctx: DistillContext, gc: DictConfig) -> Discriminator:
    """Bidirectional D starts from the teacher; causal D from the (Stage II) generator."""
    init = ctx.teacher if gc.disc.backbone == "bidirectional" else ctx.student
    return Discriminator(init, gc.disc.backbone, gc.disc.head, list(gc.disc.depths), gc.disc.queries)


def noised_pair(real: torch.Tensor, fake: torch.Tensor, gc: DictConfig, g: torch.Generator):
    """Real and generated clips (image frame + generated frames) noised at the same τ per pair."""
    b, f = fake.shape[0], fake.shape[1] - 1
    tau = gc.tau_min + (gc.tau_max - gc.tau_min) * torch.rand(b, generator=g)
    t = frame_times(b, f, tau)
    real_t = with_cond_frame(add_noise(real[:, 1:], torch.randn(real[:, 1:].shape, generator=g), tau), real[:, 0])
    fake_t = with_cond_frame(add_noise(fake[:, 1:], torch.randn(fake[:, 1:].shape, generator=g), tau), fake[:, 0])
    return real_t, fake_t, t


def d_step(disc: Discriminator, real_t, fake_t, t, gc: DictConfig, g: torch.Generator) -> dict[str, Any]:
    """Discriminator loss + λ·(R1 + R2); returns the loss tensor and logs."""
    lr_, lf_ = disc(real_t, t), disc(fake_t.detach(), t)
    loss = logistic_d_loss(lr_, lf_)
    r1 = r2 = torch.zeros(())
    if gc.reg.lambda_ > 0:
        r1 = approx_r_penalty(disc, real_t, t, lr_, gc.reg.sigma, g)
        r2 = approx_r_penalty(disc, fake_t.detach(), t, lf_, gc.reg.sigma, g)
    return {"loss": loss + gc.reg.lambda_ * (r1 + r2), "loss/d": loss.item(), "r1": r1.item(), "r2": r2.item(),
            "d_acc": d_accuracy(lr_, lf_), "logit_real": lr_.mean().item(), "logit_fake": lf_.mean().item()}


def gan_stage(ctx: DistillContext, state: dict[str, Any] | None) -> None:
    """Stage III loop: one discriminator update then one generator update per step."""
    gc, s, dz = ctx.cfg.method.gan, STAGE, ctx.cfg.distill
    disc = build_discriminator(ctx, gc)
    ema = EMA(ctx.student, gc.ema)
    opt_g = make_optimizer(ctx.student.parameters(), gc.lr_gen, betas=gc.betas)
    opt_d = make_optimizer([{"params": disc.backbone_parameters(), "lr": gc.lr_d_backbone},
                            {"params": disc.head_parameters(), "lr": gc.lr_d_head}], gc.lr_d_backbone, betas=gc.betas)
    critic = copy.deepcopy(ctx.teacher).requires_grad_(True) if gc.dmd_weight > 0 else None
    opt_c = make_optimizer(critic.parameters(), ctx.cfg.method.dmd.lr_critic) if critic is not None else None
    start, pinned = 0, 0
    if state is not None:
        disc.load_state_dict(state["disc"])
        ema.load_state_dict(state["ema"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        start, pinned = state["step"], state["stage_info"].get(s, {}).get("pinned", 0)
        if critic is not None:
            critic.load_state_dict(state["critic"])
            opt_c.load_state_dict(state["opt_c"])
    chunks = ctx.frames // ctx.student.cfg.chunk
    grad_chunks = dmd.grad_chunk_set(gc.grad_chunks, chunks)
    bar = tqdm(total=gc.steps, initial=start, desc="stage III (GAN)", disable=not ctx.progress, leave=False)
    log = StepLogger(ctx.run, s, dz.log_every, bar)
    for step in range(start, gc.steps):
        g = step_generator(ctx.seed, s, step)
        torch.manual_seed(g.initial_seed())
        set_lr(opt_g, step, gc.warmup)
        set_lr(opt_d, step, gc.warmup)
        real = batch(ctx.data, gc.batch, g)
        x_hat = dmd.rollout(ctx.student, real[:, 0], ctx.frames, g, ctx.student_steps, grad_chunks)
        fake = with_cond_frame(x_hat, real[:, 0])
        real_t, fake_t, t = noised_pair(real, fake, gc, g)
        d = d_step(disc, real_t, fake_t, t, gc, g)
        check_finite(s, step, loss_d=d["loss"].item())
        opt_d.zero_grad(set_to_none=True)
        d["loss"].backward()
        clip_grad(disc.parameters(), gc.grad_clip, s, step, dz.explode_grad)
        opt_d.step()
        disc.requires_grad_(False)  # the generator step must not touch D's gradients
        loss_g = nonsaturating_g_loss(disc(fake_t, t))
        disc.requires_grad_(True)
        extra: dict[str, float] = {}
        if critic is not None:
            loss_dmd, extra = dmd.dmd_generator_loss(x_hat, real[:, 0], ctx.teacher, critic, ctx.cfg.method.dmd, g)
            loss_g = loss_g + gc.dmd_weight * loss_dmd
        check_finite(s, step, loss_g=loss_g.item())
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        gn = clip_grad(ctx.student.parameters(), gc.grad_clip, s, step, dz.explode_grad)
        opt_g.step()
        ema.update(ctx.student)
        if critic is not None:
            loss_c = dmd.critic_loss(critic, x_hat.detach(), real[:, 0], g)
            opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            opt_c.step()
        pinned = pinned + 1 if d["d_acc"] >= gc.diverge.pinned_acc else 0
        ctx.stage_info[s] = {"pinned": pinned}
        log(step + 1, {"loss/g": loss_g.item(), **{k: v for k, v in d.items() if k != "loss"}, "grad_norm": gn,
                       **extra}, force=step + 1 == gc.steps)
        if pinned >= gc.diverge.pinned_steps:
            raise Diverged(s, step + 1, f"discriminator accuracy >= {gc.diverge.pinned_acc} for {pinned} steps")
        if (step + 1) % dz.ckpt_every == 0 and step + 1 < gc.steps:
            mods = {"disc": disc, "ema": ema, "opt_g": opt_g, "opt_d": opt_d}
            if critic is not None:
                mods.update(critic=critic, opt_c=opt_c)
            ctx.save(s, step + 1, mods)
    bar.close()
    ctx.student.load_state_dict(ema.state_dict())  # the EMA generator is the stage's result
    ctx.stage_info[s] = {"steps": gc.steps, "pinned": pinned}

"""Stage III — adversarial distillation on full self-rollouts against the configured discriminator.

Logistic loss (non-saturating for the generator); real and generated clips are noised at the same τ ~ U[τ_min,
τ_max] before the discriminator; approximated R1 (real) + R2 (fake) with finite-difference perturbations
(σ, λ); separate learning rates for the discriminator backbone and heads; generator EMA; an optional DMD term
(``gan.dmd_weight`` > 0: the joint DMD+GAN variant). Divergence (NaN, exploding gradients, a discriminator pinned
at perfect accuracy) stops the run with a recorded reason.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from aad_bench.data.loader import context_part
from aad_bench.engine.ema import ShardedEMA
from aad_bench.methods import method_hook
from aad_bench.models.discriminator import (
    Discriminator,
    approx_r_penalty,
    d_accuracy,
    logistic_d_loss,
    nonsaturating_g_loss,
)
from aad_bench.models.rectified_flow import add_noise, frame_times, with_cond_frame
from aad_bench.sampling.samplers import context_kwargs, grad_chunk_set, self_rollout
from aad_bench.training.context import DistillContext
from aad_bench.training.divergence import Diverged, check_finite, grad_guard
from aad_bench.training.dmd import critic_loss, dmd_generator_loss
from aad_bench.training.optim import make_optimizer, set_lr
from aad_bench.training.rng import seeded, step_generator
from aad_bench.training.steplog import StepLogger

STAGE = "gan"

#################################################################################
#                 The discriminator, its losses, the DMD term                   #
#################################################################################


def build_discriminator(ctx: DistillContext, gc: DictConfig) -> Discriminator:
    """Bidirectional D starts from the teacher; causal D from the (Stage II) generator."""
    init = ctx.teacher if gc.disc.backbone == "bidirectional" else ctx.student
    return Discriminator(init, gc.disc.backbone, gc.disc.head, list(gc.disc.depths), gc.disc.queries,
                         frozen=bool(gc.disc.get("frozen", False)))


def noised_pair(real: torch.Tensor, fake: torch.Tensor, gc: DictConfig, g: torch.Generator):
    """Real and generated clips (image frame + generated frames) noised at the same τ per pair."""
    b, f = fake.shape[0], fake.shape[1] - 1
    tau = gc.tau_min + (gc.tau_max - gc.tau_min) * torch.rand(b, generator=g)
    t = frame_times(b, f, tau)
    real_t = with_cond_frame(add_noise(real[:, 1:], torch.randn(real[:, 1:].shape, generator=g), tau), real[:, 0])
    fake_t = with_cond_frame(add_noise(fake[:, 1:], torch.randn(fake[:, 1:].shape, generator=g), tau), fake[:, 0])
    return real_t, fake_t, t


def d_step(disc: Discriminator, real_t, fake_t, t, gc: DictConfig, g: torch.Generator,
           context: torch.Tensor | None = None) -> dict[str, Any]:
    """Discriminator loss + λ·(R1 + R2) (R2 off with ``reg.r2: false``); returns the loss tensor and logs.

    ``context``: the pair's text embeddings (a real clip and its rollout share the caption), or None.
    """
    text = context_kwargs(context)
    lr_, lf_ = disc(real_t, t, **text), disc(fake_t.detach(), t, **text)
    loss = logistic_d_loss(lr_, lf_)
    r1 = r2 = torch.zeros(())
    if gc.reg.lambda_ > 0:
        r1 = approx_r_penalty(disc, real_t, t, lr_, gc.reg.sigma, g, **text)
        if gc.reg.get("r2", True):
            r2 = approx_r_penalty(disc, fake_t.detach(), t, lf_, gc.reg.sigma, g, **text)
    return {"loss": loss + gc.reg.lambda_ * (r1 + r2), "loss/d": loss.item(), "r1": r1.item(), "r2": r2.item(),
            "d_acc": d_accuracy(lr_, lf_), "logit_real": lr_.mean().item(), "logit_fake": lf_.mean().item()}


def ema_decay(gc: DictConfig, step: int) -> float:
    """The generator EMA's decay at ``step``.

    ``gc.ema``, ramped up over ``gc.ema_warmup`` steps so that the EMA follows the adversarial updates instead of
    staying anchored to the Stage II weights it starts from.
    """
    warm = int(gc.get("ema_warmup", 0))
    return min(float(gc.ema), (1 + step) / (1 + warm + step)) if warm > 0 else float(gc.ema)


def _d_groups(disc: Discriminator, gc: DictConfig) -> list[dict[str, Any]]:
    """Optimizer groups: backbone and heads at their own learning rates (a frozen backbone has no group)."""
    groups = [{"params": list(disc.backbone_parameters()), "lr": gc.lr_d_backbone},
              {"params": list(disc.head_parameters()), "lr": gc.lr_d_head}]
    return [grp for grp in groups if grp["params"]]


class DMDTerm:
    """The optional DMD term of the joint DMD+GAN variant: its own critic, trained on the same rollouts.

    With ``weight == 0`` (pure GAN, AAD-1's recipe) it is inert: no critic, zero loss, nothing to checkpoint.
    """

    def __init__(self, ctx: DistillContext, weight: float, batch: int) -> None:
        self.ctx, self.weight, self.critic = ctx, weight, None
        if weight > 0:
            opt = lambda m: make_optimizer(m.parameters(), ctx.cfg.method.dmd.lr_critic)  # noqa: E731
            self.critic = ctx.prepare(copy.deepcopy(ctx.teacher).requires_grad_(True), opt, "critic", batch,
                                      "method.gan.batch", context_parallel=True)

    def generator_loss(self, x_hat: torch.Tensor, cond: torch.Tensor, g: torch.Generator,
                       context: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted DMD loss on a rollout (0 when inert); ``context``: its text embeddings."""
        if self.critic is None:
            return torch.zeros(()), {}
        loss, logs = dmd_generator_loss(x_hat, cond, self.ctx.frozen_teacher, self.critic, self.ctx.cfg.method.dmd,
                                        g, context)
        return self.weight * loss, logs

    def critic_step(self, x_hats: list[torch.Tensor], conds: list[torch.Tensor], g: torch.Generator,
                    contexts: list[torch.Tensor | None] | None = None) -> None:
        """One denoising update of the critic on the (detached) rollouts of the step's batch parts."""
        if self.critic is None:
            return
        for x_hat, cond, text in zip(x_hats, conds, contexts or [None] * len(conds)):
            self.critic.backward(critic_loss(self.critic, x_hat.detach(), cond, g, **context_kwargs(text)))
        self.critic.step()

    def modules(self) -> dict[str, Any]:
        """What a checkpoint must hold to resume the term."""
        return {"critic": self.critic} if self.critic is not None else {}


#################################################################################
#                                 The stage loop                                #
#################################################################################

def gan_stage(ctx: DistillContext, state: dict[str, Any] | None) -> None:
    """Stage III loop: one discriminator update then one generator update per step.

    ``state`` is this stage's latest checkpoint (resume) or None.
    """
    gc, dz = ctx.cfg.method.gan, ctx.cfg.distill
    ctx.data.require_clips("Stage III (gan)")
    with seeded(ctx.seed, "gan/discriminator"):  # same initial heads after a resume or a reused prefix
        disc = method_hook(ctx.cfg.method, "build_discriminator", build_discriminator)(ctx, gc)
    disc = ctx.prepare(disc, lambda m: make_optimizer(_d_groups(m, gc), gc.lr_d_backbone, betas=gc.betas),
                       "disc", gc.batch, "method.gan.batch", gc.grad_clip, context_parallel=True)
    student = ctx.prepare(ctx.student, lambda m: make_optimizer(m.parameters(), gc.lr_gen, betas=gc.betas),
                          "student", gc.batch, "method.gan.batch", gc.grad_clip)
    ema = ShardedEMA(student, gc.ema)
    with seeded(ctx.seed, "gan/dmd_term"):
        dmd_term = DMDTerm(ctx, gc.dmd_weight, gc.batch)
    start = ctx.restore(state, {"student": student, "disc": disc, "ema": ema, **dmd_term.modules()})
    pinned = state["stage_info"].get(STAGE, {}).get("pinned", 0) if state is not None else 0
    grad_chunks = grad_chunk_set(gc.grad_chunks, ctx.frames // student.cfg.chunk)
    refresh_grad = bool(ctx.cfg.method.student.get("refresh_grad", False))
    bar = tqdm(total=gc.steps, initial=start, desc="stage III (GAN)", disable=not ctx.progress, leave=False)
    log = StepLogger(ctx.run, STAGE, dz.log_every, bar, ctx.tracker)
    for step in range(start, gc.steps):
        g = step_generator(ctx.seed, STAGE, step)
        torch.manual_seed(g.initial_seed())
        set_lr(student.optimizer, step, gc.warmup)
        set_lr(disc.optimizer, step, gc.warmup)
        real, text = ctx.data.batch(gc.batch, g)

        # -- discriminator (+ the joint variant's critic): ``ratio`` updates, accumulated over the parts of the
        #    batch; the first on this step's rollouts, the others on fresh no-gradient rollouts of new images --
        parts, fakes = disc.parts(gc.batch), []
        for part in parts:
            x_hat = self_rollout(student, real[part, 0], ctx.frames, g, ctx.student_steps, grad_chunks, refresh_grad,
                                 context_part(text, part))
            fakes.append((x_hat, *noised_pair(real[part], with_cond_frame(x_hat, real[part, 0]), gc, g)))
        for i in range(int(gc.get("ratio", 1))):
            r, r_text = (real, text) if i == 0 else ctx.data.batch(gc.batch, g)
            c_xs = []
            for k, part in enumerate(parts):
                if i == 0:
                    c_x, real_t, fake_t, t = fakes[k]
                else:
                    with torch.no_grad():
                        c_x = self_rollout(student, r[part, 0], ctx.frames, g, ctx.student_steps, None,
                                           context=context_part(r_text, part))
                    real_t, fake_t, t = noised_pair(r[part], with_cond_frame(c_x, r[part, 0]), gc, g)
                d = d_step(disc, real_t, fake_t, t, gc, g, context_part(r_text, part))
                check_finite(STAGE, step, loss_d=d["loss"].item())
                disc.backward(d["loss"])
                c_xs.append(c_x.detach())
            disc.step(check=grad_guard(STAGE, step, dz.explode_grad))
            dmd_term.critic_step(c_xs, [r[part, 0] for part in parts], g, [context_part(r_text, p) for p in parts])

        # -- generator: non-saturating loss (+ the DMD term of the joint variant), then EMA --
        disc.requires_grad_(False)  # the generator step must not touch D's gradients
        for part, (x_hat, _, fake_t, t) in zip(parts, fakes):
            p_text = context_part(text, part)
            loss_g = gc.get("g_weight", 1.0) * nonsaturating_g_loss(disc(fake_t, t, **context_kwargs(p_text)))
            loss_dmd, extra = dmd_term.generator_loss(x_hat, real[part, 0], g, p_text)
            loss_g = loss_g + loss_dmd
            check_finite(STAGE, step, loss_g=loss_g.item())
            student.backward(loss_g)
        disc.requires_grad_(True)
        gn = student.step(check=grad_guard(STAGE, step, dz.explode_grad))
        ema.decay = ema_decay(gc, step)
        ema.update()

        # -- divergence, logging, checkpoints --
        pinned = pinned + 1 if d["d_acc"] >= gc.diverge.pinned_acc else 0
        ctx.stage_info[STAGE] = {"pinned": pinned}
        log(step + 1, {"loss/g": loss_g.item(), **{k: v for k, v in d.items() if k != "loss"}, "grad_norm": gn,
                       **extra}, force=step + 1 == gc.steps)
        if pinned >= gc.diverge.pinned_steps:
            raise Diverged(STAGE, step + 1, f"discriminator accuracy >= {gc.diverge.pinned_acc} for {pinned} steps")
        if (step + 1) % dz.ckpt_every == 0 and step + 1 < gc.steps:
            ctx.save(STAGE, step + 1, {"student": student, "disc": disc, "ema": ema, **dmd_term.modules()})
    bar.close()
    ema.copy_to_model()  # the EMA generator is the stage's result
    ctx.end_stage(student)
    ctx.stage_info[STAGE] = {"steps": gc.steps, "pinned": pinned}

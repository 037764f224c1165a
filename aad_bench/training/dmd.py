"""Stage II — one-step DMD warm-up with self-rollout (Self-Forcing style).

The student rolls the whole clip out with its KV cache; the rollout is noised to one time per clip; the DMD
gradient is ``(x0_fake − x0_real) / mean|x̂ − x0_real|`` (real = frozen teacher with CFG, fake = a critic trained
by denoising score matching on student samples) applied as ``0.5·‖x̂ − sg(x̂ − grad)‖²``. The critic gets
``ratio`` updates per generator update. Longer DMD collapses motion, so the stage can stop early when the tracked
motion of fixed rollouts falls below a threshold; when and why is recorded.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from tqdm import tqdm

from aad_bench.data.loader import context_part
from aad_bench.models.dit import VideoDiT
from aad_bench.models.rectified_flow import add_noise, frame_times, sample_times, with_cond_frame, x0_from_v
from aad_bench.sampling.samplers import context_kwargs, grad_chunk_set, self_rollout, velocity
from aad_bench.training.context import DistillContext
from aad_bench.training.divergence import check_finite, grad_guard
from aad_bench.training.optim import make_optimizer, set_lr
from aad_bench.training.rng import seeded, step_generator
from aad_bench.training.steplog import StepLogger
from aad_bench.video.io import to_uint8
from aad_bench.world.motion import motion_summary
from aad_bench.world.tracking import mean_speed

STAGE = "dmd"

#################################################################################
#                  The DMD gradient, the critic, early stopping                 #
#################################################################################


def dmd_generator_loss(x_hat: torch.Tensor, cond: torch.Tensor, teacher: VideoDiT, critic: VideoDiT,
                       dc: DictConfig, g: torch.Generator, context: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, dict[str, float]]:
    """The DMD loss on a rollout ``x̂`` ``[B,F,C,H,W]`` (generated frames only); ``context``: text embeddings."""
    b, f = x_hat.shape[:2]
    t = dc.t_min + (dc.t_max - dc.t_min) * torch.rand(b, generator=g)
    noise = torch.randn(x_hat.shape, generator=g)
    with torch.no_grad():
        x_t = with_cond_frame(add_noise(x_hat.detach(), noise, t), cond)
        tt = frame_times(b, f, t)
        x0_real = x0_from_v(x_t, velocity(teacher, x_t, tt, dc.cfg, context=context), tt)[:, 1:]
        x0_fake = x0_from_v(x_t, critic(x_t, tt, **context_kwargs(context)), tt)[:, 1:]
        norm = (x_hat.detach() - x0_real).abs().mean(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
        grad = torch.nan_to_num((x0_fake - x0_real) / norm)
    loss = 0.5 * F.mse_loss(x_hat.double(), (x_hat.detach() - grad).double())
    return loss.float(), {"dmd_grad_norm": grad.norm().item() / b}


def critic_loss(critic: VideoDiT, x_fake: torch.Tensor, cond: torch.Tensor, g: torch.Generator,
                time_dist: str = "uniform", context: torch.Tensor | None = None) -> torch.Tensor:
    """Denoising score matching (flow matching) of the critic on detached student samples (``context``: text)."""
    b, f = x_fake.shape[:2]
    t = sample_times(b, g, time_dist)
    noise = torch.randn(x_fake.shape, generator=g)
    x_t = with_cond_frame(add_noise(x_fake, noise, t), cond)
    v = critic(x_t, frame_times(b, f, t), **context_kwargs(context))[:, 1:]
    return F.mse_loss(v, noise - x_fake)


@torch.no_grad()
def motion_ratio(student: VideoDiT, cond: torch.Tensor, gts: list[dict[str, Any]], frames: int, steps: list[float],
                 data_speed: float | None, seed: int, decode=None, context: torch.Tensor | None = None) -> float:
    """Motion of fixed rollouts relative to their data (the early-stopping statistic).

    With ground truth (the toy world's val split) it is the sprite speed / the data twins' true speed, measured as
    :func:`aad_bench.world.motion.motion_summary` does (sprites followed from their first-frame appearance), so
    flicker and speckles cannot pass for motion. Without (real video) it is the tracked mean speed of the rollouts
    / ``data_speed``. ``data_speed`` None (``data=prompts``: no clips, no ground truth) gives the rollouts' own
    tracked speed in px/frame: with ``early_stop.reference=start`` (the only reference prompts allow, see
    :func:`aad_bench.data.sources.check_source`) the stage stops when it falls below ``threshold`` x its value at
    generator step 0. ``decode`` maps latent clips ``[B,T,c,h,w]`` to pixels (identity when None); ``context``: the
    probes' text embeddings (None without text).
    """
    if gts and len(gts) != len(cond):
        raise ValueError(f"dmd.early_stop.criterion=motion: {len(gts)} ground truths for {len(cond)} probes")
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([cond[:, None], self_rollout(student, cond, frames, g, steps, None, context=context)], 1)
    x = decode(x) if decode is not None else x
    clips = [to_uint8(c) for c in x]
    if gts:
        return motion_summary(clips, gts)["speed_ratio"]
    speed = sum(mean_speed(c) for c in clips) / len(clips)
    return speed if data_speed is None else speed / max(data_speed, 1e-9)


def early_stop_reason(es: DictConfig, step: int, ratio: float | None, start_ratio: float | None) -> str | None:
    """Why Stage II should stop now (None = continue).

    ``reference: start`` compares the rollouts' motion with the motion at the start of Stage II (stop when it has
    fallen below ``threshold`` x that); ``reference: data`` compares with the data's motion directly.
    """
    if es.criterion not in ("budget", "motion"):
        raise ValueError(f"dmd.early_stop.criterion must be 'budget' or 'motion', got {es.criterion!r}")
    if es.reference not in ("start", "data"):
        raise ValueError(f"dmd.early_stop.reference must be 'start' or 'data', got {es.reference!r}")
    if es.criterion != "motion" or ratio is None:
        return None
    ref = start_ratio if es.reference == "start" else 1.0
    if ref is not None and ratio < es.threshold * ref:
        what = f"{es.threshold} x its value at the start of Stage II ({ref:.3f})" if es.reference == "start" \
            else f"threshold {es.threshold}"
        return f"motion ratio {ratio:.3f} fell below {what} at generator step {step}"
    return None


#################################################################################
#                                 The stage loop                                #
#################################################################################

def dmd_stage(ctx: DistillContext, state: dict[str, Any] | None) -> None:
    """Stage II: DMD with self-rollout, critic:generator updates = ``ratio``:1, optional early stopping.

    The critic trains on a fresh rollout (new conditioning frames, no gradient) for every update, as
    Self-Forcing's critic sees a new generator sample each step (``critic_rollout: reuse`` trains it ``ratio`` times
    on the generator's own rollout instead). Early stopping checks the probes' motion every ``early_stop.every``
    generator steps and, when it fails, restores the weights of the last check that passed (the Stage I weights if
    none did): the stage ends with a student that passed, not with the one that collapsed.

    ``state`` is this stage's latest checkpoint (resume) or None.
    """
    dc, dz = ctx.cfg.method.dmd, ctx.cfg.distill
    if dc.ratio < 1:
        raise ValueError(f"method.dmd.ratio (critic updates per generator update) must be >= 1, got {dc.ratio}")
    if dc.critic_rollout not in ("fresh", "reuse"):
        raise ValueError(f"method.dmd.critic_rollout must be fresh|reuse, got {dc.critic_rollout!r}")
    opt = lambda lr: lambda m: make_optimizer(m.parameters(), lr, betas=dc.betas,  # noqa: E731
                                              weight_decay=dc.weight_decay)
    student = ctx.prepare(ctx.student, opt(dc.lr_gen), "student", dc.batch, "method.dmd.batch", dc.grad_clip)
    with seeded(ctx.seed, "dmd/critic"):
        critic = copy.deepcopy(ctx.teacher).requires_grad_(True).train()  # fake score starts at the real score
    critic = ctx.prepare(critic, opt(dc.lr_critic), "critic", dc.batch, "method.dmd.batch", dc.grad_clip,
                         context_parallel=True)
    start = ctx.restore(state, {"student": student, "critic": critic})
    checks = dc.early_stop.criterion == "motion"
    probe = (lambda: motion_ratio(student, ctx.probe_cond, ctx.probe_gts, ctx.frames, ctx.student_steps,
                                  ctx.data_speed, ctx.seed, ctx.decode, context=ctx.probe_context)) if checks else None
    history = list(state["stage_info"].get(STAGE, {}).get("motion", [])) if state is not None else []
    passed = None  # the weights of the last motion check that passed: {"step", "student"}
    if state is not None and checks:
        kept = ctx.saved_weights(state, "passed")
        step0 = state["stage_info"].get(STAGE, {}).get("passed_step", start)
        passed = {"step": step0, "student": kept} if kept is not None else None
    elif checks:  # the reference: motion of the rollouts before any DMD step
        history.append([0, probe()])
    if checks and passed is None:
        passed = {"step": start, "student": student.full_state_dict()}
    student.train()
    grad_chunks = grad_chunk_set(dc.grad_chunks, ctx.frames // student.cfg.chunk)
    refresh_grad = bool(ctx.cfg.method.student.get("refresh_grad", False))
    bar = tqdm(total=dc.steps, initial=start, desc="stage II (DMD)", disable=not ctx.progress, leave=False)
    log = StepLogger(ctx.run, STAGE, dz.log_every, bar, ctx.tracker)
    stop, step = None, start
    for step in range(start, dc.steps):
        g = step_generator(ctx.seed, STAGE, step)
        torch.manual_seed(g.initial_seed())
        clips, text = ctx.data.batch(dc.batch, g)
        cond = clips[:, 0]
        set_lr(student.optimizer, step, dc.warmup)

        # -- generator: DMD gradient on a self-rollout (accumulated over parts of the batch) --
        parts, x_hats = student.parts(dc.batch), []
        for part in parts:
            x_hat = self_rollout(student, cond[part], ctx.frames, g, ctx.student_steps, grad_chunks, refresh_grad,
                                 context_part(text, part))
            loss_g, extra = dmd_generator_loss(x_hat, cond[part], ctx.frozen_teacher, critic, dc, g,
                                               context_part(text, part))
            check_finite(STAGE, step, loss_g=loss_g.item())
            student.backward(loss_g)
            x_hats.append(x_hat.detach())
        gn = student.step(check=grad_guard(STAGE, step, dz.explode_grad))

        # -- critic: ``ratio`` denoising updates, each on a fresh no-gradient rollout of the updated student --
        for _ in range(dc.ratio):
            c_conds, c_xs, c_text = [cond[p] for p in parts], x_hats, [context_part(text, p) for p in parts]
            if dc.critic_rollout == "fresh":
                fresh, fresh_text = ctx.data.batch(dc.batch, g)
                c_conds, c_text = [fresh[p, 0] for p in parts], [context_part(fresh_text, p) for p in parts]
                with torch.no_grad():
                    c_xs = [self_rollout(student, c, ctx.frames, g, ctx.student_steps, None, context=tx)
                            for c, tx in zip(c_conds, c_text)]
            for c_cond, c_x, tx in zip(c_conds, c_xs, c_text):
                loss_c = critic_loss(critic, c_x, c_cond, g, **context_kwargs(tx))
                check_finite(STAGE, step, loss_critic=loss_c.item())
                critic.backward(loss_c)
            critic.step(check=grad_guard(STAGE, step, dz.explode_grad))

        # -- motion check (roll back on failure), logging, checkpoints --
        ratio = None
        if checks and (step + 1) % dc.early_stop.every == 0:
            ratio = probe()
            history.append([step + 1, ratio])
        log(step + 1, {"loss/dmd": loss_g.item(), "loss/critic": loss_c.item(), "grad_norm": gn, **extra,
                       **({"motion_ratio": ratio} if ratio is not None else {})}, force=ratio is not None)
        stop = early_stop_reason(dc.early_stop, step + 1, ratio, history[0][1] if history else None)
        if stop:
            stop += f"; weights restored to generator step {passed['step']}, the last check that passed"
            break
        if ratio is not None:
            passed = {"step": step + 1, "student": student.full_state_dict()}
        ctx.stage_info[STAGE] = {"motion": history, **({"passed_step": passed["step"]} if passed else {})}
        if (step + 1) % dz.ckpt_every == 0 and step + 1 < dc.steps:
            ctx.save(STAGE, step + 1, {"student": student, "critic": critic},
                     weights={"passed": passed["student"]} if passed is not None else None)
    bar.close()
    ctx.end_stage(student)
    if stop:  # the stage ends with the student of the last passing check, not the collapsed one
        ctx.student.load_state_dict(passed["student"])
    ctx.stage_info[STAGE] = {"motion": history, "steps": step + 1 if dc.steps > start else start,
                             "stopped_early": stop is not None, "stop_reason": stop or f"step budget {dc.steps}",
                             **({"kept_step": passed["step"]} if stop else {})}

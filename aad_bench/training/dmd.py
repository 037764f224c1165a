"""Stage II — one-step DMD warm-up with self-rollout (Self-Forcing style).

The student rolls the whole clip out with its KV cache; the rollout is noised to one time per clip; the DMD
gradient is ``(x0_fake − x0_real) / mean|x̂ − x0_real|`` (real = frozen teacher with CFG, fake = a critic trained
by denoising score matching on student samples) applied as ``0.5·‖x̂ − sg(x̂ − grad)‖²``. The critic gets
``ratio`` updates per generator update. Longer DMD collapses motion, so the stage can stop early when the tracked
motion of fixed rollouts falls below a threshold; when and why is recorded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from aad_bench.models.dit import VideoDiT
from aad_bench.models.rectified_flow import add_noise, frame_times, sample_times, with_cond_frame, x0_from_v
from aad_bench.sampling import causal_rollout, velocity
from aad_bench.world.tracking import mean_speed

STAGE = "dmd"


def grad_chunk_set(spec: str | int, chunks: int) -> set[int]:
    """Which rollout chunks carry gradient: ``all``, ``last``, or an int = the last k chunks."""
    if spec == "all":
        return set(range(chunks))
    if spec == "last":
        return {chunks - 1}
    if isinstance(spec, int) and spec > 0:
        return set(range(max(0, chunks - spec), chunks))
    raise ValueError(f"dmd.grad_chunks must be 'all', 'last' or a positive int, got {spec!r}")


def rollout(student: VideoDiT, cond: torch.Tensor, frames: int, g: torch.Generator, steps: list[float],
            grad_chunks: set[int] | None) -> torch.Tensor:
    """Self-rollout of ``frames`` generated frames from fixed noise drawn from ``g``."""
    chunks = frames // student.cfg.chunk
    noise = torch.randn((len(cond), frames, *cond.shape[1:]), generator=g)
    return causal_rollout(student, cond, chunks, noise=noise, steps=tuple(steps), grad_chunks=grad_chunks)


def dmd_generator_loss(x_hat: torch.Tensor, cond: torch.Tensor, teacher: VideoDiT, critic: VideoDiT,
                       dc: DictConfig, g: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """The DMD loss on a rollout ``x̂`` ``[B,F,C,H,W]`` (generated frames only)."""
    b, f = x_hat.shape[:2]
    t = dc.t_min + (dc.t_max - dc.t_min) * torch.rand(b, generator=g)
    noise = torch.randn(x_hat.shape, generator=g)
    with torch.no_grad():
        x_t = with_cond_frame(add_noise(x_hat.detach(), noise, t), cond)
        tt = frame_times(b, f, t)
        x0_real = x0_from_v(x_t, velocity(teacher, x_t, tt, dc.cfg), tt)[:, 1:]
        x0_fake = x0_from_v(x_t, critic(x_t, tt), tt)[:, 1:]
        norm = (x_hat.detach() - x0_real).abs().mean(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
        grad = torch.nan_to_num((x0_fake - x0_real) / norm)
    loss = 0.5 * F.mse_loss(x_hat.double(), (x_hat.detach() - grad).double())
    return loss.float(), {"dmd_grad_norm": grad.norm().item() / b}


def critic_loss(critic: VideoDiT, x_fake: torch.Tensor, cond: torch.Tensor, g: torch.Generator,
                time_dist: str = "uniform") -> torch.Tensor:
    """Denoising score matching (flow matching) of the critic on detached student samples."""
    b, f = x_fake.shape[:2]
    t = sample_times(b, g, time_dist)
    noise = torch.randn(x_fake.shape, generator=g)
    x_t = with_cond_frame(add_noise(x_fake, noise, t), cond)
    v = critic(x_t, frame_times(b, f, t))[:, 1:]
    return F.mse_loss(v, noise - x_fake)


@torch.no_grad()
def motion_ratio(student: VideoDiT, cond: torch.Tensor, frames: int, steps: list[float], data_speed: float,
                 seed: int, decode=None) -> float:
    """Tracked mean speed of fixed rollouts divided by the data's (the early-stopping statistic).

    ``decode`` maps latent clips ``[B,T,c,h,w]`` to pixels (the codec's decoder; identity when None).
    """
    from aad_bench.video.io import to_uint8

    g = torch.Generator().manual_seed(seed)
    x = torch.cat([cond[:, None], rollout(student, cond, frames, g, steps, None)], 1)
    x = decode(x) if decode is not None else x
    clips = [to_uint8(c) for c in x]
    speed = sum(mean_speed(c) for c in clips) / len(clips)
    return speed / max(data_speed, 1e-9)


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

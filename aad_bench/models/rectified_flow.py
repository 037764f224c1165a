"""Rectified-flow conventions shared by every method.

``x_t = (1 - t) * x0 + t * noise`` with ``t`` in [0, 1] (1 = pure noise); the network predicts the velocity
``v = noise - x0``, so ``x0 = x_t - t * v``. ``tau`` in the paper's U[0, 1000] is ``1000 * t``.
"""

from __future__ import annotations

import torch


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Noise ``x0`` ``[B,F,...]`` to per-frame times ``t`` ``[B,F]`` (or per-clip ``[B]``)."""
    t = t.view(*t.shape, *([1] * (x0.ndim - t.ndim)))
    return (1 - t) * x0 + t * noise


def x0_from_v(x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Clean estimate from a velocity prediction."""
    t = t.view(*t.shape, *([1] * (x_t.ndim - t.ndim)))
    return x_t - t * v


def shift_time(t: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    """Timestep shift (SD3 / Wan): spends more steps at high noise for ``shift > 1``."""
    return shift * t / (1 + (shift - 1) * t)


def sample_times(n: int, generator: torch.Generator, dist: str = "logit_normal") -> torch.Tensor:
    """Training times in (0, 1): ``uniform`` or ``logit_normal`` (more weight mid-trajectory)."""
    if dist == "uniform":
        return torch.rand(n, generator=generator).clamp(1e-3, 1 - 1e-3)
    if dist == "logit_normal":
        return torch.sigmoid(torch.randn(n, generator=generator))
    raise ValueError(f"unknown time distribution {dist!r} (uniform | logit_normal)")


def with_cond_frame(x_gen: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Prepend the clean conditioning frame ``[B,C,H,W]`` to generated frames ``[B,F,C,H,W]``."""
    return torch.cat([cond[:, None], x_gen], dim=1)


def frame_times(b: int, frames: int, t_gen: torch.Tensor) -> torch.Tensor:
    """``[B, 1+frames]`` times: 0 for the conditioning frame, ``t_gen`` (``[B]`` or ``[B, frames]``) after."""
    t_gen = t_gen[:, None].expand(b, frames) if t_gen.ndim == 1 else t_gen
    return torch.cat([torch.zeros(b, 1, dtype=t_gen.dtype, device=t_gen.device), t_gen], dim=1)

"""Samplers and rollouts.

The teacher's multi-step bidirectional Euler sampler (optional CFG on the image), the causal
student's chunk-by-chunk rollout with a KV cache (sink + sliding window, unbounded length, streamable), and the
self-rollout the training stages differentiate through (which chunks carry gradient).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from aad_bench.models.dit import VideoDiT
from aad_bench.models.rectified_flow import frame_times, shift_time, with_cond_frame, x0_from_v


def context_kwargs(context: torch.Tensor | None) -> dict:
    """``context=`` only when there is one: training handles and older backbones keep their exact calls."""
    return {} if context is None else {"context": context}



def velocity(model: VideoDiT, x: torch.Tensor, t: torch.Tensor, cfg_scale: float = 1.0,
             causal: bool = False, context: torch.Tensor | None = None) -> torch.Tensor:
    """Velocity with classifier-free guidance (one batched pass for both branches).

    What the unconditional branch drops is the backbone's choice (toy DiT: the image; Wan: ``model.cfg_drop``,
    the text by default). ``context``: text embeddings ``[B, L, D]`` of text-conditioned backbones, or None.
    """
    if cfg_scale == 1.0:
        return model(x, t, causal=causal, **context_kwargs(context))
    b = x.shape[0]
    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(x.device)
    ctx2 = None if context is None else torch.cat([context, context])
    v = model(torch.cat([x, x]), torch.cat([t, t]), causal=causal, cond_drop=drop, **context_kwargs(ctx2))
    v_c, v_u = v[:b], v[b:]
    return v_u + cfg_scale * (v_c - v_u)


@torch.no_grad()
def teacher_sample(model: VideoDiT, cond: torch.Tensor, frames: int, steps: int, cfg_scale: float = 1.0,
                   shift: float = 1.0, generator: torch.Generator | None = None,
                   noise: torch.Tensor | None = None, context: torch.Tensor | None = None) -> torch.Tensor:
    """Generate ``frames`` frames after the image ``cond`` ``[B,C,H,W]``; returns ``[B, frames, C, H, W]``.

    ``context``: text embeddings ``[B, L, D]`` for text-conditioned backbones (None = the empty prompt).
    """
    b = cond.shape[0]
    if noise is None:
        noise = torch.randn((b, frames, *cond.shape[1:]), generator=generator).to(cond)
    x = noise
    ts = [float(shift_time(1 - i / steps, shift)) for i in range(steps + 1)]
    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        tt = frame_times(b, frames, torch.full((b,), t_cur, device=cond.device))
        v = velocity(model, with_cond_frame(x, cond), tt, cfg_scale, context=context)[:, 1:]
        x = x + (t_next - t_cur) * v
    return x.clamp(-1.5, 1.5)


def causal_rollout(student: VideoDiT, cond: torch.Tensor, chunks: int, noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None, steps: tuple[float, ...] = (1.0,),
                   on_chunk: Callable[[torch.Tensor], None] | None = None, window: bool = True,
                   grad_chunks: set[int] | None = None, refresh_grad: bool = False,
                   context: torch.Tensor | None = None) -> torch.Tensor:
    """Autoregressive rollout: each chunk is denoised from noise along ``steps`` (one step = one-step student).

    The clean previous chunk (t = 0) and the next noisy chunk go through the network together: the clean chunk is
    written into the KV cache (Self-Forcing's cache refresh) while the new chunk is generated, so a one-step
    student costs one network evaluation per chunk. In a chunk that carries gradient, the refresh runs as its own
    pass without gradient (as Self-Forcing does), so the loss reaches the weights only through the new chunk's
    own computation; ``refresh_grad=True`` keeps the fused pass, whose gradient also flows through the keys and
    values the refresh computes. The forward values are the same either way.

    Args:
        student: the causal model (its config sets the chunk size and the cache's sink and window).
        cond: ``[B,C,H,W]`` conditioning image.
        chunks: number of chunks to generate (length is unbounded with the sink + window cache).
        noise: ``[B, chunks*chunk, C, H, W]`` initial noise (else drawn from ``generator``).
        generator: RNG for the noise when ``noise`` is None, and for the re-noising between steps of a
            few-step student (drawn on the CPU, so every device samples the same videos); None = the global RNG.
        steps: flow times to visit per chunk, starting at 1.0 (few-step students use e.g. (1.0, 0.5)).
        on_chunk: called with every finished chunk ``[B, chunk, C, H, W]`` (stream to an mp4 writer).
        window: bound the cache to sink + window (False: keep every chunk, for tests against the full forward).
        grad_chunks: chunk indices that keep their graph (self-rollout training); the others and the cache run
            without gradient, as in Self-Forcing. ``None`` = no gradient at all.
        refresh_grad: let the gradient of a chunk flow through its cache refresh too (see above).
        context: text embeddings ``[B, L, D]`` for text-conditioned backbones (None = the empty prompt).

    Returns:
        ``[B, chunks*chunk, C, H, W]`` generated frames (not including ``cond``).
    """
    ck = student.cfg.chunk
    b = cond.shape[0]
    if noise is None:
        noise = torch.randn((b, chunks * ck, *cond.shape[1:]), generator=generator).to(cond)
    cache = student.new_cache(window=window)
    out: list[torch.Tensor] = []
    prev, prev_t = cond[:, None], cond.new_zeros(b, 1)
    for k in range(chunks):
        grad = grad_chunks is not None and k in grad_chunks
        if grad and not refresh_grad:  # the refresh on its own, without gradient
            with torch.no_grad():
                student.forward_cached(prev, prev_t, cache, write_frames=prev.shape[1], **context_kwargs(context))
            prev = prev[:, :0]
        with torch.set_grad_enabled(grad):
            x = noise[:, k * ck:(k + 1) * ck]
            for i, t_cur in enumerate(steps):
                t_vec = cond.new_full((b, ck), t_cur)
                if i == 0 and prev.shape[1]:  # refresh the cache with the previous clean chunk in the same pass
                    v = student.forward_cached(torch.cat([prev, x], 1), torch.cat([prev_t, t_vec], 1), cache,
                                               write_frames=prev.shape[1], **context_kwargs(context))[:, prev.shape[1]:]
                else:
                    v = student.forward_cached(x, t_vec, cache, write_frames=0, **context_kwargs(context))
                x0 = x0_from_v(x, v, t_vec)
                t_next = steps[i + 1] if i + 1 < len(steps) else 0.0
                x = x0 if t_next == 0.0 else (1 - t_next) * x0 + t_next * _fresh_noise(x0, generator)
            out.append(x)
            if on_chunk is not None:
                on_chunk(x.detach())
            prev, prev_t = x.detach(), cond.new_zeros(b, ck)
    return torch.cat(out, dim=1)


def _fresh_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn_like(like)
    return torch.randn(like.shape, generator=generator, device=generator.device).to(like)


def grad_chunk_set(spec: str | int, chunks: int) -> set[int]:
    """Which rollout chunks carry gradient: ``all``, ``last``, or an int = the last k chunks."""
    if spec == "all":
        return set(range(chunks))
    if spec == "last":
        return {chunks - 1}
    if isinstance(spec, int) and not isinstance(spec, bool) and spec > 0:
        return set(range(max(0, chunks - spec), chunks))
    raise ValueError(f"grad_chunks must be 'all', 'last' or a positive int, got {spec!r}")


def self_rollout(student: VideoDiT, cond: torch.Tensor, frames: int, g: torch.Generator, steps: list[float],
                 grad_chunks: set[int] | None, refresh_grad: bool = False,
                 context: torch.Tensor | None = None) -> torch.Tensor:
    """Training self-rollout of ``frames`` frames from noise drawn from ``g`` (gradient per ``grad_chunks``).

    ``context``: the clips' text embeddings ``[B, L, D]`` for text-conditioned backbones, or None.
    """
    chunks = frames // student.cfg.chunk
    noise = torch.randn((len(cond), frames, *cond.shape[1:]), generator=g)
    return causal_rollout(student, cond, chunks, noise=noise, steps=tuple(steps), grad_chunks=grad_chunks,
                          refresh_grad=refresh_grad, context=context)

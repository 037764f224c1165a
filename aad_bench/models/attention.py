"""Self-attention with 3-D rotary positions, block-causal masks and a sink + sliding-window KV cache.

Frame layout: frame 0 is the conditioning image and forms chunk 0 on its own; generated frames are grouped in
chunks of ``chunk`` frames. Block-causal = full attention inside a chunk, causal across chunks.

The cache stores keys *before* the rotary embedding. Positions are assigned at attention time from the cache's
layout (sink frames first, then the window, then the new frames), so query–key distances stay in the training
range however long the rollout runs (relative RoPE). While nothing was evicted these positions equal the
absolute frame indices, which is why streaming equals the full block-causal forward.

Kernels (:func:`attend`): SDPA everywhere (flash / memory-efficient kernels on GPU when there is no mask); a
block-causal mask runs as a flex_attention ``BlockMask`` on CUDA (the sparse blocks are skipped) and as an SDPA
boolean mask on the CPU, where flex_attention has no backward. Context parallelism (``aad_bench.engine.ulysses``)
plugs in through ``Attention.seq_parallel``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn


class HeadParallel(Protocol):
    """What attention needs from a context-parallel group (implemented by ``engine.ulysses.SeqParallel``)."""

    def heads_from_seq(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``[B, H, L/P, d]`` x3 → ``[B, H/P, L, d]`` x3 (all tokens of this rank's heads)."""

    def seq_from_heads(self, o: torch.Tensor) -> torch.Tensor:
        """``[B, H/P, L, d]`` → ``[B, H, L/P, d]``."""


def chunk_ids(frames: int, chunk: int, first: int = 0) -> torch.Tensor:
    """Chunk index of each frame; frame 0 (absolute) is its own chunk. ``first`` = absolute index of frame 0 here."""
    idx = torch.arange(first, first + frames)
    return torch.where(idx == 0, torch.zeros_like(idx), 1 + (idx - 1).clamp(min=0) // chunk)


@functools.lru_cache(maxsize=8)
def _block_causal(frames: int, chunk: int, tokens_per_frame: int, first: int, device: str) -> torch.Tensor:
    c = chunk_ids(frames, chunk, first).repeat_interleave(tokens_per_frame).to(device)
    return c[None, :] <= c[:, None]


def block_causal_mask(frames: int, chunk: int, tokens_per_frame: int, first: int = 0,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean ``[L, L]`` mask (True = may attend): key chunk ≤ query chunk.

    Cached per shape and device (read-only: do not modify it), so the flex ``BlockMask`` built from it on CUDA is
    built once per clip shape rather than once per forward.
    """
    return _block_causal(frames, chunk, tokens_per_frame, first, str(torch.device(device)))


def _flex_ready(q: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """flex_attention on CUDA for a masked full-clip forward (power-of-two head dims >= 16, the kernel's sizes).

    Streaming steps keep SDPA: their key length grows every chunk, and each new shape would recompile flex.
    """
    d = q.shape[-1]
    square = mask is not None and mask.shape[0] == mask.shape[1] == q.shape[-2]  # full clip, not a cached step
    return square and q.is_cuda and d >= 16 and d & (d - 1) == 0


@functools.cache
def _compiled_flex() -> Any:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def block_mask_for(mask: torch.Tensor) -> Any:
    """The flex ``BlockMask`` of a dense boolean mask, memoised on the mask tensor itself."""
    bm = getattr(mask, "_aad_block_mask", None)
    if bm is None:
        from torch.nn.attention.flex_attention import create_block_mask

        dense = mask

        def mask_mod(b, h, q_idx, kv_idx):
            return dense[q_idx, kv_idx]

        bm = create_block_mask(mask_mod, None, None, mask.shape[0], mask.shape[1], device=mask.device)
        mask._aad_block_mask = bm
    return bm


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Scaled dot-product attention of ``[B, H, L, d]`` tensors; ``mask`` boolean ``[Lq, Lk]`` or None."""
    if _flex_ready(q, mask):
        return _compiled_flex()(q, k, v, block_mask=block_mask_for(mask))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class Rotary3D(nn.Module):
    """Rotary embedding over (frame, row, column); half the head dim encodes time, a quarter each axis."""

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 8:
            raise ValueError(f"model: head dim must be a multiple of 8 for 3-D RoPE, got {head_dim}")
        self.dims = (head_dim // 2, head_dim // 4, head_dim // 4)
        for name, d in zip(("t", "y", "x"), self.dims):
            self.register_buffer(f"inv_{name}", 1.0 / theta ** (torch.arange(0, d, 2).float() / d), persistent=False)

    def angles(self, pos_t: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
        """Angles ``[L, head_dim/2]`` for tokens of frames at positions ``pos_t`` (one per frame)."""
        n = grid_h * grid_w
        t = pos_t.float().repeat_interleave(n)
        y = torch.arange(grid_h, device=t.device).repeat_interleave(grid_w).repeat(len(pos_t)).float()
        x = torch.arange(grid_w, device=t.device).repeat(grid_h * len(pos_t)).float()
        return torch.cat([t[:, None] * self.inv_t, y[:, None] * self.inv_y, x[:, None] * self.inv_x], dim=-1)

    @staticmethod
    def rotate(x: torch.Tensor, ang: torch.Tensor) -> torch.Tensor:
        """Apply angles ``[L, d/2]`` to ``x`` ``[B, heads, L, d]`` (pairs of adjacent channels)."""
        cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


@dataclass
class KVCache:
    """Per-layer keys/values of finished chunks, bounded to ``sink_chunks`` + a window of ``window_frames``.

    ``chunks`` lists the frame count of every cached chunk (shared by all layers).
    """

    depth: int
    sink_chunks: int = 1
    window_frames: int | None = None  # None = unbounded
    k: list[torch.Tensor | None] = field(default_factory=list)
    v: list[torch.Tensor | None] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    frames_seen: int = 0  # absolute index of the next frame
    image: torch.Tensor | None = None  # the conditioning image, fed to every later frame channel-wise

    def __post_init__(self) -> None:
        self.k = [None] * self.depth
        self.v = [None] * self.depth

    @property
    def frames(self) -> int:
        """Frames held in the cache (sink + window)."""
        return sum(self.chunks)

    def tokens(self) -> int:
        """Tokens held per layer."""
        return 0 if self.k[0] is None else self.k[0].shape[2]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store new keys/values ``[B, heads, L, d]`` of layer ``layer`` (call :meth:`commit` after all layers)."""
        self.k[layer] = k if self.k[layer] is None else torch.cat([self.k[layer], k], dim=2)
        self.v[layer] = v if self.v[layer] is None else torch.cat([self.v[layer], v], dim=2)

    def commit(self, chunk_frames: list[int], tokens_per_frame: int) -> None:
        """Record the chunks just appended, then evict the oldest non-sink chunks beyond the window."""
        self.chunks.extend(chunk_frames)
        self.frames_seen += sum(chunk_frames)
        if self.window_frames is None:
            return
        while sum(self.chunks[self.sink_chunks:]) > self.window_frames and len(self.chunks) > self.sink_chunks + 1:
            start = sum(self.chunks[: self.sink_chunks]) * tokens_per_frame
            stop = start + self.chunks[self.sink_chunks] * tokens_per_frame
            for i in range(self.depth):
                self.k[i] = torch.cat([self.k[i][:, :, :start], self.k[i][:, :, stop:]], dim=2)
                self.v[i] = torch.cat([self.v[i][:, :, :start], self.v[i][:, :, stop:]], dim=2)
            del self.chunks[self.sink_chunks]


class Attention(nn.Module):
    """Multi-head self-attention with QK RMS-norm (keeps logits bounded in adversarial training) and 3-D RoPE."""

    seq_parallel: HeadParallel | None = None  # set by engine.ulysses.enable: tokens split over a CP group

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"model: dim {dim} not divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return self.q_norm(q), self.k_norm(k), v

    def forward(self, x: torch.Tensor, ang: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Full-sequence attention; ``mask`` is boolean ``[L, L]`` or None (bidirectional).

        Under context parallelism ``x`` holds this rank's tokens, while ``ang`` and ``mask`` cover the whole clip:
        the all-to-all hands each rank all tokens of its share of the heads, which is what they index.
        """
        q, k, v = self._split(x)
        sp = self.seq_parallel
        if sp is not None:
            q, k, v = sp.heads_from_seq(q, k, v)
        q, k = Rotary3D.rotate(q, ang), Rotary3D.rotate(k, ang)
        o = attend(q, k, v, mask)
        if sp is not None:
            o = sp.seq_from_heads(o)
        return self.out(o.transpose(1, 2).flatten(2))

    def forward_cached(self, x: torch.Tensor, ang: torch.Tensor, mask: torch.Tensor, cache: KVCache,
                       layer: int, write_tokens: int) -> torch.Tensor:
        """Attend from new tokens to cached + new keys; store the first ``write_tokens`` new keys/values.

        ``ang`` covers cached tokens then new tokens; ``mask`` is ``[L_new, L_cache + L_new]``.
        """
        q, k, v = self._split(x)
        n_cache = 0 if cache.k[layer] is None else cache.k[layer].shape[2]  # before this call's own append
        if n_cache:
            k_all, v_all = torch.cat([cache.k[layer], k], dim=2), torch.cat([cache.v[layer], v], dim=2)
        else:
            k_all, v_all = k, v
        qr = Rotary3D.rotate(q, ang[n_cache:])
        kr = Rotary3D.rotate(k_all, ang)
        o = attend(qr, kr, v_all, mask)
        if write_tokens:  # the cache carries no graph: earlier chunks are context, as in Self-Forcing
            cache.append(layer, k[:, :, :write_tokens].detach(), v[:, :, :write_tokens].detach())
        return self.out(o.transpose(1, 2).flatten(2))

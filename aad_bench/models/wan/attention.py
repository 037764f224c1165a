"""Block-causal, streaming self-attention for diffusers' Wan blocks.

``WanTransformerBlock`` calls ``attn1(norm_h, None, None, rotary_emb)``, so a mask cannot travel through
``forward``. Instead every block's self-attention gets a :class:`StreamingSelfAttnProcessor` that reads the mask,
the rotary angles and the cached keys from the :class:`AttnState` the adapter binds before each call.
Cross-attention keeps diffusers' own ``WanAttnProcessor`` (text, and CLIP image tokens for I2V).

Keys are cached *after* the QK RMS-norm and *before* RoPE; positions are given at attention time from the cache
layout (sink, window, new frames), so query-key distances stay in the training range however long the rollout
runs (relative RoPE, as in the toy backbone). With nothing evicted they equal the absolute frame indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from aad_bench.models.attention import chunk_ids


@dataclass
class AttnState:
    """What the self-attention of every block needs for one pass (set by the adapter, cleared after)."""

    ang_q: torch.Tensor | None = None   # [Lq, head_dim/2] rotary angles of the new tokens
    ang_k: torch.Tensor | None = None   # [Lc + Lq, head_dim/2] angles of cached + new keys
    mask: Any = None                    # None (bidirectional), bool [Lq, Lk] (SDPA) or a flex BlockMask
    past_k: list[torch.Tensor | None] | None = None  # per layer, cached keys [B, H, Lc, D] (a snapshot)
    past_v: list[torch.Tensor | None] | None = None
    write_tokens: int = 0               # the first new tokens whose keys/values go to the cache afterwards
    new_k: list[torch.Tensor | None] = field(default_factory=list)  # filled by the processors
    new_v: list[torch.Tensor | None] = field(default_factory=list)


def rope_angles(pos_t: torch.Tensor, grid_h: int, grid_w: int, head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """Wan's 3-D RoPE angles ``[L, head_dim/2]`` for frames at (possibly offset) positions ``pos_t``.

    Same split as diffusers' ``WanRotaryPosEmbed``: ``h = w = 2*(head_dim//6)`` channels, time takes the rest;
    frequencies ``theta^(-2i/d)`` per axis; tokens ordered frame, row, column.
    """
    hw = 2 * (head_dim // 6)
    dims = (head_dim - 2 * hw, hw, hw)
    dev = pos_t.device
    inv = [1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64, device=dev) / d) for d in dims]
    n = grid_h * grid_w
    t = pos_t.double().repeat_interleave(n)
    y = torch.arange(grid_h, device=dev, dtype=torch.float64).repeat_interleave(grid_w).repeat(len(pos_t))
    x = torch.arange(grid_w, device=dev, dtype=torch.float64).repeat(grid_h * len(pos_t))
    return torch.cat([t[:, None] * inv[0], y[:, None] * inv[1], x[:, None] * inv[2]], dim=-1)


def rotate(x: torch.Tensor, ang: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of ``x`` ``[B, H, L, D]`` by ``ang`` ``[L, D/2]`` (computed in fp32+)."""
    cos, sin = ang.cos(), ang.sin()
    xf = x.to(cos.dtype)
    x1, x2 = xf[..., 0::2], xf[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2).type_as(x)


def sdpa_mask(frames: int, chunk: int, tokens_per_frame: int, first: int = 0, cached_frames: int = 0,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean ``[Lq, Lc + Lq]`` mask: every cached key visible, new keys block-causal (key chunk <= query chunk)."""
    local = chunk_ids(frames, chunk, first).repeat_interleave(tokens_per_frame).to(device)
    causal = local[None, :] <= local[:, None]
    if not cached_frames:
        return causal
    seen = torch.ones(len(local), cached_frames * tokens_per_frame, dtype=torch.bool, device=device)
    return torch.cat([seen, causal], dim=1)


def flex_block_mask(frames: int, chunk: int, tokens_per_frame: int, first: int = 0, cached_frames: int = 0,
                    device: torch.device | str = "cuda"):
    """The same visibility as :func:`sdpa_mask` as a flex-attention ``BlockMask`` (sparse, GPU training)."""
    from torch.nn.attention.flex_attention import create_block_mask

    q_ids = chunk_ids(frames, chunk, first).repeat_interleave(tokens_per_frame).to(device)
    k_ids = torch.cat([torch.full((cached_frames * tokens_per_frame,), -1, dtype=q_ids.dtype, device=device), q_ids])

    def visible(b, h, q, k):
        return k_ids[k] <= q_ids[q]

    return create_block_mask(visible, None, None, len(q_ids), len(k_ids), device=device)


_FLEX = None


def _flex_attention(q, k, v, block_mask):
    """Flex attention: compiled on CUDA, eager elsewhere.

    Eager flex materialises the full score matrix; on CPU it only serves forward checks (no CPU backward).
    """
    global _FLEX
    from torch.nn.attention.flex_attention import flex_attention

    if not q.is_cuda:
        return flex_attention(q, k, v, block_mask=block_mask)
    if _FLEX is None:
        _FLEX = torch.compile(flex_attention, dynamic=False)
    return _FLEX(q, k, v, block_mask=block_mask)


class StreamingSelfAttnProcessor:
    """Self-attention of one Wan block with a mask, frame-offset RoPE and a sink + window KV cache.

    The adapter binds a fresh :class:`AttnState` before each call (also when activation checkpointing re-runs
    the block in backward), so recomputation sees the cache exactly as the forward pass did.

    Args:
        layer: this block's index (its slot in the KV cache).
    """

    def __init__(self, layer: int) -> None:
        self.layer = layer
        self.state: AttnState | None = None

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, rotary_emb: Any = None) -> torch.Tensor:
        """Diffusers' processor signature; mask, positions and cache come from :attr:`state` instead."""
        if encoder_hidden_states is not None:
            raise RuntimeError("StreamingSelfAttnProcessor is for self-attention (attn1) only")
        s = self.state
        if s is None or s.ang_q is None:
            raise RuntimeError("Wan self-attention called outside the aad_bench adapter (no positions set)")
        if getattr(attn, "fused_projections", False):
            q, k, v = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        else:
            q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        q, k = attn.norm_q(q), attn.norm_k(k)
        q, k, v = (z.unflatten(2, (attn.heads, -1)).transpose(1, 2) for z in (q, k, v))  # [B, H, L, D]
        k_all, v_all = k, v
        if s.past_k is not None and s.past_k[self.layer] is not None:
            k_all = torch.cat([s.past_k[self.layer].to(k), k], dim=2)
            v_all = torch.cat([s.past_v[self.layer].to(v), v], dim=2)
        q, k_all = rotate(q, s.ang_q), rotate(k_all, s.ang_k)
        if s.mask is not None and not isinstance(s.mask, torch.Tensor):
            o = _flex_attention(q, k_all, v_all, s.mask)
        else:
            o = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=s.mask)
        if s.write_tokens:  # earlier chunks are context without a graph (Self-Forcing); the adapter commits them
            s.new_k[self.layer] = k[:, :, :s.write_tokens].detach()
            s.new_v[self.layer] = v[:, :, :s.write_tokens].detach()
        o = o.transpose(1, 2).flatten(2).type_as(q)
        return attn.to_out[1](attn.to_out[0](o))

"""A small video DiT that plays every role: bidirectional teacher, block-causal student, critic, D backbone.

Input ``x`` is ``[B, F, C, H, W]`` where frame 0 is the (clean) conditioning image; ``t`` is ``[B, F]`` — one flow
time per frame in [0, 1] (diffusion forcing needs independent noise levels). The output is the flow-matching
velocity ``v = noise - x0`` for every frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from aad_bench.models.attention import Attention, KVCache, Rotary3D, block_causal_mask, chunk_ids

ARCH_VERSION = 2  # bump when weights of an old architecture can no longer load: cache keys include it


@dataclass
class DiTConfig:
    """Backbone shape. ``chunk`` is in latent frames; ``window_frames`` bounds the streaming cache."""

    channels: int = 3
    height: int = 32
    width: int = 32
    patch: int = 4
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    chunk: int = 4
    sink_chunks: int = 1
    window_frames: int = 8

    def __post_init__(self) -> None:
        if self.height % self.patch or self.width % self.patch:
            raise ValueError(f"model.patch={self.patch} must divide the frame size {self.height}x{self.width}")
        if self.chunk < 1:
            raise ValueError(f"model.chunk must be >= 1, got {self.chunk}")
        if self.window_frames < self.chunk:
            raise ValueError(f"model.window_frames={self.window_frames} is smaller than a chunk ({self.chunk})")

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (rows, columns) of one frame."""
        return self.height // self.patch, self.width // self.patch

    @property
    def tokens_per_frame(self) -> int:
        """Tokens per frame."""
        return self.grid[0] * self.grid[1]

    def check_frames(self, frames: int) -> None:
        """Clips are 1 conditioning frame + whole chunks."""
        if frames < 2 or (frames - 1) % self.chunk:
            raise ValueError(f"model.chunk={self.chunk} must divide the generated frame count {frames - 1} "
                             f"(clip = 1 conditioning frame + {frames - 1})")

    def to_dict(self) -> dict:
        """The settings as a plain dict."""
        return asdict(self)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of flow times in [0, 1] (scaled to 0..1000 like diffusion timesteps)."""
    half = dim // 2
    t = t if t.is_floating_point() else t.float()
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    args = t[..., None] * 1000.0 * freqs
    return torch.cat([args.cos(), args.sin()], dim=-1)


class Block(nn.Module):
    """DiT block with per-token adaLN-zero modulation (tokens of a frame share that frame's timestep)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, attend) -> torch.Tensor:
        """Modulated attention (``attend`` = full, block-causal or cached) then MLP, both gated."""
        s1, sc1, g1, s2, sc2, g2 = self.ada(c).chunk(6, dim=-1)
        x = x + g1 * attend(self.norm1(x) * (1 + sc1) + s1)
        return x + g2 * self.mlp(self.norm2(x) * (1 + sc2) + s2)


class VideoDiT(nn.Module):
    """Patchified video transformer with bidirectional / block-causal / streaming attention from one module."""

    seq_parallel = None  # engine.ulysses.SeqParallel when the full-clip forward runs context-parallel

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        p, d = cfg.patch, cfg.dim
        # every frame also sees the image channel-wise (as Wan-I2V concatenates the image latent): copying the
        # static background is then a local operation, which a small model learns in minutes instead of hours
        self.patch_in = nn.Linear(2 * cfg.channels * p * p, d)
        self.null_cond = nn.Parameter(torch.zeros(1, 1, d))  # replaces the image tokens for CFG's unconditional
        self.cond_embed = nn.Parameter(torch.zeros(1, 1, d))  # marks conditioning-frame tokens
        self.t_mlp = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.rope = Rotary3D(d // cfg.heads)
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.patch_out = nn.Linear(d, cfg.channels * p * p)
        nn.init.zeros_(self.ada_out[1].weight)
        nn.init.zeros_(self.ada_out[1].bias)
        nn.init.zeros_(self.patch_out.weight)
        nn.init.zeros_(self.patch_out.bias)
        nn.init.normal_(self.cond_embed, std=0.02)

    # -- token plumbing ---------------------------------------------------------------------------
    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """``[B,F,C,H,W]`` → ``[B, F*n, C*p*p]``."""
        b, f, c, h, w = x.shape
        p = self.cfg.patch
        if (c, h, w) != (self.cfg.channels, self.cfg.height, self.cfg.width):
            raise ValueError(f"model expects frames {self.cfg.channels}x{self.cfg.height}x{self.cfg.width}, "
                             f"got {c}x{h}x{w}")
        x = x.reshape(b, f, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4, 6)
        return x.reshape(b, f * (h // p) * (w // p), c * p * p)

    def unpatchify(self, tok: torch.Tensor, frames: int) -> torch.Tensor:
        """``[B, F*n, C*p*p]`` → ``[B,F,C,H,W]``."""
        b = tok.shape[0]
        p, (gh, gw), c = self.cfg.patch, self.cfg.grid, self.cfg.channels
        x = tok.reshape(b, frames, gh, gw, c, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return x.reshape(b, frames, c, gh * p, gw * p)

    def embed(self, x: torch.Tensor, t: torch.Tensor, first: int, cond_drop: torch.Tensor | None,
              image: torch.Tensor | None = None):
        """Tokens and per-token conditioning for frames starting at absolute index ``first``.

        ``image`` ``[B,C,H,W]`` is the conditioning image; it defaults to ``x[:, 0]`` when frame 0 is present.
        """
        b, f = x.shape[:2]
        n = self.cfg.tokens_per_frame
        if image is None:
            if first != 0:
                raise ValueError("embed: frames after the first need the conditioning image")
            image = x[:, 0]
        if cond_drop is not None:  # the unconditional branch of CFG sees no image anywhere
            image = torch.where(cond_drop.view(b, 1, 1, 1), torch.zeros_like(image), image)
        img = self.patchify(image[:, None]).repeat(1, f, 1)
        tok = self.patch_in(torch.cat([self.patchify(x), img], dim=-1))
        if first == 0:  # the conditioning frame is present: mark it, or blank it for the unconditional pass
            cond = tok[:, :n] + self.cond_embed
            if cond_drop is not None:
                cond = torch.where(cond_drop.view(b, 1, 1), self.null_cond.expand_as(cond), cond)
            tok = torch.cat([cond, tok[:, n:]], dim=1)
        c = self.t_mlp(timestep_embedding(t, 256)).repeat_interleave(n, dim=1)
        return tok, c

    def head(self, h: torch.Tensor, c: torch.Tensor, frames: int) -> torch.Tensor:
        """The velocity head: adaLN-modulated projection back to frames."""
        shift, scale = self.ada_out(c).chunk(2, dim=-1)
        return self.unpatchify(self.patch_out(self.norm_out(h) * (1 + scale) + shift), frames)

    # -- full-sequence forward ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor, causal: bool = False, cond_drop: torch.Tensor | None = None,
                features: tuple[int, ...] = (), head: bool = True, context=None):
        """Velocity for every frame (and the hidden tokens after the blocks listed in ``features``).

        Args:
            x: ``[B,F,C,H,W]``, frame 0 = conditioning image.
            t: ``[B,F]`` flow times (frame 0 should be 0).
            causal: block-causal mask (student, causal discriminator) instead of bidirectional.
            cond_drop: ``[B]`` bool, drop the image condition (classifier-free guidance).
            features: 0-based block indices whose outputs ``[B, F*n, D]`` are returned too.
            head: compute the velocity head (discriminators only need features).
            context: text embeddings (interface of text-conditioned backbones); the toy DiT ignores them.
        """
        b, f = x.shape[:2]
        self.cfg.check_frames(f)
        if t.shape != (b, f):
            raise ValueError(f"t must be [B, F] = {(b, f)}, got {tuple(t.shape)}")
        tok, c = self.embed(x, t, 0, cond_drop)
        ang = self.rope.angles(torch.arange(f, device=x.device), *self.cfg.grid)
        mask = block_causal_mask(f, self.cfg.chunk, self.cfg.tokens_per_frame, device=x.device) if causal else None
        sp = self.seq_parallel  # context parallel: the blocks see this rank's tokens; angles and mask stay global
        tok, cb = (sp.split(tok), sp.split(c)) if sp is not None else (tok, c)
        feats = []
        for i, blk in enumerate(self.blocks):
            tok = blk(tok, cb, lambda z, blk=blk: blk.attn(z, ang, mask))
            if i in features:
                feats.append(tok if sp is None else sp.gather(tok))
        if features and len(feats) != len(set(features)):
            raise ValueError(f"feature depths {features} outside 0..{len(self.blocks) - 1}")
        if sp is not None and head:
            tok = sp.gather(tok)
        out = self.head(tok, c, f) if head else None
        return (out, feats) if features else out

    # -- streaming forward ------------------------------------------------------------------------
    def new_cache(self, window: bool = True) -> KVCache:
        """An empty KV cache (sink + sliding window from the config; ``window=False`` = unbounded)."""
        return KVCache(len(self.blocks), self.cfg.sink_chunks, self.cfg.window_frames if window else None)

    def forward_cached(self, x: torch.Tensor, t: torch.Tensor, cache: KVCache, write_frames: int = 0,
                       cond_drop: torch.Tensor | None = None, context=None) -> torch.Tensor:
        """Velocity for new frames that follow the cached ones; block-causal inside ``x`` too (``context`` ignored).

        The first ``write_frames`` frames of ``x`` (whole chunks) are stored in the cache afterwards. Feeding
        [clean previous chunk (t=0), noisy next chunk] with ``write_frames`` = the previous chunk refreshes the cache
        and generates in one network evaluation.
        """
        f, n, first = x.shape[1], self.cfg.tokens_per_frame, cache.frames_seen
        ids = chunk_ids(f, self.cfg.chunk, first)
        if first == 0:
            cache.image = x[:, 0]
        tok, c = self.embed(x, t, first, cond_drop, cache.image)
        # relative positions: cached frames are laid out contiguously, new frames follow
        ang = self.rope.angles(torch.arange(cache.frames + f, device=x.device), *self.cfg.grid)
        local = ids.repeat_interleave(n).to(x.device)
        mask = torch.cat([torch.ones(f * n, cache.frames * n, dtype=torch.bool, device=x.device),
                          local[None, :] <= local[:, None]], dim=1)
        write = write_frames * n
        for i, blk in enumerate(self.blocks):
            tok = blk(tok, c, lambda z, blk=blk, i=i: blk.attn.forward_cached(z, ang, mask, cache, i, write))
        if write_frames:
            w_ids = ids[:write_frames].tolist()
            cache.commit([w_ids.count(k) for k in dict.fromkeys(w_ids)], n)
        return self.head(tok, c, f)

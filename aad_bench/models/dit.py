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
from aad_bench.models.layout import ChunkedFrames

ARCH_VERSION = 2  # bump when weights of an old architecture can no longer load: cache keys include it
IMAGE_COND = ("concat", "chunk0")
PREDICT = ("v", "x0")
MLP = ("linear", "conv")


@dataclass
class DiTConfig(ChunkedFrames):
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
    image_cond: str = "concat"  # concat: the image channel-wise in every frame | chunk0: only as frame 0 (KV chunk 0)
    predict: str = "v"  # what the last layer outputs: v (velocity) | x0 (the clean frames; converted to v)
    x0_t_min: float = 0.05  # x0: v = (x_t - x0) / max(t, x0_t_min), as JiT clips its denominator
    image_skip: bool = False  # x0: the head predicts x0 - image (the conditioning frame), so "keep the image" is 0
    precond: bool = False  # x0: EDM-style skip from x_t (see VideoDiT.velocity)
    sigma_data: float = 0.5  # precond: the scale of what the head predicts (x0, or x0 - image with image_skip)
    pos_embed: bool = False  # also add sin-cos embeddings of (frame, row, column) to the tokens (see VideoDiT)
    pos_frames: bool = True  # pos_embed includes the frame position; false: (row, column) only, frame order from RoPE
    mlp: str = "linear"  # conv: a 3x3 depthwise convolution over each frame's token grid inside the MLP (ConvMLP)

    def __post_init__(self) -> None:
        if self.image_cond not in IMAGE_COND:
            raise ValueError(f"model.image_cond must be one of {IMAGE_COND}, got {self.image_cond!r}")
        if self.mlp not in MLP:
            raise ValueError(f"model.mlp must be one of {MLP}, got {self.mlp!r}")
        if self.predict not in PREDICT:
            raise ValueError(f"model.predict must be one of {PREDICT}, got {self.predict!r}")
        if (self.image_skip or self.precond) and self.predict != "x0":
            raise ValueError("model.image_skip and model.precond need model.predict=x0 (they shape the clean estimate)")
        if self.height % self.patch or self.width % self.patch:
            raise ValueError(f"model.patch={self.patch} must divide the frame size {self.height}x{self.width}")
        if self.chunk < 1:
            raise ValueError(f"model.chunk must be >= 1, got {self.chunk}")
        if self.window_frames < self.chunk:
            raise ValueError(f"model.window_frames={self.window_frames} is smaller than a chunk ({self.chunk})")

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


def _per_frame(scale: torch.Tensor, x: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """``x * scale (+ shift)`` with per-frame ``[B, F, 1, D]`` factors on tokens ``[B, F*n, D]``."""
    b, f = scale.shape[:2]
    xf = x.reshape(b, f, -1, x.shape[-1])
    out = xf * scale if shift is None else torch.addcmul(shift, xf, scale)
    return out.reshape(x.shape)


def sincos_positions(frames: torch.Tensor, grid_h: int, grid_w: int, dim: int) -> torch.Tensor:
    """Fixed sin-cos embeddings ``[len(frames)*grid_h*grid_w, dim]`` of (frame position, row, column).

    Half the channels encode the frame position, a quarter each the row and the column.
    """
    def axis(pos: torch.Tensor, d: int, period: float) -> torch.Tensor:
        freqs = torch.exp(-math.log(period) * torch.arange(d // 2, device=pos.device) / max(1, d // 2))
        a = pos.float()[:, None] * freqs
        return torch.cat([a.sin(), a.cos()], dim=-1)

    n = grid_h * grid_w
    dt, dy = dim // 2, dim // 4
    t = axis(frames, dt, 100.0).repeat_interleave(n, dim=0)
    y = axis(torch.arange(grid_h, device=frames.device), dy, 20.0).repeat_interleave(grid_w, 0).repeat(len(frames), 1)
    x = axis(torch.arange(grid_w, device=frames.device), dim - dt - dy, 20.0).repeat(grid_h * len(frames), 1)
    return torch.cat([t, y, x], dim=-1)


class ConvMLP(nn.Module):
    """MLP with a residual 3x3 depthwise convolution over each frame's token grid after its first layer.

    Moving a sprite by a pixel is a local shift of content between neighbouring tokens; attention can express it
    but has to learn it from scratch, a depthwise convolution has it built in (Mix-FFN, SegFormer). The
    convolution is zero-initialised, so the block starts as the plain MLP. Tokens must be whole frames.
    """

    def __init__(self, dim: int, hidden: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid = grid
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        nn.init.zeros_(self.dw.weight)
        nn.init.zeros_(self.dw.bias)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x: torch.Tensor, sp=None) -> torch.Tensor:
        """``[B, F*n, D]`` → ``[B, F*n, D]`` (``n`` tokens per frame, frame-major).

        ``sp`` (context parallel, ``engine.ulysses.SeqParallel``): ``x`` is this rank's share of the tokens, which
        may start mid-frame; the hidden tokens are gathered for the convolution and split again after it.
        """
        gh, gw = self.grid
        h = self.fc1(x)
        if sp is not None:
            h = sp.gather(h)
        b, m, _ = h.shape
        hf = h.reshape(b * (m // (gh * gw)), gh, gw, -1).permute(0, 3, 1, 2)
        h = h + self.dw(hf).permute(0, 2, 3, 1).reshape(h.shape)
        if sp is not None:
            h = sp.split(h)
        return self.fc2(self.act(h))


class Block(nn.Module):
    """DiT block with per-frame adaLN-zero modulation (tokens of a frame share that frame's timestep)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, conv_grid: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        if conv_grid is not None:
            self.mlp = ConvMLP(dim, hidden, conv_grid)
        else:
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, attend, sp=None) -> torch.Tensor:
        """Modulated attention (``attend`` = full, block-causal or cached) then MLP, both gated.

        ``x`` is ``[B, F*n, D]``; ``c`` is ``[B, F, D]``, one conditioning vector per frame: the modulation is
        computed once per frame and broadcast over the frame's ``n`` tokens. ``sp``: the tokens are this rank's
        share of a context-parallel split (only a convolutional MLP needs to know).
        """
        s1, sc1, g1, s2, sc2, g2 = self.ada(c)[:, :, None].chunk(6, dim=-1)
        x = x + _per_frame(g1, attend(_per_frame(1 + sc1, self.norm1(x), s1)))
        z = _per_frame(1 + sc2, self.norm2(x), s2)
        return x + _per_frame(g2, self.mlp(z, sp) if isinstance(self.mlp, ConvMLP) else self.mlp(z))


class VideoDiT(nn.Module):
    """Patchified video transformer with bidirectional / block-causal / streaming attention from one module."""

    seq_parallel = None  # engine.ulysses.SeqParallel when the full-clip forward runs context-parallel

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        p, d = cfg.patch, cfg.dim
        # concat: every frame also sees the image channel-wise (as Wan-I2V concatenates the image latent), so
        # copying the static background is a local operation. chunk0 (AAD-1 on a T2V backbone): the image is only
        # frame 0, its own chunk / the first KV-cache entry; later frames reach it through attention alone.
        self.concat = cfg.image_cond == "concat"
        self.patch_in = nn.Linear((2 if self.concat else 1) * cfg.channels * p * p, d)
        self.null_cond = nn.Parameter(torch.zeros(1, 1, d))  # replaces the image tokens for CFG's unconditional
        self.cond_embed = nn.Parameter(torch.zeros(1, 1, d))  # marks conditioning-frame tokens
        self.t_mlp = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        conv_grid = cfg.grid if cfg.mlp == "conv" else None
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio, conv_grid) for _ in range(cfg.depth))
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

        ``image`` ``[B,C,H,W]`` is the conditioning image (``concat`` only); it defaults to ``x[:, 0]`` when frame 0
        is present.
        """
        b, f = x.shape[:2]
        n = self.cfg.tokens_per_frame
        if not self.concat:
            tok = self.patch_in(self.patchify(x))
        else:
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
        c = self.t_mlp(timestep_embedding(t, 256))  # [B, F, D]: one conditioning vector per frame
        return tok, c

    def velocity(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
                 image: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer's output as a velocity (every caller works with ``v = noise - x0``).

        ``predict=x0``: a frame of 4x4x3 (or more) values per token is a high-dimensional target; predicting the
        clean frame, which lies near a low-dimensional set, is far easier for a narrow model than predicting the
        noise-dominated velocity (JiT, "Back to Basics", 2025). It is converted with ``v = (x_t - x0) / t``.
        ``precond`` (EDM's preconditioning, for flow times): x0 = base + c_skip(t)·(x_t - (1-t)·base) + c_out(t)·out,
        where c_skip·(...) is the best linear estimate of x0 - base from x_t for data of scale ``sigma_data`` and
        c_out the scale of what it misses; at low noise the network then only corrects a near-perfect estimate
        instead of re-drawing every pixel through its patch tokens.
        """
        if self.cfg.predict == "v":
            return out
        # image_skip: background and sprites start where the image has them; the head adds the change
        base = image[:, None] if self.cfg.image_skip else torch.zeros_like(out)
        tt = t.to(out.dtype).view(*t.shape, 1, 1, 1)
        if self.cfg.precond:  # EDM-style: the best linear estimate from x_t, plus a unit-scale correction
            s2, a = self.cfg.sigma_data ** 2, 1 - tt
            var = a * a * s2 + tt * tt
            x0 = base + (a * s2 / var) * (x - a * base) + (tt * self.cfg.sigma_data / var.sqrt()) * out
        else:
            x0 = base + out
        return (x - x0) / tt.clamp_min(self.cfg.x0_t_min)

    def head(self, h: torch.Tensor, c: torch.Tensor, frames: int) -> torch.Tensor:
        """The velocity head: adaLN-modulated projection back to frames."""
        shift, scale = self.ada_out(c)[:, :, None].chunk(2, dim=-1)
        return self.unpatchify(self.patch_out(_per_frame(1 + scale, self.norm_out(h), shift)), frames)

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
        if self.cfg.pos_embed:
            tok = tok + sincos_positions(self._frame_pos(0, f, x.device), *self.cfg.grid, self.cfg.dim).to(tok)
        ang = self.rope.angles(torch.arange(f, device=x.device), *self.cfg.grid)
        mask = block_causal_mask(f, self.cfg.chunk, self.cfg.tokens_per_frame, device=x.device) if causal else None
        sp = self.seq_parallel  # context parallel: the blocks see this rank's tokens; angles and mask stay global
        cb = c
        if sp is not None:  # a rank's tokens may start mid-frame: its blocks get one modulation vector per token
            tok, cb = sp.split(tok), sp.split(c.repeat_interleave(self.cfg.tokens_per_frame, dim=1))
        feats = []
        for i, blk in enumerate(self.blocks):
            tok = blk(tok, cb, lambda z, blk=blk: blk.attn(z, ang, mask), sp)
            if i in features:
                feats.append(tok if sp is None else sp.gather(tok))
        if features and len(feats) != len(set(features)):
            raise ValueError(f"feature depths {features} outside 0..{len(self.blocks) - 1}")
        if sp is not None and head:
            tok = sp.gather(tok)
        image = x[:, 0] if cond_drop is None else torch.where(cond_drop.view(b, 1, 1, 1), 0.0, x[:, 0])
        out = self.velocity(self.head(tok, c, f), x, t, image) if head else None
        return (out, feats) if features else out

    def _frame_pos(self, first: int, frames: int, device) -> torch.Tensor:
        """Frame positions for the sin-cos embedding; all 0 with ``pos_frames=False``.

        An absolute frame position added to the tokens is baked into the keys and values a streaming cache keeps;
        once the sliding window evicts chunks, the cached frames' baked positions no longer match their place in
        the cache (RoPE, applied at attention time, follows the layout), and new chunks repeat old positions.
        """
        pos = torch.arange(first, first + frames, device=device)
        return pos if self.cfg.pos_frames else torch.zeros_like(pos)

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
        if self.cfg.pos_embed:  # frame positions in the cache's layout, as the rotary angles below
            pos = self._frame_pos(cache.frames, f, x.device)
            tok = tok + sincos_positions(pos, *self.cfg.grid, self.cfg.dim).to(tok)
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
        return self.velocity(self.head(tok, c, f), x, t, cache.image)

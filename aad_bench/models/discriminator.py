"""The factorised discriminator: backbone visibility × logit granularity.

* backbone ``bidirectional`` (full attention over the clip; initialised from the teacher) or ``causal`` (the
  generator's block-causal mask; initialised from the Stage II generator);
* head ``video`` (learnable queries cross-attend over all tokens at several depths → concat → LayerNorm → Linear →
  one logit per clip, as AAD-1/APT), ``frame`` (the same queries restricted to each frame's tokens → one logit per
  generated frame, the APT2-like symmetric critic) or ``patch`` (one logit per spatio-temporal token, PatchGAN).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from aad_bench.models.dit import VideoDiT
from aad_bench.registry import Registry

HEADS: Registry = Registry("discriminator head")
BACKBONES = ("bidirectional", "causal")


class QueryHead(nn.Module):
    """Learnable queries → cross-attention over a token group → Add&Norm → Linear (one head per depth)."""

    def __init__(self, dim: int, queries: int, heads: int, out: int) -> None:
        super().__init__()
        self.q = nn.Parameter(torch.randn(1, queries, dim) * 0.02)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` ``[G, L, D]`` (G groups) → ``[G, queries*out]``."""
        q = self.q.expand(tokens.shape[0], -1, -1)
        h = self.norm(q + self.attn(q, tokens, tokens, need_weights=False)[0])
        return self.proj(h).flatten(1)


@HEADS.register("video")
class VideoHead(nn.Module):
    """One logit per clip from queries over every generated token at each depth."""

    def __init__(self, dim: int, depths: int, queries: int, heads: int, width: int = 32) -> None:
        super().__init__()
        self.heads = nn.ModuleList(QueryHead(dim, queries, heads, width) for _ in range(depths))
        self.out = nn.Sequential(nn.LayerNorm(depths * queries * width), nn.Linear(depths * queries * width, 1))

    def forward(self, feats: list[torch.Tensor], frames: int, n: int) -> torch.Tensor:
        """``[B, 1]`` logits from the depth features ``[B, F*n, D]``."""
        z = torch.cat([h(f) for h, f in zip(self.heads, feats)], dim=-1)
        return self.out(z)  # [B, 1]


@HEADS.register("frame")
class FrameHead(VideoHead):
    """One logit per generated frame: the queries only see that frame's tokens."""

    def forward(self, feats: list[torch.Tensor], frames: int, n: int) -> torch.Tensor:
        """``[B, F]`` logits, one per generated frame."""
        b = feats[0].shape[0]
        per_frame = [f.reshape(b * frames, n, f.shape[-1]) for f in feats]
        z = torch.cat([h(f) for h, f in zip(self.heads, per_frame)], dim=-1)
        return self.out(z).view(b, frames)


@HEADS.register("patch")
class PatchHead(nn.Module):
    """One logit per token (a local spatio-temporal patch), from the concatenated depth features."""

    def __init__(self, dim: int, depths: int, queries: int, heads: int, width: int = 32) -> None:
        super().__init__()
        self.out = nn.Sequential(nn.LayerNorm(depths * dim), nn.Linear(depths * dim, width), nn.SiLU(),
                                 nn.Linear(width, 1))

    def forward(self, feats: list[torch.Tensor], frames: int, n: int) -> torch.Tensor:
        """``[B, F*n]`` logits, one per token."""
        return self.out(torch.cat(feats, dim=-1)).squeeze(-1)  # [B, frames*n]


class Discriminator(nn.Module):
    """Backbone (a :class:`VideoDiT` copy, velocity head unused) + a logit head at chosen block depths.

    Args:
        backbone: initial weights (copied): the teacher for ``bidirectional``, the Stage II generator for ``causal``.
        visibility: ``bidirectional`` or ``causal``.
        head: ``video`` | ``frame`` | ``patch``.
        depths: 0-based block indices whose outputs feed the head.
        queries: learnable query tokens per depth.
    """

    def __init__(self, backbone: VideoDiT, visibility: str, head: str, depths: list[int], queries: int = 4) -> None:
        super().__init__()
        if visibility not in BACKBONES:
            raise ValueError(f"discriminator backbone must be one of {BACKBONES}, got {visibility!r}")
        depth = len(backbone.blocks)
        bad = [d for d in depths if not 0 <= d < depth]
        if bad or not depths:
            raise ValueError(f"gan.disc.depths {list(depths)}: must be non-empty block indices in 0..{depth - 1}")
        self.backbone = copy.deepcopy(backbone).requires_grad_(True).train()
        self.visibility, self.head_name, self.depths = visibility, head, tuple(depths)
        cfg = backbone.cfg
        self.head = HEADS.get(head)(cfg.dim, len(depths), queries, cfg.heads)

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the logit head (their own learning rate)."""
        return list(self.head.parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters of the backbone copy."""
        return list(self.backbone.parameters())

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Logits for clips ``x`` ``[B,F,C,H,W]`` (frame 0 = image) noised to per-frame times ``t`` ``[B,F]``.

        Returns ``[B, 1]`` (video), ``[B, F-1]`` (frame) or ``[B, (F-1)*n]`` (patch); the image frame gets no logit.
        """
        _, feats = self.backbone(x, t, causal=self.visibility == "causal", features=self.depths, head=False)
        n = self.backbone.cfg.tokens_per_frame
        feats = [f[:, n:] for f in feats]  # drop the conditioning frame's tokens from the head's view
        return self.head(feats, x.shape[1] - 1, n)


def logistic_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """−log D(real) − log(1 − D(fake)) with D = sigmoid(logit), averaged over logits."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def nonsaturating_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """−log D(fake): the non-saturating generator loss."""
    return F.softplus(-fake).mean()


def approx_r_penalty(disc: Discriminator, x: torch.Tensor, t: torch.Tensor, logits: torch.Tensor, sigma: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Approximated R1 (on real) / R2 (on fake): ``E‖D(x) − D(x + δ)‖²``, δ ~ N(0, σ²) on the generated frames.

    As σ → 0 this tends to σ²·‖∇ₓD‖² (the gradient-norm penalty) without a double backward.
    """
    delta = torch.randn(x.shape, generator=generator).to(x) * sigma
    delta[:, 0] = 0  # the conditioning image is not perturbed
    return (disc(x + delta, t) - logits).pow(2).sum(-1).mean()


def d_accuracy(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Share of logits on the right side of 0 (real > 0, fake < 0)."""
    return 0.5 * ((real > 0).float().mean() + (fake < 0).float().mean()).item()

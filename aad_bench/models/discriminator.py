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


@HEADS.register("pooled")
class PooledHead(nn.Module):
    """One logit per depth from the mean of that depth's tokens.

    As FastGen's Self-Forcing recipe: heads on globally pooled teacher features, one logit per head per video.
    """

    def __init__(self, dim: int, depths: int, queries: int, heads: int, width: int = 32) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, width), nn.SiLU(),
                                                 nn.Linear(width, 1)) for _ in range(depths))

    def forward(self, feats: list[torch.Tensor], frames: int, n: int) -> torch.Tensor:
        """``[B, depths]`` logits, one per head."""
        return torch.cat([h(f.mean(dim=1)) for h, f in zip(self.heads, feats)], dim=-1)


class Discriminator(nn.Module):
    """Backbone (a :class:`VideoDiT` copy, velocity head unused) + a logit head at chosen block depths.

    Args:
        backbone: initial weights (copied): the teacher for ``bidirectional``, the Stage II generator for ``causal``.
        visibility: ``bidirectional`` or ``causal``.
        head: ``video`` | ``frame`` | ``patch``.
        depths: 0-based block indices whose outputs feed the head.
        queries: learnable query tokens per depth.
        frozen: keep the backbone fixed (only the head trains; FastGen's frozen teacher features). Gradients still
            flow through it to the generator's samples.
    """

    def __init__(self, backbone: VideoDiT, visibility: str, head: str, depths: list[int], queries: int = 4,
                 frozen: bool = False) -> None:
        super().__init__()
        if visibility not in BACKBONES:
            raise ValueError(f"discriminator backbone must be one of {BACKBONES}, got {visibility!r}")
        depth = len(backbone.blocks)
        bad = [d for d in depths if not 0 <= d < depth]
        if bad or not depths:
            raise ValueError(f"gan.disc.depths {list(depths)}: must be non-empty block indices in 0..{depth - 1}")
        self.frozen = frozen
        self.backbone = copy.deepcopy(backbone).requires_grad_(not frozen).train(not frozen)
        self.visibility, self.head_name, self.depths = visibility, head, tuple(depths)
        cfg = backbone.cfg
        self.head = HEADS.get(head)(cfg.dim, len(depths), queries, cfg.heads)

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the logit head (their own learning rate)."""
        return list(self.head.parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the backbone copy (none when frozen)."""
        return [] if self.frozen else list(self.backbone.parameters())

    def requires_grad_(self, requires_grad: bool = True) -> Discriminator:
        """As :meth:`torch.nn.Module.requires_grad_`, but a frozen backbone stays frozen."""
        super().requires_grad_(requires_grad)
        if self.frozen:
            self.backbone.requires_grad_(False)
        return self

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for clips ``x`` ``[B,F,C,H,W]`` (frame 0 = image) noised to per-frame times ``t`` ``[B,F]``.

        ``context``: the clips' text embeddings ``[B, L, D]`` for a text-conditioned backbone, or None.
        Returns ``[B, 1]`` (video), ``[B, F-1]`` (frame), ``[B, (F-1)*n]`` (patch) or ``[B, depths]`` (pooled); the
        image frame gets no logit.
        """
        text = {} if context is None else {"context": context}  # backbones without text keep their exact call
        _, feats = self.backbone(x, t, causal=self.visibility == "causal", features=self.depths, head=False, **text)
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
                     generator: torch.Generator | None = None, context: torch.Tensor | None = None) -> torch.Tensor:
    """Approximated R1 (on real) / R2 (on fake): ``E (D(x) − D(x + δ))²``, δ ~ N(0, σ²) on the generated frames.

    Averaged over logits, like :func:`logistic_d_loss`, so one λ is one strength for every head: a frame or patch
    head (16 or 1024 logits per clip) is regularised per logit as much as the video head's single logit. As σ → 0
    this tends to σ² times the mean squared gradient norm of one logit, without a double backward. ``context``: the
    clips' text embeddings (None without text).
    """
    delta = torch.randn(x.shape, generator=generator).to(x) * sigma
    delta[:, 0] = 0  # the conditioning image is not perturbed
    text = {} if context is None else {"context": context}
    return (disc(x + delta, t, **text) - logits).pow(2).mean()


def d_accuracy(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Share of logits on the right side of 0 (real > 0, fake < 0)."""
    return 0.5 * ((real > 0).float().mean() + (fake < 0).float().mean()).item()

"""Ulysses context parallelism: the ranks of a CP group split a clip's tokens and all-to-all around attention.

Each rank runs the token-wise parts of a transformer (embeddings, MLPs, norms, adaLN) on its ``L/P`` tokens.
Attention swaps the split: an all-to-all turns ``[B, H, L/P, d]`` (all heads, local tokens) into
``[B, H/P, L, d]`` (local heads, all tokens), so every rank attends over the whole clip with the *global* mask
and rotary angles, then a second all-to-all swaps back. Outputs (features, the velocity) are gathered.

Gradients follow ``engine.collectives``: every rank of a CP group computes the same loss, a parameter's gradient
summed over the group is ``P x`` the single-process one wherever it sits (before, inside or after the split), and
the engines' mean over all ``dp x cp`` ranks is the single-process gradient.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_to_all_single

from aad_bench.engine.collectives import gather, split
from aad_bench.engine.settings import EngineError


class SeqParallel:
    """One CP group's token split (dim 1 of ``[B, L, ...]``) and head/sequence all-to-alls.

    Args:
        group: the process group of the ranks that share these samples.
    """

    def __init__(self, group) -> None:
        self.group = group
        self.size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous ``L/P`` tokens of ``x`` ``[B, L, ...]``."""
        if x.shape[1] % self.size:
            raise EngineError(f"trainer.cp={self.size} must divide the token count {x.shape[1]} of the clip "
                              "(frames x tokens per frame)")
        return split(x, self.group, self.size, self.rank, 1)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """All ``L`` tokens from every rank's ``[B, L/P, ...]``."""
        return gather(x, self.group, self.size, self.rank, 1, reduce=True)

    def heads_from_seq(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """``[B, H, L/P, d]`` x3 (all heads, local tokens) → ``[B, H/P, L, d]`` x3 (local heads, all tokens)."""
        b, h, n, d = q.shape
        p = self.size
        x = torch.stack([q, k, v]).view(3, b, p, h // p, n, d).permute(2, 0, 1, 3, 4, 5).contiguous()
        y = all_to_all_single(torch.empty_like(x), x, group=self.group)  # dim 0: source rank = token chunk
        y = y.permute(1, 2, 3, 0, 4, 5).reshape(3, b, h // p, p * n, d)
        return y[0], y[1], y[2]

    def seq_from_heads(self, o: torch.Tensor) -> torch.Tensor:
        """``[B, H/P, L, d]`` → ``[B, H, L/P, d]`` (inverse of :meth:`heads_from_seq`)."""
        b, hp, n_all, d = o.shape
        p = self.size
        x = o.view(b, hp, p, n_all // p, d).permute(2, 0, 1, 3, 4).contiguous()
        y = all_to_all_single(torch.empty_like(x), x, group=self.group)  # dim 0: source rank = head group
        return y.permute(1, 0, 2, 3, 4).reshape(b, hp * p, n_all // p, d)


def enable(module: torch.nn.Module, group) -> SeqParallel:
    """Make every :class:`VideoDiT` inside ``module`` run its full-clip forward context-parallel over ``group``."""
    from aad_bench.models.attention import Attention
    from aad_bench.models.dit import VideoDiT

    sp = SeqParallel(group)
    found = False
    for m in module.modules():
        if isinstance(m, VideoDiT):
            if m.cfg.heads % sp.size:
                raise EngineError(f"trainer.cp={sp.size} must divide model.heads={m.cfg.heads} (Ulysses gives "
                                  "each rank heads / cp heads)")
            m.seq_parallel, found = sp, True
        elif isinstance(m, Attention):
            m.seq_parallel = sp
    if not found:
        raise EngineError(f"trainer.cp={sp.size}: context parallelism runs the toy DiT (model.arch=dit); "
                          f"{type(module).__name__} has no VideoDiT to split")
    return sp

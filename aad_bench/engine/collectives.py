"""Split / gather along a tensor dimension over a process group, with the gradients that make replicated losses exact.

Used twice: the data-parallel ranks split a global batch around every model call (dim 0), and the ranks of a
context-parallel group split a clip's tokens inside the model (dim 1, ``engine.ulysses``).

Convention: every rank of the group computes the same loss from the gathered outputs, and a tensor that every rank
holds whole (replicated) carries its full gradient on every rank. Then

* :func:`gather` (forward: all-gather) passes back ``size x`` its local slice of the gradient (``reduce=True``:
  the sum of all ranks' gradients, then the slice; robust when ranks' gradients could differ in the last bit);
* :func:`split` (forward: the local slice) passes back the gathered slice gradients divided by ``size``.

A parameter used on local slices thus collects ``size x`` its share, and the engines' mean over all ranks is the
single-process gradient.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def _all_gather(x: torch.Tensor, group, size: int, dim: int) -> torch.Tensor:
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.contiguous(), group=group)
    return torch.cat(parts, dim=dim)


class _Split(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group, size, rank, dim):
        ctx.group, ctx.size, ctx.dim = group, size, dim
        n = x.shape[dim] // size
        return x.narrow(dim, rank * n, n).contiguous()

    @staticmethod
    def backward(ctx, g):
        return _all_gather(g, ctx.group, ctx.size, ctx.dim) / ctx.size, None, None, None, None


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group, size, rank, dim, reduce):
        ctx.group, ctx.size, ctx.rank, ctx.dim, ctx.n, ctx.reduce = group, size, rank, dim, x.shape[dim], reduce
        return _all_gather(x, group, size, dim)

    @staticmethod
    def backward(ctx, g):
        if ctx.reduce:
            g = g.contiguous()
            dist.all_reduce(g, group=ctx.group)
        else:
            g = g * ctx.size
        return g.narrow(ctx.dim, ctx.rank * ctx.n, ctx.n).contiguous(), None, None, None, None, None


def split(x: torch.Tensor, group, size: int, rank: int, dim: int) -> torch.Tensor:
    """This rank's contiguous ``1/size`` of ``x`` along ``dim`` (``x.shape[dim]`` must divide by ``size``)."""
    return _Split.apply(x, group, size, rank, dim)


def gather(x: torch.Tensor, group, size: int, rank: int, dim: int, reduce: bool = False) -> torch.Tensor:
    """Every rank's slice concatenated along ``dim``, in rank order."""
    return _Gather.apply(x, group, size, rank, dim, reduce)

"""Seeded randomness for training: everything a run draws depends only on (seed, role, step).

Resumed runs, and runs that reuse a cached stage prefix, draw the same batches, noise and initial weights as an
uninterrupted run, because no draw depends on how much of the global RNG something else consumed before.
"""

from __future__ import annotations

import torch


def _mix(seed: int, role: str, step: int) -> int:
    return (seed * 1_000_003 + step * 7919 + sum(map(ord, role)) * 104_729) % (2**63)


def step_generator(seed: int, stage: str, step: int) -> torch.Generator:
    """A generator that depends only on (seed, stage, step): resumed runs draw the same batches and noise."""
    return torch.Generator().manual_seed(_mix(seed, stage, step))


def batch(data: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """A random batch of clips (with replacement, so tiny data sets work with any batch size)."""
    return data[torch.randint(len(data), (size,), generator=g)]

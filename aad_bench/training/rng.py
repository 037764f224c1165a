"""Seeded randomness for training: everything a run draws depends only on (seed, role, step).

Resumed runs, and runs that reuse a cached stage prefix, draw the same batches, noise and initial weights as an
uninterrupted run, because no draw depends on how much of the global RNG something else consumed before:
step loops draw from :func:`step_generator` (their batches too, through
:meth:`aad_bench.data.loader.TrainingSet.batch`), and modules built mid-run (the discriminator and its heads,
critics) are built inside :func:`seeded`, which seeds torch's global RNG from (seed, role) and restores it afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def _mix(seed: int, role: str, step: int) -> int:
    return (seed * 1_000_003 + step * 7919 + sum(map(ord, role)) * 104_729) % (2**63)


def step_generator(seed: int, stage: str, step: int) -> torch.Generator:
    """A generator that depends only on (seed, stage, step): resumed runs draw the same batches and noise."""
    return torch.Generator().manual_seed(_mix(seed, stage, step))


def role_seed(seed: int, role: str) -> int:
    """A 63-bit seed that depends only on (run seed, role name), e.g. ``(0, "gan/discriminator")``."""
    digest = hashlib.blake2b(f"{int(seed)}/{role}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**63)


@contextmanager
def seeded(seed: int, role: str) -> Iterator[None]:
    """Run the block (typically a module's construction) with torch's global RNG seeded from (seed, role).

    Module constructors (``nn.Linear``, ``torch.randn`` parameters) draw from the global RNG, whose state
    otherwise depends on everything the process did before: a resumed run or one that reused a cached stage
    prefix would build different initial weights. The caller's RNG state (CPU and CUDA) is restored afterwards,
    so the block consumes nothing from it.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(role_seed(seed, role))
        yield

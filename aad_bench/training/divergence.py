"""Divergence is a result, not a crash: the guards every loop runs, raising :class:`Diverged` with a reason.

Steps in divergence records are 1-based, like ``metrics.jsonl`` and checkpoints: ``step = N`` is the N-th step
of the stage (the one whose metrics row would carry ``step: N``). The guards take the loop's 0-based index.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch


class Diverged(RuntimeError):
    """Training left the sane regime (NaN/inf loss, pinned discriminator, exploding gradients) at 1-based ``step``."""

    def __init__(self, stage: str, step: int, reason: str) -> None:
        super().__init__(f"diverged in stage {stage} at step {step}: {reason}")
        self.stage, self.step, self.reason = stage, step, reason


def check_finite(stage: str, step: int, **values: float) -> None:
    """Raise :class:`Diverged` if any logged value is NaN or infinite (``step``: the loop's 0-based index)."""
    for k, v in values.items():
        if not math.isfinite(v):
            raise Diverged(stage, step + 1, f"non-finite {k} ({v})")


def clip_grad(params: Iterable[torch.nn.Parameter], max_norm: float, stage: str, step: int,
              explode: float | None) -> float:
    """Clip gradients; a norm above ``explode`` (or non-finite) is divergence, not something to clip away."""
    norm = float(torch.nn.utils.clip_grad_norm_(list(params), max_norm))
    if not math.isfinite(norm) or (explode is not None and norm > explode):
        raise Diverged(stage, step + 1, f"exploding gradient norm {norm:.3g}")
    return norm


def grad_guard(stage: str, step: int, explode: float | None) -> Callable[[float], None]:
    """The check ``Trained.step`` runs on the gradient norm, as :func:`clip_grad` does.

    A non-finite norm or one above ``explode`` is divergence; ``step`` is the loop's 0-based index.
    """

    def check(norm: float) -> None:
        if not math.isfinite(norm) or (explode is not None and norm > explode):
            raise Diverged(stage, step + 1, f"exploding gradient norm {norm:.3g}")

    return check

"""Pieces every stage loop uses: data batches, optimisers with warm-up, divergence guards, step logging."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from aad_bench.runfolder import RunFolder


class Diverged(RuntimeError):
    """Training left the sane regime (NaN/inf loss, pinned discriminator, exploding gradients)."""

    def __init__(self, stage: str, step: int, reason: str) -> None:
        super().__init__(f"diverged in stage {stage} at step {step}: {reason}")
        self.stage, self.step, self.reason = stage, step, reason


def step_generator(seed: int, stage: str, step: int) -> torch.Generator:
    """A generator that depends only on (seed, stage, step): resumed runs draw the same batches and noise."""
    g = torch.Generator()
    g.manual_seed(seed * 1_000_003 + step * 7919 + sum(map(ord, stage)) * 104_729)
    return g


def batch(data: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """A random batch of clips (with replacement, so tiny data sets work with any batch size)."""
    return data[torch.randint(len(data), (size,), generator=g)]


def make_optimizer(params, lr: float, betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0,
                   ) -> torch.optim.Optimizer:
    """AdamW (the anchors' choice for every model)."""
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)


def set_lr(opt: torch.optim.Optimizer, step: int, warmup: int, total: int | None = None) -> float:
    """Linear warm-up then cosine decay to 10% (``total`` None = constant); returns the first group's lr."""
    for g in opt.param_groups:
        base = g.setdefault("base_lr", g["lr"])
        f = min(1.0, (step + 1) / max(1, warmup))
        if total and step >= warmup:
            f = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
        g["lr"] = base * f
    return opt.param_groups[0]["lr"]


def check_finite(stage: str, step: int, **values: float) -> None:
    """Raise :class:`Diverged` if any logged value is NaN or infinite."""
    for k, v in values.items():
        if not math.isfinite(v):
            raise Diverged(stage, step, f"non-finite {k} ({v})")


def clip_grad(params, max_norm: float, stage: str, step: int, explode: float | None) -> float:
    """Clip gradients; a norm above ``explode`` (or non-finite) is divergence, not something to clip away."""
    norm = float(torch.nn.utils.clip_grad_norm_(list(params), max_norm))
    if not math.isfinite(norm) or (explode is not None and norm > explode):
        raise Diverged(stage, step, f"exploding gradient norm {norm:.3g}")
    return norm


class StepLogger:
    """Logs every ``every`` steps to ``metrics.jsonl`` with steps/s, and feeds a tqdm bar."""

    def __init__(self, run: RunFolder, stage: str, every: int, bar: Any = None) -> None:
        self.run, self.stage, self.every, self.bar = run, stage, max(1, every), bar
        self._t, self._n = time.perf_counter(), 0

    def __call__(self, step: int, values: dict[str, float], force: bool = False) -> None:
        self._n += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in list(values.items())[:3]})
        if step % self.every == 0 or force:
            now = time.perf_counter()
            rate = self._n / max(now - self._t, 1e-9)
            self.run.log({"stage": self.stage, "step": step, **values, "steps_per_s": round(rate, 3)})
            self._t, self._n = now, 0

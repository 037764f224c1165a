"""Optimisers, the learning-rate schedule and the exponential moving average of weights."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def make_optimizer(params: Iterable, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
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


class EMA:
    """Exponential moving average of a module's parameters (kept as a plain state dict)."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        """Move the average towards the module's current weights."""
        for k, v in module.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v, 1 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights (loadable into the module)."""
        return self.shadow

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        """Restore the average from a checkpoint."""
        self.shadow = {k: v.clone() for k, v in sd.items()}

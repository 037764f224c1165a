"""EMA of a prepared model's weights, held in the weights' own layout.

Whole tensors, FSDP shards or ZeRO-3 partitions: no rank ever holds a second full copy of a sharded model.

Same arithmetic as ``training.optim.EMA`` (``shadow.lerp_(w, 1 - decay)`` per parameter).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.distributed as dist

from aad_bench.engine.base import Trained, dcp_args


class ShardedEMA:
    """Exponential moving average of ``model``'s parameters (this rank's part of each).

    Args:
        model: a prepared model.
        decay: weight of the old average per update.
    """

    def __init__(self, model: Trained, decay: float) -> None:
        self.model, self.decay = model, decay
        self.shadow = {n: t.detach().clone() for n, t in model.local_params().items()}

    @torch.no_grad()
    def update(self) -> None:
        """One EMA step towards the model's current weights."""
        for n, t in self.model.local_params().items():
            self.shadow[n].lerp_(t, 1 - self.decay)

    def copy_to_model(self) -> None:
        """Make the averaged weights the model's weights (e.g. the EMA generator ends a stage)."""
        self.model.set_local_params(self.shadow)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights, whole, on the CPU of every rank (collective under sharding).

        Borrows the model: the average goes in, the model's full state dict comes out, its weights go back.
        """
        saved = {n: t.detach().clone() for n, t in self.model.local_params().items()}
        self.copy_to_model()
        try:
            return self.model.full_state_dict()
        finally:
            self.model.set_local_params(saved)

    def save(self, folder: Path) -> None:
        """Collective: DCP for whole tensors and DTensor shards; one file per rank for ZeRO-3 partitions."""
        if self.model.layout == "zero3":
            folder.mkdir(parents=True, exist_ok=True)
            rank = dist.get_rank() if dist.is_initialized() else 0
            torch.save({n: t.cpu() for n, t in self.shadow.items()}, folder / f"rank{rank:05d}.pt")
            if rank == 0:  # what consolidation needs to undo the flat, padded partitioning
                shapes = {n: list(p.ds_shape) for n, p in self.model.module.named_parameters()}
                (folder / "shapes.json").write_text(json.dumps(shapes))
            return
        import torch.distributed.checkpoint as dcp

        dcp.save(self.shadow, **dcp_args(folder))

    def load(self, folder: Path) -> None:
        """Collective: read what :meth:`save` wrote (same world size) into the shadow."""
        if self.model.layout == "zero3":
            rank = dist.get_rank() if dist.is_initialized() else 0
            state = torch.load(folder / f"rank{rank:05d}.pt", map_location="cpu", weights_only=True)
            with torch.no_grad():
                for n, t in self.shadow.items():
                    t.copy_(state[n])
            return
        import torch.distributed.checkpoint as dcp

        dcp.load(self.shadow, **dcp_args(folder))


def zero3_consolidate(folder: Path) -> dict[str, torch.Tensor]:
    """Full tensors from the per-rank ZeRO-3 partition files of :meth:`ShardedEMA.save` (offline, one process).

    ZeRO-3 pads each flattened parameter to a multiple of the world size and gives rank r the r-th equal slice.
    """
    shapes = json.loads((folder / "shapes.json").read_text())
    parts = [torch.load(p, map_location="cpu", weights_only=True) for p in sorted(folder.glob("rank*.pt"))]
    out = {}
    for n, shape in shapes.items():
        flat = torch.cat([p[n].reshape(-1) for p in parts])
        out[n] = flat[: int(torch.Size(shape).numel())].view(shape).clone()
    return out

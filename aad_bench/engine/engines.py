"""The torch engines: ``single`` (one process), ``ddp`` (replicated, all-reduced gradients), ``fsdp`` (FSDP2).

Checkpoints of all three go through ``torch.distributed.checkpoint`` (see :class:`DCPState`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from aad_bench.engine.base import ENGINES, ROUTED, Engine, OptimizerFactory, Trained, dcp_args

BUCKET_BYTES = 25 << 20  # DDP's default bucket size


class DCPState(Trained):
    """Model + optimizer state saved with ``torch.distributed.checkpoint`` (sharded where the module is)."""

    def save(self, folder: Path) -> None:
        """Collective: every rank writes its shards under ``folder``."""
        import torch.distributed.checkpoint as dcp

        dcp.save(self._state(), **dcp_args(folder))

    def load(self, folder: Path) -> None:
        """Collective: read the shards of ``folder`` into the module and optimizer.

        Parameters that never had a gradient have no optimizer state in the checkpoint; they get none here either
        (torch would otherwise create it with a dummy step).
        """
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        state = self._state()
        dcp.load({"model": state["model"]}, **dcp_args(folder))
        set_model_state_dict(self.module, state["model"])
        if self._optimizer is None:
            return
        saved = dcp.FileSystemReader(str(folder)).read_metadata().state_dict_metadata
        dcp.load({"optim": state["optim"]}, planner=dcp.DefaultLoadPlanner(allow_partial_load=True),
                 **dcp_args(folder))
        optim = state["optim"]
        optim["state"] = {fqn: v for fqn, v in optim["state"].items()
                          if all(f"optim.state.{fqn}.{k}" in saved for k in v)}
        set_optimizer_state_dict(self.module, self._optimizer, optim, options=StateDictOptions(strict=False))

    def _state(self) -> dict:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

        state = {"model": get_model_state_dict(self.module)}
        if self._optimizer is not None:
            state["optim"] = get_optimizer_state_dict(self.module, self._optimizer)
        return state


@ENGINES.register("single")
class SingleEngine(Engine):
    """One process, one device: the module itself (the reference the others must equal)."""

    name = "single"
    handle = DCPState


def default_engine() -> Engine:
    """The ``single`` engine on the CPU in fp32 (what code that is given no engine runs with)."""
    from aad_bench.engine.runtime import Runtime
    from aad_bench.engine.settings import TrainerSettings

    return SingleEngine(Runtime(TrainerSettings(device="cpu"), torch.device("cpu")))


def _buckets(tensors: list[torch.Tensor], limit: int) -> list[list[torch.Tensor]]:
    out: list[list[torch.Tensor]] = []
    size = 0
    for t in tensors:
        if not out or size + t.numel() * t.element_size() > limit or out[-1][0].dtype != t.dtype:
            out.append([])
            size = 0
        out[-1].append(t)
        size += t.numel() * t.element_size()
    return out


def all_reduce_grads(params: list[nn.Parameter], device: torch.device) -> None:
    """Mean of every gradient over the world, in flat buckets; a gradient missing on some rank counts as zero."""
    world = dist.get_world_size()
    if world == 1:
        return
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=device)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    grads = []
    for p, h in zip(params, has.tolist()):
        if h and p.grad is None:
            p.grad = torch.zeros_like(p)
        if h:
            grads.append(p.grad)
    for bucket in _buckets(grads, BUCKET_BYTES):
        flat = torch._utils._flatten_dense_tensors(bucket)
        dist.all_reduce(flat)
        flat.div_(world)
        for g, r in zip(bucket, torch._utils._unflatten_dense_tensors(flat, bucket)):
            g.copy_(r)


class DDPHandle(DCPState):
    """Replicated module; gradients are averaged over all ranks at :meth:`step` (after accumulation)."""

    def _clip(self) -> float:
        all_reduce_grads([p for p in self.module.parameters() if p.requires_grad], self.engine.rt.device)
        return super()._clip()


@ENGINES.register("ddp")
class DDPEngine(Engine):
    """Data parallel with replicated weights: the gradient mean of DistributedDataParallel, taken once per step."""

    name = "ddp"
    handle = DDPHandle


class FSDPHandle(DCPState):
    """FSDP2 module: parameters are DTensor shards; gradients are reduce-scattered on the last micro-batch."""

    layout = "dtensor"

    def _backward(self, loss: torch.Tensor, last: bool) -> None:
        self.module.set_requires_gradient_sync(last)
        super()._backward(loss, last)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Every weight unsharded, on the CPU of every rank (collective)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(self.module, options=StateDictOptions(full_state_dict=True))
        return {k: v.detach().cpu().clone() for k, v in sd.items()}


def fsdp_units(module: nn.Module) -> list[nn.Module]:
    """What FSDP2 shards separately, before the root.

    Every toy-DiT block; for other backbones (Wan, whose forward runs its blocks' layers itself), the layers of
    every block. FSDP gathers a unit's weights in the unit's ``__call__`` hooks, so a unit must be called.
    """
    from aad_bench.models.dit import VideoDiT

    units: dict[int, nn.Module] = {}
    for m in module.modules():
        blocks = getattr(m, "blocks", None)
        if isinstance(m, VideoDiT):
            units.update((id(b), b) for b in m.blocks)
        elif isinstance(blocks, nn.ModuleList):
            units.update((id(c), c) for blk in blocks for c in blk.children() if next(c.parameters(), None) is not None)
    return list(units.values())


@ENGINES.register("fsdp")
class FSDPEngine(Engine):
    """FSDP2: ``fully_shard`` on every transformer block, then on the root (for every model, frozen or not)."""

    name = "fsdp"
    handle = FSDPHandle

    def _wrap(self, module: nn.Module, optimizer: OptimizerFactory | None, name: str, batch: tuple[int, int],
              grad_clip: float | None) -> Trained:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

        rt = self.rt
        mesh = init_device_mesh(rt.device.type, (rt.world,))
        # bf16 is autocast over fp32 shards, like every engine; fsdp_bf16_params gathers bf16 weights instead
        # (half the all-gather traffic, but norms/embeddings then run in bf16: numerics differ from the others)
        bf16_params = rt.settings.precision == "bf16" and rt.settings.fsdp_bf16_params and optimizer is not None
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16_params \
            else MixedPrecisionPolicy()
        kw = {"mesh": mesh, "mp_policy": mp, "reshard_after_forward": rt.settings.reshard_after_forward}
        for unit in fsdp_units(module):
            fully_shard(unit, **kw)
        fully_shard(module, **kw)
        for method in ROUTED:
            if hasattr(module, method):
                register_fsdp_forward_method(module, method)
        return super()._wrap(module, optimizer, name, batch, grad_clip)

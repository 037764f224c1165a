"""``trainer.engine=deepspeed``: ZeRO stage 1/2/3 from a JSON under ``conf/deepspeed/``, optional CPU offload.

The JSON carries the ZeRO settings; the run fills in what the stage knows (micro-batch, accumulation, gradient
clipping). ``trainer.precision=bf16`` is torch autocast over fp32 ZeRO partitions, as for the other engines (a
JSON that enables DeepSpeed's own ``bf16`` keeps it). A frozen model (the teacher) is partitioned by ZeRO-3 and
replicated under ZeRO-1/2. ZeRO-3 gathers parameters in module forward hooks, so non-forward methods
(``forward_cached``) run through the DeepSpeed engine's ``__call__`` with ``forward`` swapped for the method.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aad_bench.engine.base import ENGINES, Engine, OptimizerFactory, Trained
from aad_bench.engine.settings import EngineError, TrainerSettings


def deepspeed_config(settings: TrainerSettings, micro: int, accum: int, world: int,
                     grad_clip: float | None) -> dict[str, Any]:
    """The DeepSpeed JSON plus this model's batch and clipping settings."""
    cfg = copy.deepcopy(settings.deepspeed_json())
    cfg.update(train_micro_batch_size_per_gpu=micro, gradient_accumulation_steps=accum,
               train_batch_size=micro * accum * world, gradient_clipping=float(grad_clip or 0.0),
               steps_per_print=10**9, wall_clock_breakdown=False)
    if settings.offload_optimizer:
        zero = cfg.setdefault("zero_optimization", {})
        if zero.get("stage", 0) < 1:
            raise EngineError("trainer.offload_optimizer needs ZeRO stage >= 1 in trainer.deepspeed_config")
        zero["offload_optimizer"] = {"device": "cpu"}
    return cfg


def cpu_adam(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The same Adam(W) as DeepSpeedCPUAdam (what optimizer offload runs; JIT-built on first use)."""
    from deepspeed.ops.adam import DeepSpeedCPUAdam

    d = opt.defaults
    groups = [dict(g) for g in opt.param_groups]
    return DeepSpeedCPUAdam(groups, lr=d["lr"], betas=d["betas"], eps=d["eps"], weight_decay=d["weight_decay"],
                            adamw_mode=isinstance(opt, torch.optim.AdamW))


class DeepSpeedHandle(Trained):
    """A module inside a DeepSpeed engine (``ds``); ``ds`` is None for a frozen model under ZeRO-1/2."""

    ds: Any = None

    @property
    def zero3(self) -> bool:
        """Weights are ZeRO-3 partitions."""
        return self.ds is not None and bool(self.ds.zero_optimization_partition_weights())

    @property
    def layout(self) -> str:  # type: ignore[override]
        """``zero3`` or ``full``."""
        return "zero3" if self.zero3 else "full"

    def _invoke(self, method: str, args: tuple, kwargs: dict) -> Any:
        if self.ds is None:
            return super()._invoke(method, args, kwargs)
        with self._as_forward(self.module, method):
            return self.ds(*args, **kwargs)

    def _backward(self, loss: torch.Tensor, last: bool) -> None:
        self.ds.backward(loss)  # DeepSpeed divides by the accumulation steps itself
        if not last:
            self.ds.step()  # counts the micro-step; the optimizer only updates at the accumulation boundary

    def step(self, check=None) -> float:
        """DeepSpeed clips and updates inside its step, so ``check`` sees the norm after the update."""
        if self._micro != self.accum:
            raise EngineError(f"{self.name}: step() after {self._micro} of {self.accum} micro-batches")
        self._micro = 0
        self.ds.step()
        norm = float(self.ds.get_global_grad_norm() or 0.0)
        if check is not None:
            check(norm)
        return norm

    def local_params(self) -> dict[str, torch.Tensor]:
        """ZeRO-3: this rank's flat partitions; else the whole weights."""
        if self.zero3:
            return {n: p.ds_tensor.data for n, p in self.module.named_parameters()}
        return super().local_params()

    def set_local_params(self, values: dict[str, torch.Tensor]) -> None:
        """Overwrite the module's parameters *and* ZeRO's fp32 master copy (the next step starts from them)."""
        from deepspeed.utils import safe_set_full_fp32_param, safe_set_local_fp32_param

        super().set_local_params(values)
        if self._optimizer is None:
            return
        for n, p in self.module.named_parameters():
            if self.zero3:
                safe_set_local_fp32_param(p, values[n])
            else:
                safe_set_full_fp32_param(p, values[n])

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Every weight gathered, on the CPU of every rank (collective under ZeRO-3)."""
        if not self.zero3:
            return super().full_state_dict()
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(self.module.parameters()), modifier_rank=None):
            return super().full_state_dict()

    def save(self, folder: Path) -> None:
        """Collective: DeepSpeed's checkpoint (module + ZeRO optimizer partitions) under ``folder``."""
        if self.ds is not None and self._optimizer is not None:
            self.ds.save_checkpoint(str(folder), tag="state")

    def load(self, folder: Path) -> None:
        """Collective: restore module and ZeRO optimizer partitions from ``folder``."""
        if self.ds is not None and self._optimizer is not None:
            path, _ = self.ds.load_checkpoint(str(folder), tag="state")
            if path is None:
                raise EngineError(f"{folder}: no DeepSpeed checkpoint for {self.name}")


@ENGINES.register("deepspeed")
class DeepSpeedEngine(Engine):
    """One DeepSpeed engine per trained model (generator, critic, discriminator), ZeRO stage from the JSON."""

    name = "deepspeed"
    handle = DeepSpeedHandle

    def _wrap(self, module: nn.Module, optimizer: OptimizerFactory | None, name: str, batch: tuple[int, int],
              grad_clip: float | None) -> Trained:
        import deepspeed

        st, rt = self.rt.settings, self.rt
        cfg = deepspeed_config(st, batch[0], batch[1], rt.world, grad_clip)
        if optimizer is None:
            h = self.handle(self, module, None, name)
            if cfg.get("zero_optimization", {}).get("stage", 0) == 3:  # partition the frozen weights too
                cfg["zero_optimization"].pop("offload_optimizer", None)
                h.ds = deepspeed.initialize(model=module, config=cfg)[0]
            return h
        opt = optimizer(module)
        if st.offload_optimizer:
            opt = cpu_adam(opt)
            cfg["zero_force_ds_cpu_optimizer"] = False
        ds, ds_opt, _, _ = deepspeed.initialize(model=module, optimizer=opt, config=cfg)
        h = self.handle(self, module, ds_opt, name, batch, grad_clip)
        h.ds = ds
        return h

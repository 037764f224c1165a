"""What every engine provides: :class:`Engine` prepares modules into :class:`Trained` handles.

A stage loop keeps calling its models as before (``model(x, t)``, ``model.forward_cached(...)``, ``model.cfg``)
on the *global* batch: the handle gives each data-parallel rank its share of the batch for the model call and
gathers the outputs, so everything around the models (noise, losses, metrics, early stopping) is computed the
same on every rank and equals the single-process run. The handle also routes each call through the engine's
machinery (FSDP's unshard hooks, DeepSpeed's ZeRO-3 gathers, bf16 autocast) and trains through two calls::

    for part in model.parts(batch):    # accumulation steps (trainer.micro_batch): slices of the global batch
        model.backward(loss_on(part))  # scaled 1/accum; gradients synchronise on the last micro-batch only
    norm = model.step(check=guard)     # clip to the prepared grad_clip, guard(norm), optimizer step, zero grads

Rollouts call the generator once per chunk before one backward; torch's DDP reducer allows a single forward
per backward, so ``ddp`` all-reduces gradients at the step instead (same mean; no comm/compute overlap).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils._pytree import tree_leaves, tree_map

from aad_bench.engine.collectives import gather, split
from aad_bench.engine.runtime import Runtime
from aad_bench.engine.settings import EngineError, split_batch
from aad_bench.registry import Registry

ENGINES: Registry = Registry("trainer.engine")
ROUTED = ("forward_cached",)  # methods besides forward that run a model's weights (streaming rollouts)
OptimizerFactory = Callable[[nn.Module], torch.optim.Optimizer]
_NO_CKPT: contextvars.ContextVar[bool] = contextvars.ContextVar("aad_no_ckpt", default=False)


def transformer_blocks(module: nn.Module) -> list[nn.Module]:
    """The transformer blocks inside ``module``: the ``blocks`` list of every backbone in it (toy DiT, Wan).

    They are the unit of FSDP sharding, activation checkpointing and compilation.
    """
    out: list[nn.Module] = []
    for m in module.modules():
        blocks = getattr(m, "blocks", None)  # a submodule (DiT, diffusers) or a property (WanVideo)
        if isinstance(blocks, nn.ModuleList):
            out.extend(b for b in blocks if all(b is not o for o in out))
    return out


def apply_checkpointing(module: nn.Module) -> None:
    """Recompute each block's activations in backward (full-clip forwards; streaming steps keep theirs).

    A streaming step reads a KV cache that later chunks change, so recomputing it in backward would not
    reproduce the forward: :class:`Trained` switches checkpointing off around ``forward_cached``. A frozen pass
    (``Trained.frozen``, e.g. the generator's loss through D) is not checkpointed either: its weights require
    grad again by the time backward would recompute it, and the recomputed graph would differ.
    """
    from torch.utils.checkpoint import checkpoint

    for blk in transformer_blocks(module):
        def forward(*args: Any, _orig=blk.forward, _blk=blk, **kwargs: Any) -> Any:
            trains = any(p.requires_grad for p in _blk.parameters())
            if _NO_CKPT.get() or not torch.is_grad_enabled() or not trains:
                return _orig(*args, **kwargs)
            return checkpoint(_orig, *args, use_reentrant=False, **kwargs)

        blk.forward = forward


def compile_blocks(module: nn.Module) -> None:
    """``torch.compile`` each block in place (state-dict keys unchanged)."""
    for blk in transformer_blocks(module):
        blk.compile()


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Rank ``src``'s parameters and buffers everywhere (every engine starts from identical weights)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t.data, src)


def dcp_args(folder: Any) -> dict[str, Any]:
    """Arguments for ``torch.distributed.checkpoint.save/load``: one process needs no process group."""
    return {"checkpoint_id": str(folder), "no_dist": not (dist.is_available() and dist.is_initialized())}


def _split(x: torch.Tensor, rt: Runtime) -> torch.Tensor:
    return split(x, rt.dp_group, rt.dp_size, rt.dp_rank, 0)


def _gather(x: torch.Tensor, rt: Runtime) -> torch.Tensor:
    return gather(x, rt.dp_group, rt.dp_size, rt.dp_rank, 0)


def _fp32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype == torch.bfloat16 else x


class Trained:
    """A module prepared by an engine. Call it like the module; other attributes are the module's.

    Args:
        engine: the engine that prepared it.
        module: the (possibly sharded) module; ``.module`` is what state dicts and attributes come from.
        optimizer: its optimizer (None for frozen modules).
        name: used in error messages and checkpoint folders.
        batch: (micro-batch per rank, micro-batches per optimizer step).
        grad_clip: max gradient norm at :meth:`step` (None = measure only).
    """

    layout = "full"  # how local_params() holds the weights: full | dtensor (FSDP shards) | zero3 (flat partitions)

    def __init__(self, engine: Engine, module: nn.Module, optimizer: Any, name: str,
                 batch: tuple[int, int] = (1, 1), grad_clip: float | None = None) -> None:
        self.__dict__.update(engine=engine, module=module, _optimizer=optimizer, name=name, micro=batch[0],
                             accum=batch[1], grad_clip=grad_clip, _micro=0)

    # -- calling ---------------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The module's forward, through the engine (hooks, autocast; bf16 outputs come back as fp32)."""
        return self._call("forward", *args, **kwargs)

    def __getattr__(self, item: str) -> Any:  # only reached for names the handle itself does not have
        if item in ROUTED and hasattr(self.module, item):
            return functools.partial(self._call, item)
        return getattr(self.module, item)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        rt = self.engine.rt
        home = next((t.device for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)), rt.device)
        args, kwargs = tree_map(lambda x: x.to(rt.device) if isinstance(x, torch.Tensor) else x, (args, kwargs))
        local = self._share((args, kwargs))
        if local is not None:  # data parallel: this rank runs its share of the batch
            args, kwargs = tree_map(lambda x: _split(x, rt) if isinstance(x, torch.Tensor) else x, (args, kwargs))
        token = _NO_CKPT.set(method != "forward")
        try:
            with rt.autocast():
                out = self._invoke(method, args, kwargs)
        finally:
            _NO_CKPT.reset(token)
        if local is not None:
            out = tree_map(lambda x: _gather(x, rt) if isinstance(x, torch.Tensor) and x.shape[:1] == (local,)
                           else x, out)
        # outputs come back where the caller's tensors live: loops draw noise with CPU generators (the same numbers
        # on every device) and do their elementwise math there; the model runs on the device
        return tree_map(lambda x: _fp32(x).to(home) if isinstance(x, torch.Tensor) else x, out)

    def _share(self, inputs: Any) -> int | None:
        """This rank's batch size when the call's tensors (all batch-first) split over the data-parallel ranks.

        None = run the whole batch on every rank (one process, or a batch that does not divide): replicated work
        gives every rank the full gradient, which the engines' mean keeps exact.
        """
        dp = self.engine.rt.dp_size
        sizes = {t.shape[0] for t in tree_leaves(inputs) if isinstance(t, torch.Tensor) and t.dim()}
        if dp == 1 or len(sizes) != 1 or next(iter(sizes)) % dp:
            return None
        return next(iter(sizes)) // dp

    def _invoke(self, method: str, args: tuple, kwargs: dict) -> Any:
        """Run ``module.<method>``; ``forward`` goes through ``__call__`` so that module hooks run.

        Engines whose hooks live on a wrapper route the call through that wrapper.
        """
        fn = self.module if method == "forward" else getattr(self.module, method)
        return fn(*args, **kwargs)

    @staticmethod
    @contextlib.contextmanager
    def _as_forward(module: nn.Module, method: str) -> Iterator[None]:
        """Temporarily make ``module.forward`` be ``method`` so a wrapper's ``__call__`` runs it with its hooks."""
        if method == "forward":
            yield
            return
        module.forward = getattr(module, method)
        try:
            yield
        finally:
            del module.forward

    # -- training --------------------------------------------------------------------------------------
    def parts(self, batch: int) -> list[slice]:
        """The accumulation slices of a global batch of ``batch`` (one slice = micro-batch x data-parallel size)."""
        n = self.micro * self.engine.rt.dp_size
        if n * self.accum != batch:
            raise EngineError(f"{self.name}: a global batch of {batch} is not micro-batch {self.micro} x "
                              f"accumulation {self.accum} x data-parallel {self.engine.rt.dp_size}")
        return [slice(i * n, (i + 1) * n) for i in range(self.accum)]

    @property
    def optimizer(self) -> Any:
        """The optimizer whose ``param_groups`` carry the learning rates (``set_lr`` works on it)."""
        if self._optimizer is None:
            raise EngineError(f"{self.name} was prepared frozen: it has no optimizer")
        return self._optimizer

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of one micro-batch's loss; gradients synchronise on the last of ``accum`` micro-batches."""
        if self._optimizer is None:
            raise EngineError(f"{self.name} was prepared frozen: it cannot be trained")
        self._micro += 1
        if self._micro > self.accum:
            raise EngineError(f"{self.name}: {self._micro} backward calls before step(); accumulation is "
                              f"{self.accum}")
        self._backward(loss, last=self._micro == self.accum)

    def _backward(self, loss: torch.Tensor, last: bool) -> None:
        (loss / self.accum if self.accum > 1 else loss).backward()

    def step(self, check: Callable[[float], None] | None = None) -> float:
        """Synchronise, clip to ``grad_clip``, call ``check(norm)`` (may raise), update, zero the gradients.

        Returns the gradient norm before clipping (global over all ranks).
        """
        if self._micro != self.accum:
            raise EngineError(f"{self.name}: step() after {self._micro} of {self.accum} micro-batches")
        self._micro = 0
        norm = self._clip()
        if check is not None:
            check(norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def _clip(self) -> float:
        params = [p for p in self.module.parameters() if p.grad is not None]
        limit = self.grad_clip if self.grad_clip is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, limit) if params else torch.zeros(())
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Parameters do not require grad inside (e.g. D while the generator's loss runs through it)."""
        flags = [p.requires_grad for p in self.module.parameters()]
        self.module.requires_grad_(False)
        try:
            yield
        finally:
            for p, f in zip(self.module.parameters(), flags):
                p.requires_grad_(f)

    # -- state (overridden by engines with their own formats) -------------------------------------------
    def local_params(self) -> dict[str, torch.Tensor]:
        """This rank's part of every parameter (what an EMA averages): whole tensors or shards."""
        return {n: p.data for n, p in self.module.named_parameters()}

    def set_local_params(self, values: dict[str, torch.Tensor]) -> None:
        """Overwrite the parameters (this rank's part) with ``values`` (e.g. the EMA at the end of a stage)."""
        with torch.no_grad():
            for n, t in self.local_params().items():
                t.copy_(values[n])

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Every parameter and buffer, unsharded, on the CPU of every rank (collective under sharding)."""
        return {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}


class Engine:
    """Prepares modules for one run; subclasses register under ``trainer.engine`` names."""

    name = "base"
    handle: type[Trained] = Trained

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def prepare(self, module: nn.Module, optimizer: OptimizerFactory | None = None, *, name: str,
                batch: int | None = None, batch_setting: str | None = None, grad_clip: float | None = None,
                context_parallel: bool = False) -> Trained:
        """Place, shard and wrap ``module``; ``optimizer(module)`` builds its optimizer (None = frozen).

        Args:
            module: the model (moved to the run's device; sharded by fsdp / ZeRO-3).
            optimizer: builds the optimizer from the prepared module; None prepares a frozen model.
            name: the model's name in error messages and checkpoints.
            grad_clip: the max gradient norm applied at :meth:`Trained.step` (None = measure only).
            batch: the global batch per optimizer step (checked against micro_batch x dp; sets accumulation).
            batch_setting: the config key of ``batch`` for error messages (e.g. ``method.dmd.batch``).
            context_parallel: split its full-clip forwards over the CP group (``trainer.cp > 1``).
        """
        st = self.rt.settings
        micro_accum = (1, 1)
        if batch is not None:
            micro_accum = split_batch(batch_setting or f"{name} batch", batch, st.micro_batch, self.rt.dp_size)
        if optimizer is None:
            module.requires_grad_(False).eval()
            if st.precision == "bf16" and st.frozen_bf16:
                module.to(torch.bfloat16)
        module.to(self.rt.device)
        broadcast_module(module)
        if context_parallel and self.rt.cp > 1:
            from aad_bench.engine import ulysses

            ulysses.enable(module, self.rt.cp_group)
        if st.activation_checkpointing and optimizer is not None:
            apply_checkpointing(module)
        if st.compile:
            compile_blocks(module)
        return self._wrap(module, optimizer, name, micro_accum, grad_clip)

    def _wrap(self, module: nn.Module, optimizer: OptimizerFactory | None, name: str, batch: tuple[int, int],
              grad_clip: float | None) -> Trained:
        """Engine-specific wrapping; ``batch`` = (micro-batch, accumulation steps)."""
        opt = optimizer(module) if optimizer is not None else None
        return self.handle(self, module, opt, name, batch, grad_clip)


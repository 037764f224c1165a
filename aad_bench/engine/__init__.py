"""Training on GPUs and across processes: device, precision, engines, context parallelism, sharded checkpoints.

Engines: single | ddp | fsdp | deepspeed; Ulysses context parallelism; experiment tracking. See docs/engine.md.

A run builds one :class:`Engine` from the ``trainer`` config (:func:`setup`), prepares each model with
``engine.prepare(...)`` into a :class:`Trained` handle, and ends with ``engine.rt.close()``.
"""

from __future__ import annotations

from typing import Any

from aad_bench.engine import deepspeed_engine, engines  # noqa: F401 - register the engines
from aad_bench.engine.base import ENGINES, Engine, Trained
from aad_bench.engine.runtime import Runtime, init_runtime
from aad_bench.engine.settings import EngineError, TrainerSettings, split_batch
from aad_bench.registry import UnknownNameError

__all__ = ["ENGINES", "Engine", "EngineError", "Runtime", "Trained", "TrainerSettings", "setup", "split_batch"]


def setup(trainer: Any | None) -> Engine:
    """Check ``trainer`` (the config node, a dict or None), join the process group, build the engine.

    Every check (names, device, backend, world size vs cp) runs before the process group exists.
    """
    settings = TrainerSettings.from_cfg(trainer)
    try:
        cls = ENGINES.get(settings.engine)
    except UnknownNameError as e:
        raise EngineError(str(e)) from None
    return cls(init_runtime(settings))

"""Distillation methods, each declared once: its YAML ``conf/method/<name>.yaml``.

The YAML holds everything a method *is*: ``name`` (= the file stem), ``display`` and ``order`` (how reports show
and sort it), ``summary`` (one line), ``stages`` (a subset of ``ode, dmd, gan`` in order; empty = nothing trained,
the teacher reference), the Stage III discriminator ``gan.disc.backbone`` × ``gan.disc.head``, and the student's
sampling steps (``student.steps``, hence its NFE per chunk). Shared settings come from ``conf/method_base.yaml``.

A Python file ``aad_bench/methods/<name>.py`` exists only when a method has code of its own; its YAML then names
it (``code: aad_bench.methods.<name>``) and the stages take the hooks it defines (see :func:`method_hook`).
Every run records :meth:`MethodSpec.info` in its ``results.json``, so reports never need a table of methods.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig

from aad_bench.config import CONF_DIR
from aad_bench.models.discriminator import BACKBONES, HEADS
from aad_bench.registry import Registry

STAGES = ("ode", "dmd", "gan")
F = TypeVar("F", bound=Callable[..., Any])

# name -> YAML file; discovered from the config tree, so adding a method = adding a YAML
METHODS: Registry[Path] = Registry("method")
for _path in sorted((Path(CONF_DIR) / "method").glob("*.yaml")):
    METHODS.register(_path.stem, _path)


@dataclass(frozen=True)
class MethodSpec:
    """What a method is, read from its (composed) YAML node."""

    name: str
    display: str
    order: int
    summary: str
    stages: tuple[str, ...]
    disc: dict[str, str] | None  # {"backbone", "head"} when the method has Stage III
    nfe_per_chunk: int | None  # network evaluations per generated chunk (None: not a chunked student)
    code: str | None = None

    @classmethod
    def from_cfg(cls, m: DictConfig) -> MethodSpec:
        """The spec of a composed ``method`` config node."""
        stages = tuple(m.get("stages") or ())
        disc = None
        if "gan" in stages:
            disc = {"backbone": str(m.gan.disc.backbone), "head": str(m.gan.disc.head)}
        return cls(name=str(m.name), display=str(m.get("display") or m.name), order=int(m.get("order", 1000)),
                   summary=str(m.get("summary") or ""), stages=stages, disc=disc,
                   nfe_per_chunk=len(m.student.steps) if stages else None, code=m.get("code"))

    def info(self) -> dict[str, Any]:
        """What ``results.json`` records under ``method_info`` (reports read it instead of a table in code)."""
        d = asdict(self)
        d["stages"] = list(self.stages)
        return d

    def validate(self, m: DictConfig, model_depth: int | None = None) -> None:
        """Reject impossible combinations before any training starts (messages name the setting)."""
        bad = [s for s in self.stages if s not in STAGES]
        if bad:
            raise ValueError(f"method.stages: unknown stage(s) {bad}; stages are {STAGES}")
        if list(self.stages) != sorted(self.stages, key=STAGES.index):
            raise ValueError(f"method.stages {list(self.stages)} must keep the order {STAGES}")
        if "dmd" in self.stages and m.dmd.ratio < 1:
            raise ValueError(f"method.dmd.ratio must be >= 1 (critic updates per generator update), got {m.dmd.ratio}")
        if self.disc is not None:
            _validate_disc(m.gan.disc, "dmd" in self.stages, model_depth)
        if self.code:
            load_code(self.code)


def _validate_disc(disc: DictConfig, has_dmd: bool, model_depth: int | None) -> None:
    if disc.backbone not in BACKBONES:
        raise ValueError(f"method.gan.disc.backbone must be one of {'|'.join(BACKBONES)}, got {disc.backbone!r}")
    if disc.backbone == "causal" and not has_dmd:
        raise ValueError("method.gan.disc.backbone=causal is initialised from the Stage II generator, "
                         "but method.stages has no 'dmd' stage (missing Stage II checkpoint)")
    if disc.head not in HEADS:
        raise ValueError(HEADS.unknown_message(disc.head).replace("unknown", "method.gan.disc.head: unknown"))
    bad = [d for d in disc.depths if model_depth is not None and not 0 <= d < model_depth]
    if bad or not disc.depths:
        raise ValueError(f"method.gan.disc.depths {list(disc.depths)}: head depth beyond the backbone "
                         f"(blocks 0..{(model_depth or 1) - 1})")


def load_code(module: str) -> Any:
    """Import a method's own code module (named by its YAML's ``code``); a clear error when it is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise ValueError(f"method.code: cannot import {module!r} ({e})") from None


def method_hook(m: DictConfig, name: str, default: F) -> F:
    """The method's own ``name`` function if its code module defines one, else ``default``."""
    return getattr(load_code(m.code), name, default) if m.get("code") else default


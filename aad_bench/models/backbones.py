"""Backbone architectures by ``model.arch``: ``dit`` (the toy :class:`VideoDiT`, the default) and ``wan``.

Both share one interface (see :mod:`aad_bench.models.dit`), so the trainers, samplers and discriminators only
ever call :func:`backbone_config` and :func:`build_backbone`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from aad_bench.registry import Registry

ARCHS: Registry = Registry("model.arch", lazy={"dit": "aad_bench.models.backbones:DIT",
                                               "wan": "aad_bench.models.wan:WAN"})


def _dit_config(d: dict[str, Any]):
    from aad_bench.models.dit import DiTConfig

    return DiTConfig(**d)


def _dit_model(cfg) -> nn.Module:
    from aad_bench.models.dit import VideoDiT

    return VideoDiT(cfg)


DIT: tuple[Callable, Callable] = (_dit_config, _dit_model)


def _settings(mcfg) -> tuple[str, dict[str, Any]]:
    """``(arch, settings)`` of a model config node, a dict, or an already built ``DiTConfig`` / ``WanConfig``."""
    if isinstance(mcfg, DictConfig):
        d = OmegaConf.to_container(mcfg, resolve=True)
    else:
        d = mcfg.to_dict() if hasattr(mcfg, "to_dict") else dict(mcfg)
    return d.pop("arch", "dit"), d


def backbone_config(mcfg):
    """The validated shape config (``DiTConfig`` or ``WanConfig``) of ``cfg.model``, a dict or a config."""
    arch, d = _settings(mcfg)
    return ARCHS.get(arch)[0](d)


def build_backbone(mcfg) -> nn.Module:
    """A backbone for ``model`` (random weights, or ``model.checkpoint`` for Wan)."""
    arch, d = _settings(mcfg)
    make_cfg, make_model = ARCHS.get(arch)
    return make_model(make_cfg(d))

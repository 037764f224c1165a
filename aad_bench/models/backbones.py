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


def _settings(mcfg: DictConfig | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    d = OmegaConf.to_container(mcfg, resolve=True) if isinstance(mcfg, DictConfig) else dict(mcfg)
    return d.pop("arch", "dit"), d


def backbone_config(mcfg: DictConfig | dict[str, Any]):
    """The validated shape config of ``model`` (``DiTConfig`` or ``WanConfig``)."""
    arch, d = _settings(mcfg)
    return ARCHS.get(arch)[0](d)


def build_backbone(mcfg: DictConfig | dict[str, Any]) -> nn.Module:
    """A backbone for ``model`` (random weights, or ``model.checkpoint`` for Wan)."""
    arch, d = _settings(mcfg)
    make_cfg, make_model = ARCHS.get(arch)
    return make_model(make_cfg(d))

"""Wan 2.1 video backbone (diffusers' ``WanTransformer3DModel``) behind the toy backbone's interface.

``build_wan(cfg.model)`` gives a :class:`WanVideo`: random weights for the shape in the config, or the weights of
``model.checkpoint`` (diffusers folder, original Wan file, Self-Forcing / CausVid / LongLive generator).
"""

from __future__ import annotations

from typing import Any

import torch

from aad_bench.models.wan.config import ARCH_VERSION, WanConfig
from aad_bench.models.wan.model import WanContext, WanKVCache, WanVideo

__all__ = ["ARCH_VERSION", "WanConfig", "WanContext", "WanKVCache", "WanVideo", "build_wan"]


def build_wan(settings: dict[str, Any] | WanConfig) -> WanVideo:
    """A :class:`WanVideo` for ``settings`` (the ``model`` config); loads ``checkpoint.path`` when set."""
    from aad_bench.models.wan.checkpoints import cast, load_net

    cfg = settings if isinstance(settings, WanConfig) else WanConfig.from_dict(dict(settings))
    dtype = getattr(torch, cfg.dtype)
    net = load_net(cfg.checkpoint, cfg.diffusers_kwargs(), dtype) if cfg.checkpoint.get("path") else None
    model = WanVideo(cfg, net)
    if net is None:
        cast(model.net, dtype)
    return model


def _wan_config(d: dict[str, Any]) -> WanConfig:
    return WanConfig.from_dict({**d, "arch": "wan"})


WAN = (_wan_config, build_wan)  # model.arch=wan in aad_bench.models.backbones

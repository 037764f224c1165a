"""Shared builders for the Wan tests: the wan_tiny config from the real conf file, random inputs."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from aad_bench.models.wan import WanConfig, build_wan

CONF = Path(__file__).resolve().parents[1] / "aad_bench" / "conf" / "model" / "wan_tiny.yaml"


def tiny_settings(**over) -> dict:
    """``conf/model/wan_tiny.yaml`` as a dict (interpolations left as they are), with overrides."""
    d = OmegaConf.to_container(OmegaConf.load(CONF), resolve=False)
    d.update(over)
    return d


def tiny_model(seed: int = 0, **over):
    torch.manual_seed(seed)
    return build_wan(tiny_settings(**over)).eval()


def tiny_inputs(cfg: WanConfig, b: int = 2, frames: int = 7, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, frames, cfg.channels, cfg.height, cfg.width, generator=g)
    t = torch.rand(b, frames, generator=g)
    t[:, 0] = 0
    ctx = torch.randn(b, cfg.text_len, cfg.text_dim, generator=g)
    return x, t, ctx

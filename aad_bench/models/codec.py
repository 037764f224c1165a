"""Latent codecs: pixels ↔ the model's latent space.

The toy world trains in pixel space (:class:`IdentityCodec`); a real VAE (e.g. Wan 2.1's, 4× temporal and 8×
spatial compression) plugs in behind the same interface, registered under its own name.
"""

from __future__ import annotations

from typing import Protocol

import torch

from aad_bench.registry import Registry

CODECS: Registry = Registry("codec")
CODECS.add_lazy("wan_vae", "aad_bench.models.wan_vae:wan_vae_codec")  # Wan 2.1 VAE; settings in model.vae


class LatentCodec(Protocol):
    """What the rest of aad_bench needs from a codec. Videos are ``[B,T,3,H,W]`` in [-1, 1]."""

    latent_channels: int
    temporal_ratio: int  # pixel frames per latent frame after the first (Wan VAE: 4)
    spatial_ratio: int

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B,T,3,H,W]`` → latents."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents → pixels ``[B,T,3,H,W]`` in [-1, 1]."""


@CODECS.register("identity")
class IdentityCodec:
    """Pixels are latents (the toy world): encode/decode are exact."""

    latent_channels = 3
    temporal_ratio = 1
    spatial_ratio = 1

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B,T,3,H,W]`` → latents (here: the same tensor, checked)."""
        _check(video)
        return video

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents → pixels in [-1, 1] (clamped)."""
        return latents.clamp(-1, 1)

    def latent_frames(self, frames: int) -> int:
        """Latent frames for a clip of ``frames`` pixel frames."""
        return frames


def _check(video: torch.Tensor) -> None:
    if video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"codec: expected a video batch [B,T,3,H,W], got {tuple(video.shape)}")


def build_codec(name: str) -> LatentCodec:
    """Instantiate a registered codec by name (did-you-mean on a typo)."""
    return CODECS.get(name)()


def codec_for(cfg) -> LatentCodec:
    """The codec a run config names (top-level ``codec``; identity when absent).

    A real VAE's settings (path, batch, tiling) live with the model that works in its latents: ``model.vae``.
    """
    name = cfg.get("codec", "identity")
    vae = cfg.get("model", {}).get("vae") if name != "identity" else None
    if not vae:
        return build_codec(name)
    from omegaconf import OmegaConf

    return CODECS.get(name)(**(OmegaConf.to_container(vae, resolve=True) if OmegaConf.is_config(vae) else vae))

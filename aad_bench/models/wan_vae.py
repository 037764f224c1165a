"""``codec=wan_vae``: Wan 2.1's causal video VAE (diffusers ``AutoencoderKLWan``) behind :class:`LatentCodec`.

4x temporal and 8x spatial compression: a clip of ``1 + 4k`` frames becomes ``1 + k`` latent frames; the first
frame is encoded on its own, so a conditioning image is exactly latent frame 0. Latents are normalised with the
VAE's ``latents_mean`` / ``latents_std`` (what Wan's transformer sees). Settings (``model.vae``):

* ``path``: a diffusers folder (with ``vae/``) or the VAE folder itself, or Wan's original ``Wan2.1_VAE.pth``;
* ``random: tiny``: a tiny randomly initialised VAE with the real structure (tests, CPU benchmarks);
* ``batch`` (clips per VAE call), ``tiling`` (spatial tiles for large frames), ``dtype``, ``device``, ``seed``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

TINY = dict(base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1, attn_scales=[],
            temperal_downsample=[False, True, True], latents_mean=[0.0] * 16, latents_std=[1.0] * 16)
_BUILT: dict[str, WanVAECodec] = {}


class WanVAECodec:
    """Pixels ``[B,T,3,H,W]`` in [-1, 1] ↔ normalised latents ``[B, 1+(T-1)/4, C, H/8, W/8]``."""

    temporal_ratio = 4
    spatial_ratio = 8

    def __init__(self, vae: torch.nn.Module, batch: int = 1, tiling: bool = False, device: str = "cpu") -> None:
        self.vae = vae.eval().requires_grad_(False).to(device)
        self.batch, self.device = max(1, int(batch)), torch.device(device)
        self.dtype = next(vae.parameters()).dtype
        if tiling:
            self.vae.enable_tiling()
        z = vae.config.z_dim
        self.latent_channels = z
        self.mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32).view(1, z, 1, 1, 1)
        self.std = torch.tensor(vae.config.latents_std, dtype=torch.float32).view(1, z, 1, 1, 1)

    def latent_frames(self, frames: int) -> int:
        """Latent frames for a clip of ``frames`` pixel frames (which must be ``1 + 4k``)."""
        if frames < 1 or (frames - 1) % self.temporal_ratio:
            raise ValueError(f"codec=wan_vae: a clip of {frames} frames; the Wan VAE needs 1 + 4k frames "
                             f"(e.g. 17, 33, 81)")
        return 1 + (frames - 1) // self.temporal_ratio

    def pixel_frames(self, latent_frames: int) -> int:
        """Pixel frames decoded from ``latent_frames`` latent frames."""
        return 1 + self.temporal_ratio * (latent_frames - 1)

    def _check(self, video: torch.Tensor) -> None:
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"codec=wan_vae: expected a video batch [B,T,3,H,W], got {tuple(video.shape)}")
        self.latent_frames(video.shape[1])
        h, w = video.shape[-2:]
        if h % self.spatial_ratio or w % self.spatial_ratio:
            raise ValueError(f"codec=wan_vae: frame size {h}x{w} is not divisible by the VAE factor 8")

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Posterior means, normalised; ``batch`` clips per VAE call."""
        self._check(video)
        out = []
        for part in video.split(self.batch):
            x = part.to(self.device, self.dtype).transpose(1, 2)  # [B, 3, T, H, W]
            mu = self.vae.encode(x).latent_dist.mode().float().cpu()
            out.append(((mu - self.mean) / self.std).transpose(1, 2))
        return torch.cat(out).to(video.device)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Videos in [-1, 1] ``[B, 1+4(F-1), 3, 8h, 8w]``."""
        if latents.ndim != 5 or latents.shape[2] != self.latent_channels:
            raise ValueError(f"codec=wan_vae: expected latents [B,F,{self.latent_channels},h,w], "
                             f"got {tuple(latents.shape)}")
        out = []
        for part in latents.split(self.batch):
            z = part.detach().float().cpu().transpose(1, 2) * self.std + self.mean
            x = self.vae.decode(z.to(self.device, self.dtype)).sample.float().cpu()
            out.append(x.transpose(1, 2).clamp(-1, 1))
        return torch.cat(out).to(latents.device)


def _load_vae(settings: dict[str, Any], dtype: torch.dtype) -> torch.nn.Module:
    from diffusers import AutoencoderKLWan

    if settings.get("random"):
        if settings["random"] != "tiny":
            raise ValueError(f"model.vae.random={settings['random']!r}: only 'tiny' is defined")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(settings.get("seed", 0)))
            vae = AutoencoderKLWan(**TINY)
        return vae if dtype == torch.float32 else vae.to(dtype)
    if not settings.get("path"):
        raise ValueError("codec=wan_vae needs model.vae.path (a local diffusers folder with vae/, or Wan2.1_VAE.pth) "
                         "or model.vae.random=tiny")
    path = Path(settings["path"]).expanduser()
    if not path.exists():
        raise ValueError(f"model.vae.path={path} does not exist (weights are never downloaded)")
    if path.is_dir():
        sub = "vae" if (path / "vae" / "config.json").is_file() else None
        return AutoencoderKLWan.from_pretrained(path, subfolder=sub, local_files_only=True, torch_dtype=dtype)
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    from aad_bench.models.wan.checkpoints import _read_file, load_into

    vae = AutoencoderKLWan()  # its defaults are the Wan 2.1 VAE
    load_into(vae, convert_wan_vae_to_diffusers(_read_file(path)), source=str(path))
    return vae if dtype == torch.float32 else vae.to(dtype)


def wan_vae_codec(**settings: Any) -> WanVAECodec:
    """The codec for ``settings`` (``model.vae``); built once per distinct settings in a process."""
    key = json.dumps(settings, sort_keys=True, default=str)
    if key not in _BUILT:
        dtype = getattr(torch, settings.get("dtype", "float32"))
        vae = _load_vae(settings, dtype)
        _BUILT[key] = WanVAECodec(vae, settings.get("batch", 1), bool(settings.get("tiling", False)),
                                  settings.get("device", "cpu"))
    return _BUILT[key]

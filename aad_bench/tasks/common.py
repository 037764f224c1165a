"""Helpers shared by tasks: building the world and data, video sets of samples, motion summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from aad_bench.models.codec import codec_for
from aad_bench.video.io import clips_to_tensor, contact_sheet, to_uint8
from aad_bench.video.sets import VideoSetWriter, video_name
from aad_bench.world.dataset import build_toy_dataset, load_ground_truth, load_train_clips
from aad_bench.world.toy import ToyWorldConfig
from aad_bench.world.tracking import mean_speed


def world_config(cfg: DictConfig) -> ToyWorldConfig:
    """The world settings as a dataclass (validates them)."""
    return ToyWorldConfig(**OmegaConf.to_container(cfg.world, resolve=True))


def training_data(cfg: DictConfig) -> torch.Tensor:
    """Training clips in the model's latent space ``[N,T,c,h,w]``; builds the cached data set on first use."""
    clips = clips_to_tensor(load_train_clips(world_config(cfg), cfg.paths.cache, progress=cfg.progress))
    return codec_for(cfg).encode(clips)


def eval_conditions(cfg: DictConfig, split: str, n: int) -> tuple[list[str], torch.Tensor, list[dict]]:
    """Conditioning frames (and their data clips' ground truth) of the first ``n`` clips of ``split``."""
    root = build_toy_dataset(world_config(cfg), cfg.paths.cache, progress=cfg.progress)
    videos = load_ground_truth(root, split)
    names = list(videos)[:n]
    if len(names) < n:
        raise ValueError(f"sample: asked for {n} videos but world split {split!r} has {len(names)} clips")
    from PIL import Image

    imgs = np.stack([np.asarray(Image.open(root / split / videos[k]["image"]).convert("RGB")) for k in names])
    cond = codec_for(cfg).encode(clips_to_tensor(imgs[:, None]))[:, 0]
    stems = [Path(k).stem.rsplit("-", 1)[0] for k in names]
    return stems, cond, [videos[k] for k in names]


def data_speed(cfg: DictConfig, split: str = "eval") -> float:
    """Mean tracked speed of the data clips of ``split`` (the reference for generated/data ratios)."""
    root = build_toy_dataset(world_config(cfg), cfg.paths.cache, progress=False)
    from aad_bench.video.io import read_video

    vids = load_ground_truth(root, split)
    return float(np.mean([mean_speed(read_video(root / split / k)[0]) for k in vids]))


def decode(cfg: DictConfig, latents: torch.Tensor) -> torch.Tensor:
    """Latent clips ``[B,T,c,h,w]`` back to pixels in [-1, 1]."""
    return codec_for(cfg).decode(latents)


def write_videos(cfg: DictConfig, folder: Path, stems: list[str], cond: torch.Tensor, gen: torch.Tensor,
                 metas: list[dict], fps: float, extra: dict[str, Any]) -> list[np.ndarray]:
    """Write generated clips (cond frame + generated frames) as a video set; returns the uint8 clips."""
    writer = VideoSetWriter(folder, fps, meta=extra)
    clips = []
    pixels = decode(cfg, torch.cat([cond[:, None], gen], 1))
    for i, stem in enumerate(stems):
        clip = to_uint8(pixels[i])
        clips.append(clip)
        entry = {"seed": extra.get("seed", 0) + i, "frames": len(clip), "method": extra.get("method"),
                 "sampling": extra.get("sampling"), "gt": metas[i].get("gt")}
        writer.add(video_name(stem), clip, entry, image=clip[0])
    return clips


def summarize_motion(clips: list[np.ndarray], data_ref: float, sheet: Path, labels: list[str] | None = None
                     ) -> dict[str, float]:
    """Tracked speed ratio generated/data, share of frozen clips, and a contact sheet."""
    speeds = np.array([mean_speed(c) for c in clips])
    contact_sheet(clips[:8], sheet, labels=labels)
    return {"speed": float(speeds.mean()), "data_speed": data_ref,
            "speed_ratio": float(speeds.mean() / max(data_ref, 1e-9)),
            "frozen_share": float((speeds < 0.1).mean()), "contact_sheet": str(sheet)}

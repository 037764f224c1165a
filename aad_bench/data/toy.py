"""The toy world as a data source: training clips and conditioning frames in the model's latent space.

The data set itself (rendering, the on-disk cache) lives in :mod:`aad_bench.world`; this module turns a run config
into tensors the trainers and samplers use, through the configured latent codec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from aad_bench.models.codec import codec_for
from aad_bench.video.io import clips_to_tensor, read_video
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
    """Conditioning frames of the first ``n`` clips of ``split``.

    Returns:
        File stems, latents ``[n,c,h,w]``, and the data clips' index entries (with ground truth).
    """
    root = build_toy_dataset(world_config(cfg), cfg.paths.cache, progress=cfg.progress)
    videos = load_ground_truth(root, split)
    names = list(videos)[:n]
    if len(names) < n:
        raise ValueError(f"sample: asked for {n} videos but world split {split!r} has {len(names)} clips")
    imgs = np.stack([np.asarray(Image.open(root / split / videos[k]["image"]).convert("RGB")) for k in names])
    cond = codec_for(cfg).encode(clips_to_tensor(imgs[:, None]))[:, 0]
    stems = [Path(k).stem.rsplit("-", 1)[0] for k in names]
    # the data clip itself too, so contact sheets can show it beside the generated one
    return stems, cond, [{**videos[k], "data_video": str(root / split / k)} for k in names]


def data_speed(cfg: DictConfig, split: str = "eval") -> float:
    """Mean tracked speed of the data clips of ``split`` (the reference of Stage II's early-stopping check)."""
    root = build_toy_dataset(world_config(cfg), cfg.paths.cache, progress=False)
    vids = load_ground_truth(root, split)
    return float(np.mean([mean_speed(read_video(root / split / k)[0]) for k in vids]))

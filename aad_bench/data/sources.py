"""The data a run trains and samples on, by ``data.source``: the toy world (no ``data`` group) or ``folder``.

Trainers and samplers call these instead of the toy functions directly: training latents, conditioning latents
for sampling (with what each video's summary compares against), the data's tracked speed, the clip length in
latent frames and the frame rate of written videos.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from aad_bench.data import toy
from aad_bench.data.loader import ShardReader, TrainingSet, text_for
from aad_bench.models.codec import codec_for
from aad_bench.video.io import to_uint8
from aad_bench.world.tracking import mean_speed


def _source(cfg: DictConfig) -> str:
    data = cfg.get("data")
    if not data:
        return "toy"
    from aad_bench.data import SOURCES

    SOURCES.get(data.source)  # an unknown name fails here with did-you-mean
    return str(data.source)


def _folder(cfg: DictConfig):
    """The ``data=folder`` latent set (cache built on first use; memoised per settings in this process)."""
    d = OmegaConf.to_container(cfg.data, resolve=True)
    if not d.get("path"):
        raise ValueError("data=folder needs data.path (a folder of mp4s or a CSV/JSONL manifest)")
    codec = OmegaConf.to_container(cfg.model.get("vae") or {}, resolve=True) if cfg.get("codec") != "identity" else {}
    codec_key = json.dumps({"codec": cfg.get("codec", "identity"), **codec}, sort_keys=True)
    return _latent_set(json.dumps(d, sort_keys=True), codec_key, codec_for(cfg), bool(cfg.progress))


@functools.lru_cache(maxsize=4)
def _latent_set(data_key: str, codec_key: str, codec, progress: bool):
    from aad_bench.data.latents import prepare_folder

    d = json.loads(data_key)
    return prepare_folder(d, codec, d["cache"], codec_key, progress)


def _check_shapes(cfg: DictConfig) -> None:
    """Video resolution and channels against the model, before any training."""
    from aad_bench.models.backbones import backbone_config

    m, codec = backbone_config(cfg.model), codec_for(cfg)
    if getattr(codec, "latent_channels", m.channels) != m.channels:
        raise ValueError(f"codec={cfg.get('codec', 'identity')} gives {codec.latent_channels} latent channels but "
                         f"model.channels={m.channels}")
    if hasattr(m, "check_resolution") and _source(cfg) == "folder":
        m.check_resolution(int(cfg.data.height), int(cfg.data.width), codec.spatial_ratio)


def training_data(cfg: DictConfig) -> TrainingSet:
    """What the training loops draw batches from.

    Clips in the model's latent space ``[N, F, c, h, w]`` (the toy world's tensor, or the latent cache's shards
    read clip by clip) and, for a text-conditioned backbone with ``model.encoders.text`` set, their captions'
    embeddings.
    """
    _check_shapes(cfg)
    if _source(cfg) == "toy":
        return TrainingSet(toy.training_data(cfg))
    return TrainingSet(_reader(cfg), text_for(cfg, captions=True))


def latent_frames(cfg: DictConfig) -> int:
    """Latent frames per training clip (conditioning frame included)."""
    frames = int(cfg.world.frames if _source(cfg) == "toy" else cfg.data.frames)
    codec = codec_for(cfg)
    return codec.latent_frames(frames) if hasattr(codec, "latent_frames") else frames


def video_fps(cfg: DictConfig) -> float:
    """Frame rate of written videos."""
    return float(cfg.world.fps if _source(cfg) == "toy" else cfg.data.fps)


def data_speed(cfg: DictConfig, split: str = "eval") -> float:
    """Mean tracked speed of data clips (Stage II's early-stopping reference)."""
    if _source(cfg) == "toy":
        return toy.data_speed(cfg, split)
    return float(np.mean(_clip_speeds(cfg, range(min(8, len(_folder(cfg)))))))


def _reader(cfg: DictConfig) -> ShardReader:
    data = _folder(cfg)
    if getattr(data, "reader", None) is None:
        data.reader = ShardReader(data.folder, data.shards)
    return data.reader


def _clip_speeds(cfg: DictConfig, idx) -> list[float]:
    """Tracked speed of cached clips ``idx``, each decoded once per process."""
    data, reader = _folder(cfg), _reader(cfg)
    if getattr(data, "speeds", None) is None:
        data.speeds = {}
    todo = sorted({int(i) for i in idx} - data.speeds.keys())
    if todo:
        clips = codec_for(cfg).decode(reader.latents(torch.tensor(todo)))
        data.speeds.update({i: mean_speed(to_uint8(v)) for i, v in zip(todo, clips)})
    return [data.speeds[int(i)] for i in idx]


def eval_conditions(cfg: DictConfig, split: str, n: int) -> tuple[list[str], torch.Tensor, list[dict[str, Any]]]:
    """File stems, conditioning latents ``[n, c, h, w]`` and per-video metadata for sampling.

    Toy: the images of ``split`` with their ground truth. Folder: the first frames of the cached clips (cycled
    when ``n`` exceeds them), each with its caption and the tracked speed of its data clip (no ground truth).
    """
    if _source(cfg) == "toy":
        return toy.eval_conditions(cfg, split, n)
    reader = _reader(cfg)
    idx = torch.tensor([i % len(reader) for i in range(n)])
    ids, captions, speeds = reader.ids(idx), reader.captions(idx), _clip_speeds(cfg, idx.tolist())
    stems = [f"{re.sub(r'[^A-Za-z0-9_-]+', '_', c.rsplit('.', 1)[0])}_{k:03d}" for k, c in enumerate(ids)]
    metas = [{"clip": c, "caption": cap, "data_speed": sp} for c, cap, sp in zip(ids, captions, speeds)]
    return stems, reader.latents(idx)[:, 0], metas

"""The data a run trains and samples on, by ``data.source``: the toy world (no ``data`` group), ``folder``, ``prompts``.

Trainers and samplers call these instead of the toy functions directly: training latents, conditioning latents
for sampling (with what each video's summary compares against), the data's tracked speed, the clip length in
latent frames and the frame rate of written videos.

``data=prompts`` has no clips: its training set carries each prompt's conditioning latent and caption only, which
is all the data-free stages (Stage I's teacher ODE pairs, Stage II's DMD) use; :func:`check_source` refuses, before
any work, what needs real frames (a teacher to train, Stage III) or the data's motion.
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
from aad_bench.data.prompts import NEEDS_TEACHER, teacher_folder
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
    return _latent_set(json.dumps(d, sort_keys=True), _codec_key(cfg), codec_for(cfg), bool(cfg.progress))


def _codec_key(cfg: DictConfig) -> str:
    codec = OmegaConf.to_container(cfg.model.get("vae") or {}, resolve=True) if cfg.get("codec") != "identity" else {}
    return json.dumps({"codec": cfg.get("codec", "identity"), **codec}, sort_keys=True)


def _prompts(cfg: DictConfig):
    """The ``data=prompts`` conditionings (each prompt encoded once per process, shared by training and sampling)."""
    if not cfg.data.get("path"):
        raise ValueError("data=prompts needs data.path (a .txt / .jsonl / .csv prompt list)")
    return _prompt_set(str(cfg.data.path), int(cfg.data.height), int(cfg.data.width), _codec_key(cfg), codec_for(cfg))


@functools.lru_cache(maxsize=4)
def _prompt_set(path: str, height: int, width: int, codec_key: str, codec):
    from aad_bench.data.prompts import PromptConditions, read_prompts

    return PromptConditions(read_prompts(path), codec, height, width)


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
    if hasattr(m, "check_resolution") and _source(cfg) in ("folder", "prompts"):
        m.check_resolution(int(cfg.data.height), int(cfg.data.width), codec.spatial_ratio)


def training_data(cfg: DictConfig) -> TrainingSet:
    """What the training loops draw batches from.

    Clips in the model's latent space ``[N, F, c, h, w]`` (the toy world's tensor, or the latent cache's shards
    read clip by clip) and, for a text-conditioned backbone with ``model.encoders.text`` set, their captions'
    embeddings.
    ``data=prompts``: each prompt's conditioning latent (``[B, 1, c, h, w]`` batches; ``data.frames`` sets the
    rollout length) and its text embeddings.
    """
    _check_shapes(cfg)
    if _source(cfg) == "toy":
        return TrainingSet(toy.training_data(cfg))
    if _source(cfg) == "prompts":
        return TrainingSet(_prompts(cfg), text_for(cfg, captions=True), frames=latent_frames(cfg))
    return TrainingSet(_reader(cfg), text_for(cfg, captions=True))


def latent_frames(cfg: DictConfig) -> int:
    """Latent frames per training clip (conditioning frame included)."""
    frames = int(cfg.world.frames if _source(cfg) == "toy" else cfg.data.frames)
    codec = codec_for(cfg)
    return codec.latent_frames(frames) if hasattr(codec, "latent_frames") else frames


def video_fps(cfg: DictConfig) -> float:
    """Frame rate of written videos."""
    return float(cfg.world.fps if _source(cfg) == "toy" else cfg.data.fps)


def data_speed(cfg: DictConfig, split: str = "eval") -> float | None:
    """Mean tracked speed of data clips (Stage II's early-stopping reference); None for ``data=prompts`` (no clips)."""
    if _source(cfg) == "toy":
        return toy.data_speed(cfg, split)
    if _source(cfg) == "prompts":
        return None
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
    Prompts: the prompts in file order (cycled; a prompt list has no splits), each with its caption only.
    """
    if _source(cfg) == "toy":
        return toy.eval_conditions(cfg, split, n)
    if _source(cfg) == "prompts":
        return _prompt_conditions(cfg, n)
    reader = _reader(cfg)
    idx = torch.tensor([i % len(reader) for i in range(n)])
    ids, captions, speeds = reader.ids(idx), reader.captions(idx), _clip_speeds(cfg, idx.tolist())
    stems = [f"{re.sub(r'[^A-Za-z0-9_-]+', '_', c.rsplit('.', 1)[0])}_{k:03d}" for k, c in enumerate(ids)]
    metas = [{"clip": c, "caption": cap, "data_speed": sp} for c, cap, sp in zip(ids, captions, speeds)]
    return stems, reader.latents(idx)[:, 0], metas


def _prompt_conditions(cfg: DictConfig, n: int) -> tuple[list[str], torch.Tensor, list[dict[str, Any]]]:
    prompts = _prompts(cfg)
    idx = torch.tensor([i % len(prompts) for i in range(n)])
    stems = [f"{re.sub(r'[^A-Za-z0-9_-]+', '_', s)[:60]}_{k:03d}" for k, s in enumerate(prompts.ids(idx))]
    return stems, prompts.latents(idx)[:, 0], [{"caption": c} for c in prompts.captions(idx)]


def check_source(cfg: DictConfig, stages: list[str] | None) -> None:
    """What ``data=prompts`` cannot do, as one line before any work (nothing to check for other sources).

    ``stages``: the method's stages, or None for ``task=teacher``. Prompts have no clips, so no teacher can be
    trained (one must be given: ``model.checkpoint.path`` or ``data.teacher``), Stage III has no real clips to
    discriminate against, and Stage II's motion check has no data motion to compare with (``reference=start``
    compares the rollouts with their own motion before Stage II, which needs no data).
    """
    if _source(cfg) != "prompts":
        return
    if stages is None:
        raise ValueError("task=teacher needs real clips to train a teacher: data=prompts has none; use data=folder")
    if "gan" in stages:
        raise ValueError(f"method={cfg.method.name} needs real clips for Stage III (gan): data=prompts has none; "
                         f"use data=folder (or method=dmd)")
    es = cfg.method.dmd.early_stop if "dmd" in stages else None
    if es is not None and es.criterion == "motion" and es.reference == "data":
        raise ValueError("method.dmd.early_stop.reference=data needs the data's motion: data=prompts has no clips; "
                         "use method.dmd.early_stop.reference=start or method.dmd.early_stop.criterion=budget")
    if not (cfg.model.get("checkpoint") or {}).get("path"):
        if not cfg.data.get("teacher"):
            raise ValueError(NEEDS_TEACHER)
        teacher_folder(cfg.data.teacher)

"""Generating one conditioning set with a public checkpoint (see :mod:`aad_bench.sampling.public`).

Each image is resized to cover the model's resolution and centre-cropped, encoded by the VAE into the
conditioning latent (latent frame 0, its own first chunk), and rolled out chunk by chunk at the public sampler's
flow times; the clip is generated in whole chunks and cut to the source videos' length (``1 + 4k`` pixel frames
for Wan's VAE). Noise comes from CPU generators seeded by each video's seed (one video per rollout by default,
so each video depends only on its own seed, on every device). Videos already in the set are kept (an
interrupted run goes on where it stopped).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from aad_bench.data.decode import load_image
from aad_bench.models.codec import codec_for
from aad_bench.sampling.conditions import CondItem, CondSet
from aad_bench.sampling.samplers import causal_rollout
from aad_bench.sampling.text import caption_context
from aad_bench.video.io import clips_to_tensor, to_uint8
from aad_bench.video.sets import VideoSetWriter


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":  # time the work, not its launch
        torch.cuda.synchronize(dev)


def latent_length(frames: int, temporal_ratio: int) -> int:
    """Latent frames whose decoding covers ``frames`` pixel frames (rounded up to the VAE's grid)."""
    return 1 + math.ceil(max(frames - 1, 1) / temporal_ratio)


def _entry(cfg: DictConfig, it: CondItem, clip: np.ndarray, src_hw: tuple[int, int], sampling: dict) -> dict:
    entry: dict[str, Any] = {"seed": it.seed, "frames": len(clip), "method": str(cfg.public.name),
                             "sampling": sampling}
    if it.caption:
        entry["caption"] = it.caption
    if "clip" in it.extra:
        entry["clip"] = it.extra["clip"]
    if "gt" in it.extra and tuple(clip.shape[1:3]) == src_hw:  # ground truth in the source's pixel coordinates
        entry["gt"] = it.extra["gt"]
    return entry


def sample_set(cfg: DictConfig, model: torch.nn.Module, cset: CondSet, folder: Path,
               device: torch.device) -> dict[str, Any]:
    """Generate every video of ``cset`` into ``folder`` (a video set); returns its numbers."""
    codec = codec_for(cfg)
    mc, s = model.cfg, cfg.public.sampler
    h, w = mc.height * codec.spatial_ratio, mc.width * codec.spatial_ratio
    gen_frames = latent_length(cset.frames, codec.temporal_ratio) - 1
    chunks, steps = math.ceil(gen_frames / mc.chunk), tuple(float(x) for x in s.steps)
    sampling = {"nfe_per_chunk": len(steps), "steps": list(steps), "chunk": mc.chunk, "sink_chunks": mc.sink_chunks,
                "window_frames": mc.window_frames, "resolution": [h, w], "source": cset.source}
    writer = VideoSetWriter(folder, cset.fps, set_name=cset.name,
                            meta={"method": str(cfg.public.name), "sampling": sampling})
    todo = [it for it in cset.items if not writer.has(it.video)]
    seconds, warm = 0.0, False
    for k in range(0, len(todo), int(s.batch)):
        part = todo[k:k + int(s.batch)]
        images = [load_image(it.image, h, w) for it in part]
        px = clips_to_tensor(np.stack(images)[:, None])  # [B, 1, 3, H, W] in [-1, 1]
        cond = codec.encode(px)[:, 0]
        ctx, prompts = caption_context(cfg, model, [it.caption for it in part], device)
        sampling.update(prompts)
        noise = torch.stack([torch.randn((chunks * mc.chunk, *cond.shape[1:]),
                                         generator=torch.Generator().manual_seed(it.seed)) for it in part])
        cond_d, noise = cond.to(device), noise.to(device)
        if not warm:  # one untimed chunk: the first call pays for allocator and kernel warm-up
            causal_rollout(model, cond_d[:1], 1, noise=noise[:1, :mc.chunk], steps=steps,
                           generator=torch.Generator().manual_seed(0), context=None if ctx is None else ctx[:1])
            warm = True
        _sync(device)
        t0 = time.perf_counter()
        gen = causal_rollout(model, cond_d, chunks, noise=noise, steps=steps, context=ctx,
                             generator=torch.Generator().manual_seed(part[0].seed))
        _sync(device)
        seconds += time.perf_counter() - t0
        pixels = codec.decode(torch.cat([cond[:, None], gen.cpu()[:, :gen_frames]], 1))
        for it, p in zip(part, pixels):
            clip = to_uint8(p)
            writer.add(it.video, clip, _entry(cfg, it, clip, load_image_size(it.image), dict(sampling)),
                       image=clip[0])
    n = max(len(todo), 1)
    return {"videos": len(cset.items), "frames": 1 + codec.temporal_ratio * gen_frames, "source_frames": cset.frames,
            "nfe": chunks * len(steps), "seconds_per_video": seconds / n, "generated": len(todo),
            "prompts": sampling.get("prompts")}


def load_image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image file."""
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width

"""``data=folder``: clips → VAE latents in resumable shards, and the batch loader the training loops iterate.

The cache folder is named by a hash of everything that shapes the latents (the clip list with captions, frames,
fps, resolution, the codec's identity), so a changed setting builds a new cache and an unchanged one is reused.
Unreadable or too-short clips are skipped, named and counted in ``index.json``; the rest are cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aad_bench.data.decode import load_clip
from aad_bench.data.manifest import Clip, read_clips
from aad_bench.data.shards import dist_info, load_shard, run_shards
from aad_bench.utils.io import read_json
from aad_bench.video.io import VideoReadError, clips_to_tensor


def _encode_work(codec, frames: int, height: int, width: int, fps: float | None, dtype: torch.dtype):
    def work(clips: Sequence[Clip]) -> dict[str, Any]:
        vids, kept, skipped = [], [], []
        for c in clips:
            try:
                vids.append(load_clip(c.path, frames, height, width, fps))
                kept.append(c)
            except VideoReadError as e:
                skipped.append({"id": c.id, "reason": str(e)})
        lat = codec.encode(clips_to_tensor(np.stack(vids))).to(dtype) if vids else torch.empty(0)
        return {"latents": lat, "ids": [c.id for c in kept], "captions": [c.caption for c in kept],
                "n": len(kept), "skipped": skipped}
    return work


def build_latent_cache(clips: Sequence[Clip], codec, root: str | Path, frames: int, height: int, width: int,
                       fps: float | None = None, shard_size: int = 64, codec_id: str = "", dtype: str = "float32",
                       progress: bool = True, skipped: Sequence[dict] = ()) -> Path:
    """Encode ``clips`` into ``<root>/latents-<hash>/``; returns that folder (finished shards are kept)."""
    if hasattr(codec, "latent_frames"):
        codec.latent_frames(frames)  # e.g. the Wan VAE's 1 + 4k rule, before any decoding
    meta = {"clips": [[c.id, c.caption] for c in clips], "frames": frames, "height": height, "width": width,
            "fps": fps, "codec": codec_id, "dtype": dtype, "format": 1}
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(root) / f"latents-{key}"
    work = _encode_work(codec, frames, height, width, fps, getattr(torch, dtype))
    index = run_shards(list(clips), shard_size, folder, work, meta={"key": key, **{k: v for k, v in meta.items()
                       if k != "clips"}}, desc="latent cache", progress=progress, skipped=skipped)
    rank, _ = dist_info()
    if rank == 0 and index["n_skipped"]:
        first = index["skipped"][0]
        print(f"latent cache: {index['kept']} clips cached, {index['n_skipped']} skipped "
              f"(e.g. {first['id']}: {first['reason']}); list in {folder / 'index.json'}")
    return folder


class LatentSet:
    """Read side of a latent cache: sizes, the whole set (small data), or shuffled batches per rank."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not (self.folder / "index.json").is_file():
            raise ValueError(f"{self.folder}: no index.json (latent cache not finished)")
        self.index = read_json(self.folder / "index.json")
        self.shards = [s for s in self.index["shards"] if s["n"] > 0]
        if not self.shards:
            raise ValueError(f"{self.folder}: no clip could be cached ({self.index['n_skipped']} skipped)")

    def __len__(self) -> int:
        return int(self.index["kept"])

    @property
    def skipped(self) -> list[dict]:
        """Clips left out of the cache, ``{"id", "reason"}`` each."""
        return list(self.index["skipped"])

    def load_all(self) -> dict[str, Any]:
        """Every clip at once: ``{"latents" [N,F,C,h,w], "captions", "ids"}``."""
        parts = [load_shard(self.folder / s["file"]) for s in self.shards]
        return {"latents": torch.cat([p["latents"] for p in parts]).float(),
                "captions": [c for p in parts for c in p["captions"]], "ids": [i for p in parts for i in p["ids"]]}

    def batches(self, batch: int, seed: int = 0, epochs: int | None = None) -> Iterator[dict[str, Any]]:
        """Batches ``{"latents", "captions", "ids"}``, reshuffled every epoch (seeded).

        Shards and the clips inside them are shuffled; under torch.distributed each rank takes every
        ``world``-th clip of the same stream. ``epochs=None`` = endless.
        """
        rank, world = dist_info()
        epoch, buf, pos = 0, [], 0
        while epochs is None or epoch < epochs:
            g = torch.Generator().manual_seed(seed * 100003 + epoch)
            for s in torch.randperm(len(self.shards), generator=g).tolist():
                d = load_shard(self.folder / self.shards[s]["file"])
                for j in torch.randperm(d["n"], generator=g).tolist():
                    if pos % world == rank:
                        buf.append((d["latents"][j], d["captions"][j], d["ids"][j]))
                    pos += 1
                    if len(buf) == batch:
                        yield {"latents": torch.stack([b[0] for b in buf]).float(),
                               "captions": [b[1] for b in buf], "ids": [b[2] for b in buf]}
                        buf = []
            epoch += 1


def prepare_folder(data_cfg: dict[str, Any], codec, cache_root: str | Path, codec_id: str = "",
                   progress: bool = True) -> LatentSet:
    """``data=folder`` end to end: read the clip list, build (or reuse) the latent cache, open it."""
    clips, skipped = read_clips(data_cfg["path"], data_cfg.get("caption_missing", "error"))
    folder = build_latent_cache(clips, codec, cache_root, int(data_cfg["frames"]), int(data_cfg["height"]),
                                int(data_cfg["width"]), data_cfg.get("fps"), int(data_cfg.get("shard_size", 64)),
                                codec_id, data_cfg.get("dtype", "float32"), progress, skipped)
    return LatentSet(folder)




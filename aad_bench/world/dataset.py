"""The toy data set on disk (mp4 video sets + ``index.json`` with ground truth), generated once and cached.

Layout: ``<cache>/toy/<hash>/{eval,long,val}/`` (mp4 video sets with ground truth; ``val`` holds the conditioning
frames of Stage II's early-stopping probes, kept apart from the scored ``eval`` split, see ``aad_bench.video.sets``),
``train.npz`` (uint8 training clips) and ``train_gt.json`` (their ground truth).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from tqdm import tqdm

from aad_bench.utils.io import atomic_write_json, read_json
from aad_bench.utils.provenance import config_hash
from aad_bench.video.sets import VideoSetWriter, video_name
from aad_bench.world.toy import ToyWorldConfig, render_clip, render_split

DONE = "done.json"


class CacheError(RuntimeError):
    """A cache entry that exists but cannot be used (corrupt, incomplete); the message names the file."""


def dataset_dir(cfg: ToyWorldConfig, cache_root: str | os.PathLike) -> Path:
    """Where the data set for ``cfg`` lives (content-addressed by the world config)."""
    return Path(cache_root) / "toy" / config_hash(cfg.to_dict())


def build_toy_dataset(cfg: ToyWorldConfig, cache_root: str | os.PathLike, progress: bool = True) -> Path:
    """Generate the data set unless a complete copy is cached; returns its folder."""
    root = dataset_dir(cfg, cache_root)
    if (root / DONE).exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):  # concurrent jobs: one builds, the others wait
        if not (root / DONE).exists():
            _build(cfg, root, progress)
    return root


def _build(cfg: ToyWorldConfig, root: Path, progress: bool) -> None:
    # eval / long splits are what evaluation reads (data references): mp4 video sets like any real data.
    # The training split only feeds the trainer, so it is stored as one uint8 array (+ ground truth), which
    # saves spawning one ffmpeg process per clip (~2 minutes for 512 clips on 2 cores).
    for split, n in (("eval", cfg.n_eval), ("long", cfg.n_long), ("val", cfg.n_val)):
        writer = VideoSetWriter(root / split, cfg.fps, set_name=split, meta={"method": "data", "world": "toy"})
        for i in tqdm(range(n), desc=f"toy world: {split}", disable=not progress, leave=False):
            name = video_name(f"toy_{split}_{i:05d}")
            if writer.has(name):
                continue
            frames, gt = render_clip(cfg, split, i)
            writer.add(name, frames, {"seed": i, "frames": len(frames), "method": "data", "gt": gt},
                       image=frames[0])
    train, gts = render_split(cfg, "train")
    tmp = root / ".train.tmp.npz"
    np.savez(tmp, clips=train)
    os.replace(tmp, root / "train.npz")
    atomic_write_json(root / "train_gt.json", gts)
    atomic_write_json(root / DONE, {"world": cfg.to_dict(), "counts": {"train": cfg.n_train, "eval": cfg.n_eval,
                                                                       "long": cfg.n_long, "val": cfg.n_val}})


def load_train_clips(cfg: ToyWorldConfig, cache_root: str | os.PathLike, progress: bool = True) -> np.ndarray:
    """uint8 ``[N,T,H,W,3]`` training clips, from the cache (built if needed)."""
    root = build_toy_dataset(cfg, cache_root, progress=progress)
    path = root / "train.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            clips = z["clips"]
    except Exception as e:  # zipfile / ValueError / KeyError from a damaged file
        raise CacheError(f"{path}: corrupt data cache ({type(e).__name__}); delete {root} to rebuild") from None
    expected = (cfg.n_train, cfg.frames, cfg.height, cfg.width, 3)
    if clips.shape != expected:
        raise CacheError(f"{path}: cached clips have shape {clips.shape}, expected {expected}; delete {root}")
    return clips


def load_ground_truth(root: str | os.PathLike, split: str) -> dict[str, Any]:
    """The ``videos`` mapping (file → metadata with ``gt``) of one split."""
    return read_json(Path(root) / split / "index.json")["videos"]

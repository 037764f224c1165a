"""A video set: a folder of mp4s plus ``index.json`` with per-video metadata.

File names follow VBench's I2V convention ``<image_stem>-<k>.mp4`` (``k`` = sample index per image), which is
also a valid custom_input name, so the folder can be handed to official VBench as it is. Conditioning images
go to ``images/<image_stem>.png``.

``index.json``::

    {"set": "train_len", "fps": 8, "videos": {"<file>.mp4": {"image": "images/x.png", "seed": 0,
     "frames": 17, "method": "aad1", "sampling": {...}, "gt": {...toy-world ground truth...}}}}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from aad_bench.utils.io import atomic_write_json, read_json
from aad_bench.video.io import write_mp4

INDEX = "index.json"


def video_name(image_stem: str, k: int = 0) -> str:
    """VBench-I2V style file name for sample ``k`` of conditioning image ``image_stem``."""
    return f"{image_stem}-{k}.mp4"


class VideoSetWriter:
    """Collects videos into a set folder; the index is rewritten atomically after every video.

    Args:
        folder: the set folder (created).
        fps: nominal frame rate of the videos.
        set_name: label stored in the index.
        meta: set-wide metadata (method, sampling settings, ...).
    """

    def __init__(self, folder: str | os.PathLike, fps: float, set_name: str | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        old = load_index(self.folder) if (self.folder / INDEX).exists() else {}
        self.index: dict[str, Any] = {"set": set_name or self.folder.name, "fps": fps, **(meta or {}),
                                      "videos": old.get("videos", {})}

    def has(self, name: str) -> bool:
        """True if ``name`` is already in the set (sampling skips finished videos)."""
        return name in self.index["videos"] and (self.folder / name).exists()

    def add(self, name: str, frames: np.ndarray | None, meta: dict[str, Any],
            image: np.ndarray | None = None) -> Path:
        """Write one video (uint8 ``[T,H,W,3]``; ``None`` if already written by a streaming writer)."""
        path = self.folder / name
        if frames is not None:
            write_mp4(path, frames, self.index["fps"])
        entry = dict(meta)
        if image is not None:
            from PIL import Image

            img_rel = f"images/{Path(name).stem.rsplit('-', 1)[0]}.png"
            (self.folder / "images").mkdir(exist_ok=True)
            Image.fromarray(image).save(self.folder / img_rel)
            entry["image"] = img_rel
        self.index["videos"][name] = entry
        atomic_write_json(self.folder / INDEX, self.index)
        return path


def load_index(folder: str | os.PathLike) -> dict[str, Any]:
    """Read a set's ``index.json``; a folder of bare mp4s gets a minimal index."""
    folder = Path(folder)
    if (folder / INDEX).exists():
        idx = read_json(folder / INDEX)
        if not isinstance(idx, dict) or not isinstance(idx.get("videos"), dict):
            raise ValueError(f"{folder / INDEX}: expected an object with a 'videos' mapping")
        return idx
    mp4s = sorted(p.name for p in folder.glob("*.mp4"))
    return {"set": folder.name, "fps": None, "videos": {m: {} for m in mp4s}}


def list_videos(folder: str | os.PathLike) -> list[Path]:
    """The mp4 files of a set, in index order; an empty set is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such video folder")
    names = list(load_index(folder)["videos"]) or sorted(p.name for p in folder.glob("*.mp4"))
    if not names:
        raise FileNotFoundError(f"{folder}: no videos (*.mp4) in this folder")
    return [folder / n for n in names]

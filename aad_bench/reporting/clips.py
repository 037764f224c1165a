"""Small looping clips of each arm, side by side: one animated GIF per (arm, video set).

For each arm the first run with videos gives the first video of each of its sets; the GIF keeps its frame rate,
at most ``MAX_FRAMES`` frames, and is scaled so the long side is about ``SIDE`` px (tiny toy videos are enlarged
with nearest-neighbour so pixels stay visible). GIFs play in every browser without a video codec.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aad_bench.reporting.runs import VALUE_STATUSES

SIDE = 128
MAX_FRAMES = 64
MAX_ARMS = 12


@dataclass
class Clip:
    """One arm's looping clip of one set."""

    arm: str
    title: str
    set: str
    video: str
    path: Path


def _gif(frames: np.ndarray, fps: float, path: Path) -> Path:
    from PIL import Image

    h, w = frames.shape[1:3]
    scale = SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.NEAREST if scale >= 1 else Image.BILINEAR
    images = [Image.fromarray(f).resize(size, resample) for f in frames[:MAX_FRAMES]]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.gif")
    duration = max(20, round(1000 / (fps or 8)))
    images[0].save(tmp, save_all=True, append_images=images[1:], duration=duration, loop=0)
    os.replace(tmp, path)
    return path


def _first_videos(run_dir: str) -> list[tuple[str, Path]]:
    """(set, first mp4) of every video set of a run folder."""
    root = Path(run_dir, "videos")
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        vids = sorted(d.glob("*.mp4"))
        if vids:
            out.append((d.name, vids[0]))
    return out


def arm_clips(df: pd.DataFrame, out_dir: Path, arms: list[str]) -> list[Clip]:
    """A GIF per (arm, set) from the arm's first run that has readable videos; arms in ``arms`` order."""
    from aad_bench.video.io import VideoReadError, read_video

    runs = df[df["status"].isin(VALUE_STATUSES)].drop_duplicates("run_dir")
    clips: list[Clip] = []
    for arm in arms[:MAX_ARMS]:
        sel = runs[runs["arm"] == arm]
        for run_dir, title in zip(sel["run_dir"], sel["title"] if "title" in sel else sel["arm"]):
            made = []
            for set_name, video in _first_videos(run_dir):
                try:
                    frames, fps = read_video(video, max_frames=MAX_FRAMES)
                except VideoReadError:
                    continue
                if frames.ndim != 4 or frames.shape[-1] != 3:  # a decoder quirk must not break the report
                    continue
                slug = "".join(ch if ch.isalnum() else "_" for ch in f"{arm}_{set_name}")
                path = _gif(frames, fps, out_dir / "clips" / f"{slug}.gif")
                made.append(Clip(arm, str(title), set_name, video.name, path))
            if made:
                clips += made
                break
    return clips

"""VBench's dynamic_degree on a pluggable flow backend, plus motion curves and freeze detection.

VBench rule (vbench/dynamic_degree.py): sample every ``max(1, round(fps/8))``-th frame; for each consecutive
pair take the mean of the top 5 % flow magnitudes; a video is dynamic when at least ``round(4·T/16)`` pairs
exceed ``6·min(H, W)/256`` pixels (T = sampled frames, full resolution).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aad_bench.evaluation.flow import get_flow, pair_motion
from aad_bench.evaluation.metrics import Metric, VideoItem, VideoScore, register
from aad_bench.video.io import read_video

TOP_FRAC = 0.05
SAMPLE_FPS = 8.0


def vbench_threshold(height: int, width: int) -> float:
    """Resolution-scaled flow threshold in pixels: ``6·min(H, W)/256``."""
    return 6.0 * min(height, width) / 256.0


def vbench_count(n_frames: int) -> int:
    """Pairs that must exceed the threshold: ``round(4·T/16)`` (Python's round, as VBench)."""
    return round(4 * (n_frames / 16.0))


def is_dynamic(pair_scores: np.ndarray, height: int, width: int, n_frames: int) -> bool:
    """VBench's ``check_move``: at least ``count`` pairs with score above the threshold."""
    thr = vbench_threshold(height, width)
    return int((np.asarray(pair_scores) > thr).sum()) >= vbench_count(n_frames)


def dynamic_degree_frames(frames: np.ndarray, flow: str = "dis") -> tuple[bool, np.ndarray]:
    """Dynamic verdict and per-pair top-5 % magnitudes of already-sampled frames ``[T, H, W, 3]``."""
    scores = pair_motion(frames, get_flow(flow), TOP_FRAC)
    return is_dynamic(scores, frames.shape[1], frames.shape[2], len(frames)), scores


def _dynamic_degree(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    frames, fps = read_video(item.path, fps=cfg.get("sample_fps", SAMPLE_FPS))
    if len(frames) < 2:
        raise ValueError(f"{item.path}: needs at least 2 frames after {SAMPLE_FPS:g} fps sampling")
    dyn, scores = dynamic_degree_frames(frames, backend)
    return VideoScore(
        float(dyn),
        curve=[round(float(s), 4) for s in scores],
        extra={"threshold": vbench_threshold(*frames.shape[1:3]), "count": vbench_count(len(frames))},
    )


register(
    Metric(
        "dynamic_degree",
        "1",
        "up",
        "flow",
        "dis",
        _dynamic_degree,
        curve_label="sampled pair",
        doc="share of videos VBench's rule calls dynamic (top-5% flow, 6·s/256 px, round(4T/16) pairs)",
    )
)


@dataclass
class MotionProfile:
    """Per-pair motion of a video at its native frame rate, with derived freeze information."""

    pair_scores: np.ndarray  # top-5 % flow magnitude of pair (t, t+1), length T-1
    threshold: float  # freeze threshold used, in pixels at this resolution
    freeze_frame: int | None  # first frame after which motion stays below threshold
    first_frame_mad: np.ndarray  # mean |frame_t - frame_0| per frame (uint8 levels)


def freeze_frame(pair_scores: np.ndarray, threshold: float, min_tail: int = 2) -> int | None:
    """First frame ``k`` such that every pair ``(t, t+1)`` with ``t >= k`` moves less than ``threshold``.

    ``None`` when the last ``min_tail`` pairs still move (a single still pair at the end is not a freeze).
    """
    moving = np.asarray(pair_scores) >= threshold
    n = len(moving)
    if n == 0:
        return None
    idx = np.flatnonzero(moving)
    k = (
        0 if idx.size == 0 else int(idx[-1]) + 1
    )  # pair idx[-1] = (t, t+1) moves, so frames from t+1 are still
    return k if n - k >= min(min_tail, n) else None


def motion_profile(frames: np.ndarray, flow: str = "dis", freeze_px: float = 0.5) -> MotionProfile:
    """Motion curve and freeze frame of ``frames``; ``freeze_px`` is at 256 px scaled like VBench's."""
    scores = pair_motion(frames, get_flow(flow), TOP_FRAC)
    thr = freeze_px * min(frames.shape[1:3]) / 256.0
    f0 = frames[0].astype(np.int16)
    mad = np.array([np.abs(f.astype(np.int16) - f0).mean() for f in frames])
    return MotionProfile(scores, thr, freeze_frame(scores, thr), mad)

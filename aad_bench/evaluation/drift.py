"""Drift over long rollouts: per-segment imaging quality, the paper's Drift Score and ΔDrift.

- Segments: ``n_segments`` equal parts of the video (default 5; a short tail joins the last segment), or
  ``segment_s`` seconds each when given and the fps is known.
- **drift_score** (paper): per video, the standard deviation (ddof=0) across segments of the per-segment mean
  imaging quality (0-100 points); set value = mean over videos. Lower is better.
- **delta_drift** (Rolling Forcing's ΔDrift_Quality): |IQ(first segment) - IQ(last segment)| in 0-100 points,
  mean over videos. Lower is better.
Per-segment means are stored as curves so they can be plotted.
"""

from __future__ import annotations

import numpy as np

from aad_bench.evaluation.metrics import Metric, VideoItem, VideoScore, register
from aad_bench.evaluation.quality import video_frame_quality
from aad_bench.video.io import video_info


def segment_bounds(
    n_frames: int, n_segments: int | None = None, seg_frames: int | None = None
) -> list[tuple]:
    """``[(start, stop), ...]`` frame ranges: fixed ``seg_frames`` or ``n_segments`` equal parts."""
    if seg_frames:
        starts = list(range(0, n_frames, seg_frames))
        if len(starts) > 1 and n_frames - starts[-1] < seg_frames / 2:  # short tail joins the last segment
            starts.pop()
        bounds = [(s, starts[i + 1] if i + 1 < len(starts) else n_frames) for i, s in enumerate(starts)]
    else:
        n = max(1, min(n_segments or 5, n_frames))
        edges = np.linspace(0, n_frames, n + 1).round().astype(int)
        bounds = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
    return bounds


def segment_means(values: np.ndarray, bounds: list[tuple]) -> np.ndarray:
    """Mean of ``values`` over each segment."""
    return np.array([float(np.mean(values[a:b])) for a, b in bounds])


def drift_score(seg: np.ndarray) -> float:
    """Std across segments (ddof=0) of per-segment quality."""
    return float(np.std(seg))


def delta_drift(seg: np.ndarray) -> float:
    """|first segment - last segment|."""
    return float(abs(seg[0] - seg[-1]))


def _segments(item: VideoItem, backend: str, cfg: dict) -> tuple[np.ndarray, list[tuple]]:
    q = video_frame_quality(item.path, backend, cfg.get("device", "cpu"))
    seg_frames = None
    if cfg.get("segment_s"):
        fps = video_info(item.path)["fps"]
        seg_frames = max(1, round(cfg["segment_s"] * fps))
    bounds = segment_bounds(len(q), cfg.get("n_segments", 5), seg_frames)
    if len(bounds) < 2:
        raise ValueError(f"{item.path}: drift needs at least 2 segments ({len(q)} frames)")
    return segment_means(q, bounds), bounds


def _drift(reducer):
    def fn(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
        seg, bounds = _segments(item, backend, cfg)
        return VideoScore(
            reducer(seg),
            curve=[round(float(v), 3) for v in seg],
            extra={"segment_starts": [a for a, _ in bounds]},
        )

    return fn


register(
    Metric(
        "drift_score",
        "1",
        "down",
        "quality",
        "sharpness",
        _drift(drift_score),
        curve_label="segment",
        doc="std across segments of per-segment imaging quality (0-100), mean over videos",
    )
)
register(
    Metric(
        "delta_drift",
        "1",
        "down",
        "quality",
        "sharpness",
        _drift(delta_drift),
        curve_label="segment",
        doc="|IQ(first segment) - IQ(last segment)| (0-100), mean over videos",
    )
)

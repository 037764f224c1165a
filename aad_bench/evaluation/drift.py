"""Drift over long rollouts: per-segment imaging quality, the paper's Drift Score and ΔDrift.

- Segments: ``n_segments`` equal parts of the video (default 5; a short tail joins the last segment), or
  ``segment_s`` seconds each when given and the fps is known.
- **drift_score** (paper): per video, the standard deviation (ddof=0) across segments of the per-segment mean
  imaging quality (0-100 points); set value = mean over videos. Lower is better.
- **delta_drift** (Rolling Forcing's ΔDrift_Quality): |IQ(first segment) - IQ(last segment)| in 0-100 points,
  mean over videos. Lower is better.

The per-frame quality comes from a drift backend:

- ``musiq``: MUSIQ per frame, the paper's definition (computed next to the default whenever its weights are
  present).
- ``sharpness-mc`` (default, weight-free): the sharpness proxy *tracked on the same content*. A no-reference
  score of a whole frame changes when the camera moves onto other content (a pan from a flag onto a face doubles
  it), and a standard deviation across segments counts that as drift. Instead, each frame is compared with the
  previous one on the pixels they share: DIS flow maps every pixel of frame t+1 to its source in frame t, the
  proxy's per-pixel maps (:func:`aad_bench.evaluation.quality.detail_maps`) of frame t are resampled there, and
  the ratio of the two scores on that region is the quality change of the same content. Chaining the ratios from
  frame 0 (whose absolute proxy score anchors the scale) gives a per-frame quality that stays flat under content
  change and falls when the same content loses detail or gains noise. A step whose shared region is under a
  quarter of the frame (a cut, or a flow failure) counts as no change and is reported as ``unmatched_steps``.
- ``sharpness``: the paper's formula on the raw proxy; content change reads as drift (kept for comparison).

Per-segment means are stored as curves so they can be plotted.
"""

from __future__ import annotations

import cv2
import numpy as np

from aad_bench.evaluation.flow import get_flow
from aad_bench.evaluation.metrics import Backend, Metric, VideoItem, VideoScore, backend_kind, register
from aad_bench.evaluation.quality import (
    MUSIQ_PROXY,
    detail_maps,
    limit_long_side,
    musiq_unavailable,
    score_from_maps,
    video_frame_quality,
)
from aad_bench.video.io import read_video, video_info

MIN_SHARED = 0.25  # shared region below this share of the frame: the step is not matched
REREF_SHARED = 0.5  # compare with a newer reference frame once less than this is shared
MAX_REF_PX = 8.0  # ... or once the content moved further than this from the reference (median flow)
MATCH_LEVELS = 12.0  # grey levels: a flow-warped pixel further than this from its target is not the same content
_MARGIN = 2  # px kept away from the border (Sobel / Immerkær windows)


def segment_bounds(n_frames: int, n_segments: int | None = None, seg_frames: int | None = None) -> list[tuple]:
    """``[(start, stop), ...]`` frame ranges: fixed ``seg_frames`` or ``n_segments`` equal parts."""
    if seg_frames:
        starts = list(range(0, n_frames, seg_frames))
        if len(starts) > 1 and n_frames - starts[-1] < seg_frames / 2:  # short tail joins the last segment
            starts.pop()
        return [(s, starts[i + 1] if i + 1 < len(starts) else n_frames) for i, s in enumerate(starts)]
    n = max(1, min(n_segments or 5, n_frames))
    edges = np.linspace(0, n_frames, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def segment_means(values: np.ndarray, bounds: list[tuple]) -> np.ndarray:
    """Mean of ``values`` over each segment."""
    return np.array([float(np.mean(values[a:b])) for a, b in bounds])


def drift_score(seg: np.ndarray) -> float:
    """Std across segments (ddof=0) of per-segment quality."""
    return float(np.std(seg))


def delta_drift(seg: np.ndarray) -> float:
    """|first segment - last segment|."""
    return float(abs(seg[0] - seg[-1]))


def _shared_ratio(
    fb, a: np.ndarray, b: np.ndarray, maps_a: tuple, maps_b: tuple, grid: tuple
) -> tuple[float, float, float]:
    """(share of b's pixels whose content is found in a, proxy ratio b / a on them, median displacement px).

    A pixel is shared when its flow source lies inside ``a`` and the flow-warped ``a`` matches ``b`` there up to
    noise (a wrong flow vector must not compare different content).
    """
    gx, gy = grid
    h, w = b.shape[:2]
    f = fb(b, a)  # for every pixel of b: where its content was in a
    mx, my = gx + f[..., 0], gy + f[..., 1]
    inside = (mx >= _MARGIN) & (mx <= w - 1 - _MARGIN) & (my >= _MARGIN) & (my <= h - 1 - _MARGIN)
    ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (a, b))
    residual = cv2.blur(np.abs(cv2.remap(ga, mx, my, cv2.INTER_LINEAR) - gb), (3, 3))
    shared = inside & (residual < MATCH_LEVELS)
    moved = float(np.median(np.hypot(f[..., 0], f[..., 1])))
    if shared.mean() < MIN_SHARED:
        return float(shared.mean()), 1.0, moved
    # nearest neighbour: interpolating the maps would average noise and bias the comparison
    before = score_from_maps(*(cv2.remap(m, mx, my, cv2.INTER_NEAREST)[shared] for m in maps_a))
    after = score_from_maps(*(m[shared] for m in maps_b))
    return float(shared.mean()), (after / before if before > 1e-6 else 1.0), moved


def tracked_quality(frames: np.ndarray, flow: str = "dis") -> tuple[np.ndarray, int]:
    """Per-frame proxy quality tracked on shared content; returns (curve, unmatched steps).

    Each frame is compared with a reference frame (frame 0 at first) on the pixels they share; the reference
    moves to the previous frame once the content has moved more than ``MAX_REF_PX`` (where flow stays
    accurate) or under half of the frame is shared, so a slow or still clip is compared with its first frame
    directly and errors do not add up frame by frame.
    """
    small = np.stack([limit_long_side(f) for f in frames])
    h, w = small.shape[1:3]
    grid = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    fb = get_flow(flow)
    maps = [detail_maps(f) for f in small]
    curve, ref, unmatched = [score_from_maps(*maps[0])], 0, 0
    for t in range(1, len(small)):
        share, ratio, moved = _shared_ratio(fb, small[ref], small[t], maps[ref], maps[t], grid)
        if (share < REREF_SHARED or moved > MAX_REF_PX) and ref < t - 1:
            ref = t - 1
            share, ratio, _ = _shared_ratio(fb, small[ref], small[t], maps[ref], maps[t], grid)
        if share < MIN_SHARED:  # a cut or a flow failure: no comparison possible, start again from here
            unmatched += 1
            curve.append(curve[-1])
            ref = t
        else:
            curve.append(curve[ref] * ratio)
    return np.array(curve), unmatched


_TRACKED: dict[tuple, tuple[np.ndarray, int]] = {}


def frame_quality(item: VideoItem, backend: str, cfg: dict) -> tuple[np.ndarray, int]:
    """Per-frame quality for drift backend ``backend`` and the number of unmatched steps (memoised)."""
    if backend != "sharpness-mc":
        return video_frame_quality(item.path, backend, cfg.get("device")), 0
    key = (str(item.path), item.path.stat().st_mtime_ns)
    if key not in _TRACKED:
        if len(_TRACKED) > 64:
            _TRACKED.clear()
        _TRACKED[key] = tracked_quality(read_video(item.path)[0])
    return _TRACKED[key]


def _segments(item: VideoItem, backend: str, cfg: dict) -> tuple[np.ndarray, list[tuple], int]:
    q, unmatched = frame_quality(item, backend, cfg)
    seg_frames = None
    if cfg.get("segment_s"):
        fps = video_info(item.path)["fps"]
        seg_frames = max(1, round(cfg["segment_s"] * fps))
    bounds = segment_bounds(len(q), cfg.get("n_segments", 5), seg_frames)
    if len(bounds) < 2:
        raise ValueError(f"{item.path}: drift needs at least 2 segments ({len(q)} frames)")
    return segment_means(q, bounds), bounds, unmatched


def _drift(reducer):
    def fn(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
        seg, bounds, unmatched = _segments(item, backend, cfg)
        extra = {"segment_starts": [a for a, _ in bounds]}
        if unmatched:
            extra["unmatched_steps"] = unmatched
        return VideoScore(reducer(seg), curve=[round(float(v), 3) for v in seg], extra=extra)

    return fn


DRIFT = backend_kind("drift", "drift backend")
DRIFT.register(
    "sharpness-mc",
    Backend(
        "sharpness-mc",
        lambda **kw: None,
        proxy_for=f"{MUSIQ_PROXY}, tracked on the same content",
    ),
)
DRIFT.register("sharpness", Backend("sharpness", lambda **kw: None, proxy_for=f"{MUSIQ_PROXY}, content-sensitive"))
DRIFT.register("musiq", Backend("musiq", lambda **kw: None, available=musiq_unavailable))
_UNIT = "per-segment imaging quality (0-100)"

for _name, _fn, _doc in (
    ("drift_score", drift_score, "std across segments of per-segment imaging quality (0-100), mean over videos"),
    ("delta_drift", delta_drift, "|IQ(first segment) - IQ(last segment)| (0-100), mean over videos"),
):
    register(
        Metric(
            _name,
            "2",
            "down",
            "drift",
            "sharpness-mc",
            _drift(_fn),
            curve_label="segment",
            curve_unit=_UNIT,
            also=("musiq",),
            details=True,
            doc=_doc,
        )
    )

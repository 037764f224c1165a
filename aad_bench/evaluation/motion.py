"""VBench's dynamic_degree on a pluggable flow backend, and the noise-robust motion statistic behind freezes.

VBench rule (vbench/dynamic_degree.py): sample every ``max(1, round(fps/8))``-th frame; for each consecutive
pair take the mean of the top 5 % flow magnitudes; a video is dynamic when at least ``round(4·T/16)`` pairs
exceed ``6·min(H, W)/256`` pixels (T = sampled frames, full resolution). Fewer than 3 sampled frames give no
verdict (the rule would need 0 or 1 moving pairs).

**Visible motion** (used for freezes, fading and collapse; not part of VBench): the same top-5 % flow statistic
over the pixels whose change the flow explains (:func:`visible_motion`). On flat or low-texture content, grain
makes the flow of a still pair point anywhere (measured on still, grainy x264 clips: top-5 % DIS magnitude up to
0.8 px at 32 px and 8-16 px at 256-480 px, above VBench's threshold), but warping along such a flow does not
explain the frame difference. Freeze detection median-filters the curve over 3 pairs; measured (grain std 2 and
8, x264 crf 18 and 23, toy and photo-like content; ``benchmarks/metrics.py --calibration``), still clips then
read ≤ 0.34 px at 128-480 px and 0 at 32 px (one case, flat content with grain 8 at crf 23 and 64 px, reads
0.65), while 1 px/frame pans read ≥ 0.58 px at every size: :data:`FREEZE_PX` = 0.4 px/frame sits between.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import median_filter

from aad_bench.evaluation.flow import get_flow, magnitude, top_fraction_mean
from aad_bench.evaluation.metrics import Metric, VideoItem, VideoScore, register
from aad_bench.evaluation.quality import noise_sigma
from aad_bench.video.io import read_video

TOP_FRAC = 0.05
SAMPLE_FPS = 8.0
MIN_SAMPLED = 3  # VBench's count rule needs round(4·T/16) ≥ 1 moving pair to mean anything
FREEZE_PX = 0.4  # visible motion (px/frame, native resolution) below which a pair is still
MIN_TAIL = 2  # still pairs at the end needed to call it a freeze (one still pair is not)


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


def pair_flows(frames: np.ndarray, flow: str = "dis") -> list[np.ndarray]:
    """Flow of every consecutive pair (computed once per video and shared by every statistic)."""
    fb = get_flow(flow)
    return [fb(a, b) for a, b in zip(frames[:-1], frames[1:])]


def top_motion(flows: list[np.ndarray]) -> np.ndarray:
    """VBench's per-pair statistic: mean of the top 5 % flow magnitudes."""
    return np.array([top_fraction_mean(magnitude(f), TOP_FRAC) for f in flows], dtype=np.float64)


def clip_noise(frames: np.ndarray) -> float:
    """Noise std of a clip (grey levels): the median over frames of :func:`noise_sigma` (flattest patches)."""
    return float(np.median([noise_sigma(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)) for f in frames]))


def visible_motion(frames: np.ndarray, flows: list[np.ndarray], sigma: float) -> np.ndarray:
    """Per pair: top-5 % flow magnitude over the pixels whose change the flow explains (module docstring).

    A pixel counts when its 5×5 mean absolute frame difference exceeds noise (``2·sigma + 1`` grey levels) and
    warping along the flow removes more than ``1 + sigma`` levels of it: grain and codec flicker change pixels,
    but no flow explains that change.
    """
    h, w = frames.shape[1:3]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames]
    out = []
    for a, b, f in zip(grey[:-1], grey[1:], flows):
        warped = cv2.remap(b, gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        change = cv2.blur(np.abs(b - a), (5, 5))
        explained = change - cv2.blur(np.abs(warped - a), (5, 5))
        mag = magnitude(f)
        mag[(change < 2.0 * sigma + 1.0) | (explained < 1.0 + sigma)] = 0.0
        out.append(top_fraction_mean(mag, TOP_FRAC))
    return np.array(out, dtype=np.float64)


def dynamic_degree_frames(frames: np.ndarray, flow: str = "dis") -> tuple[bool, np.ndarray]:
    """Dynamic verdict and per-pair top-5 % magnitudes of already-sampled frames ``[T, H, W, 3]``."""
    if len(frames) < MIN_SAMPLED:
        raise ValueError(f"dynamic_degree needs at least {MIN_SAMPLED} sampled frames, got {len(frames)}")
    scores = top_motion(pair_flows(frames, flow))
    return is_dynamic(scores, frames.shape[1], frames.shape[2], len(frames)), scores


def _dynamic_degree(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    fps = cfg.get("sample_fps", SAMPLE_FPS)
    frames, _ = read_video(item.path, fps=fps)
    if len(frames) < MIN_SAMPLED:
        raise ValueError(
            f"{item.path}: dynamic_degree needs at least {MIN_SAMPLED} frames after {fps:g} fps sampling, "
            f"got {len(frames)} (no verdict)"
        )
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
        curve_unit="top-5% flow magnitude (px)",
        doc="share of videos VBench's rule calls dynamic (top-5% flow, 6·s/256 px, round(4T/16) pairs)",
    )
)


def freeze_frame(pair_scores: np.ndarray, threshold: float = FREEZE_PX, min_tail: int = MIN_TAIL) -> int | None:
    """The first still frame: the first ``k`` such that every pair ``(t, t+1)`` with ``t >= k`` is still.

    Frames ``k, k+1, ...`` then show the same content (frame ``k`` itself is where motion stopped; a video
    that never moves has ``k = 0``). ``None`` when fewer than ``min_tail`` pairs at the end are still. The
    curve is median-filtered over 3 pairs first: one pair that codec noise lifts above the threshold does not
    break a freeze, while real motion lasts longer than one pair.
    """
    scores = np.asarray(pair_scores, dtype=np.float64)
    if len(scores) >= 3:
        scores = median_filter(scores, size=3, mode="mirror")
    moving = scores >= threshold
    n = len(moving)
    if n == 0:
        return None
    idx = np.flatnonzero(moving)
    k = 0 if idx.size == 0 else int(idx[-1]) + 1  # pair idx[-1] = (t, t+1) moves, so frames from t+1 are still
    return k if n - k >= min(min_tail, n) else None


@dataclass
class MotionProfile:
    """Per-pair motion of a video at its native frame rate, with derived freeze information.

    Attributes:
        pair_scores: visible motion of pair (t, t+1), px (length T-1).
        raw_scores: VBench's unmasked top-5 % flow of the same pairs, px.
        sigma: the clip's noise std (grey levels).
        freeze_frame: the first still frame (:func:`freeze_frame`; 0 for a copy of the first frame).
        copy_of_first: every frame equals frame 0 up to noise.
        first_frame_mad: mean |frame_t - frame_0| per frame (grey levels).
    """

    pair_scores: np.ndarray
    raw_scores: np.ndarray
    sigma: float
    freeze_frame: int | None
    copy_of_first: bool
    first_frame_mad: np.ndarray


def copy_tolerance(sigma: float) -> float:
    """Mean |frame_t - frame_0| (grey levels) that noise alone explains: 1.5 × E|n_t - n_0| + 1 for codec."""
    return 1.5 * 1.128 * sigma + 1.0


def motion_profile(
    frames: np.ndarray, flows: list[np.ndarray] | None = None, flow: str = "dis", freeze_px: float = FREEZE_PX
) -> MotionProfile:
    """Motion curve, freeze frame and copy detection of ``frames`` (flows computed here unless given)."""
    flows = pair_flows(frames, flow) if flows is None else flows
    sigma = clip_noise(frames)
    visible = visible_motion(frames, flows, sigma)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames]
    mad = np.array([float(np.abs(g - grey[0]).mean()) for g in grey])
    copy = bool(mad.max() <= copy_tolerance(sigma))
    frozen = 0 if copy else freeze_frame(visible, freeze_px)
    return MotionProfile(visible, top_motion(flows), sigma, frozen, copy, mad)

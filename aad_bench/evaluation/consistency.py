"""VBench's temporal_flickering, motion_smoothness, subject/background consistency and i2v_subject/background.

Formulas (VBench's, see docs/evaluation.md):

- temporal_flickering = (255 - mean_t mean|f_t - f_{t+1}|) / 255, all frames; mean over videos.
- motion_smoothness: interpolate the even frames (0,2,4,…) at their midpoints, compare with the real odd
  frames; (255 - mean abs diff) / 255. VBench uses AMT-S; here the interpolator is pluggable
  (:mod:`aad_bench.evaluation.interp`).
- subject/background consistency: s_i = ½[max(0, cos(f_{i-1}, f_i)) + max(0, cos(f_0, f_i))], i ≥ 1; the set
  aggregate is frame-weighted (Σ s_i over all videos / Σ (T-1)).
- i2v_subject/background: c_i = max(0, cos(f_img, f_i)) (all frames), s_i = max(0, cos(f_{i-1}, f_i));
  video = 0.4·max(c) + 0.3·mean(s) + 0.3·min(s); mean over videos.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from aad_bench.evaluation.features import get_features
from aad_bench.evaluation.interp import INTERP
from aad_bench.evaluation.metrics import Metric, VideoItem, VideoScore, register
from aad_bench.video.io import read_video

I2V_WEIGHTS = (0.4, 0.3, 0.3)  # max conformity, mean consecutive, min consecutive (VBench-I2V HEAD)


def flicker_mae(frames: np.ndarray) -> float:
    """Mean over consecutive pairs of the mean absolute pixel difference (uint8 levels)."""
    return float(np.mean([cv2.absdiff(a, b).mean() for a, b in zip(frames[:-1], frames[1:])]))


def flicker_score(frames: np.ndarray) -> float:
    """VBench temporal_flickering of one video: ``(255 - MAE) / 255``."""
    return (255.0 - flicker_mae(frames)) / 255.0


def consistency_terms(feats: np.ndarray) -> np.ndarray:
    """VBench's per-frame s_i (i ≥ 1) from L2-normalised features ``[T, D]``."""
    prev = np.maximum(0.0, np.sum(feats[:-1] * feats[1:], axis=1))
    first = np.maximum(0.0, feats[1:] @ feats[0])
    return 0.5 * (prev + first)


def i2v_video_score(img_feat: np.ndarray, feats: np.ndarray, weights: tuple = I2V_WEIGHTS) -> float:
    """VBench-I2V per-video score from the image feature ``[D]`` and frame features ``[T, D]``."""
    conform = np.maximum(0.0, feats @ img_feat)
    consec = np.maximum(0.0, np.sum(feats[:-1] * feats[1:], axis=1))
    return float(weights[0] * conform.max() + weights[1] * consec.mean() + weights[2] * consec.min())


def smoothness_score(frames: np.ndarray, interp: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> float:
    """VBench motion_smoothness of one video with interpolator ``interp``."""
    evens, odds = frames[0::2], frames[1::2]
    n = min(len(evens) - 1, len(odds))
    if n < 1:
        raise ValueError("motion_smoothness needs at least 3 frames")
    d = np.mean([cv2.absdiff(interp(evens[i], evens[i + 1]), odds[i]).mean() for i in range(n)])
    return float((255.0 - d) / 255.0)


# -- metric functions --------------------------------------------------------------------------------------
def _frames(item: VideoItem, at_least: int, metric: str) -> np.ndarray:
    frames, _ = read_video(item.path)
    if len(frames) < at_least:
        raise ValueError(f"{item.path}: {metric} needs at least {at_least} frames, got {len(frames)}")
    return frames


def _flicker(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    return VideoScore(flicker_score(_frames(item, 2, "temporal_flickering")))


def _smoothness(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    frames = _frames(item, 3, "motion_smoothness")
    return VideoScore(smoothness_score(frames, INTERP.get(backend).build()))


def _consistency(mode: str) -> Callable[[VideoItem, str, dict], VideoScore]:
    def fn(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
        frames = _frames(item, 2, f"{mode}_consistency")
        s = consistency_terms(get_features(backend, cfg.get("device")).embed(frames, mode))
        return VideoScore(float(s.mean()), weight=float(len(s)), curve=[round(float(v), 5) for v in s])

    return fn


def _i2v(mode: str) -> Callable[[VideoItem, str, dict], VideoScore]:
    def fn(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
        from PIL import Image

        image = np.asarray(Image.open(item.image_path()).convert("RGB"))
        frames = _frames(item, 2, mode)
        fe = get_features(backend, cfg.get("device"))
        return VideoScore(i2v_video_score(fe.embed(image[None], mode)[0], fe.embed(frames, mode)))

    return fn


register(
    Metric(
        "temporal_flickering",
        "1",
        "up",
        None,
        "native",
        _flicker,
        doc="(255 - mean abs diff of consecutive frames)/255",
    )
)
register(
    Metric(
        "motion_smoothness",
        "1",
        "up",
        "interp",
        "dis",
        _smoothness,
        doc="(255 - mean abs diff of interpolated vs real odd frames)/255",
    )
)
register(
    Metric(
        "subject_consistency",
        "1",
        "up",
        "features",
        "pixel",
        _consistency("subject"),
        curve_label="frame",
        curve_unit="s_i (VBench per-frame consistency, 0-1)",
        doc="VBench s_i on DINO-style preprocessing, frame-weighted",
    )
)
register(
    Metric(
        "background_consistency",
        "1",
        "up",
        "features",
        "pixel",
        _consistency("background"),
        curve_label="frame",
        curve_unit="s_i (VBench per-frame consistency, 0-1)",
        doc="VBench s_i on CLIP-style preprocessing, frame-weighted",
    )
)
register(
    Metric(
        "i2v_subject",
        "1",
        "up",
        "features",
        "pixel",
        _i2v("i2v_subject"),
        needs="image",
        doc="0.4·max c + 0.3·mean s + 0.3·min s (DINO preprocessing)",
    )
)
register(
    Metric(
        "i2v_background",
        "1",
        "up",
        "features",
        "pixel",
        _i2v("i2v_background"),
        needs="image",
        doc="0.4·max c + 0.3·mean s + 0.3·min s (DreamSim preprocessing)",
    )
)

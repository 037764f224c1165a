"""Sprite tracking from pixels alone: the motion of a video measured without ground truth.

Background = per-pixel temporal median; foreground = pixels far from it; blobs = connected components;
consecutive blobs matched by the Hungarian algorithm on centroid distance. The same estimator is applied to data
and to generated videos, so their ratio is fair even where the estimator is biased.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment


def blob_centroids(frame: np.ndarray, background: np.ndarray, thr: float, min_area: int) -> np.ndarray:
    """Centroids ``[n, 2]`` (x, y) of foreground blobs in one float frame ``[H,W,3]``."""
    fg = np.abs(frame - background).sum(-1) > thr
    labels, n = ndimage.label(fg)
    if n == 0:
        return np.zeros((0, 2))
    idx = np.arange(1, n + 1)
    areas = ndimage.sum(fg, labels, idx)
    cents = np.array(ndimage.center_of_mass(fg, labels, idx))[:, ::-1]  # (row, col) -> (x, y)
    return cents[areas >= min_area] + 0.5


def track_speeds(frames: np.ndarray, thr: float = 0.25, min_area: int = 3, max_jump: float = 6.0) -> np.ndarray:
    """Mean matched-blob displacement (px/frame) for each consecutive frame pair.

    Args:
        frames: uint8 ``[T,H,W,3]``.
        thr: foreground threshold on the summed absolute RGB difference to the background (0..3 scale).
        min_area: blobs smaller than this (pixels) are noise.
        max_jump: matches further apart than this are not the same sprite.

    Returns:
        ``[T-1]`` speeds; a pair with no matched blob counts as 0 (nothing visibly moves).
    """
    f = frames.astype(np.float32) / 255.0
    bg = np.median(f, axis=0)
    cents = [blob_centroids(fr, bg, thr, min_area) for fr in f]
    speeds = np.zeros(len(f) - 1)
    for t in range(len(f) - 1):
        a, b = cents[t], cents[t + 1]
        if len(a) == 0 or len(b) == 0:
            continue
        d = np.linalg.norm(a[:, None] - b[None], axis=-1)
        rows, cols = linear_sum_assignment(d)
        ok = d[rows, cols] <= max_jump
        if ok.any():
            speeds[t] = d[rows, cols][ok].mean()
    return speeds


def mean_speed(frames: np.ndarray, **kw: float) -> float:
    """Mean tracked speed of a clip (px/frame); ignores the conditioning frame's pair only if asked upstream."""
    return float(track_speeds(frames, **kw).mean())

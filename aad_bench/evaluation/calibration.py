"""Synthetic pans of known displacement, used to calibrate flow backends against VBench's threshold.

``calibrate(backend)`` measures each backend's top-5 % magnitude on textured pans whose true displacement is
known exactly, so the error of DIS (or RAFT) relative to the truth can be reported next to the 6·s/256 rule.
"""

from __future__ import annotations

import cv2
import numpy as np

from aad_bench.evaluation.flow import get_flow, magnitude, top_fraction_mean


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A colour texture with coarse blobs and fine grain (trackable everywhere), uint8 ``[h, w, 3]``."""
    r = np.random.default_rng(seed)
    base = cv2.resize(
        r.random((h // 16 + 1, w // 16 + 1, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    fine = cv2.GaussianBlur(r.random((h, w, 3)).astype(np.float32), (0, 0), 2.0)
    return np.clip((0.5 * base + 2.5 * (fine - 0.5) + 0.25) * 255, 0, 255).astype(np.uint8)


def pan_video(
    speed: float,
    n_frames: int = 16,
    size: tuple[int, int] = (256, 256),
    angle_deg: float = 37.0,
    freeze_at: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A camera pan of ``speed`` px/frame (sub-pixel exact, cubic resampling), optionally frozen from a frame.

    With ``freeze_at=k`` frames ``k, k+1, ...`` all equal frame ``k`` (motion stops after frame ``k``).
    """
    h, w = size
    margin = int(abs(speed) * n_frames) + 8
    tex = texture(h + 2 * margin, w + 2 * margin, seed)
    dx, dy = speed * np.cos(np.radians(angle_deg)), speed * np.sin(np.radians(angle_deg))
    frames = []
    for t in range(n_frames):
        tt = min(t, freeze_at) if freeze_at is not None else t
        m = np.float32([[1, 0, -margin - dx * tt], [0, 1, -margin - dy * tt]])
        frames.append(cv2.warpAffine(tex, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


def calibrate(
    backend: str = "dis",
    speeds: tuple[float, ...] = (1, 2, 4, 5, 6, 7, 8, 12, 16),
    size: tuple[int, int] = (256, 256),
) -> list[dict]:
    """Measured top-5 % magnitude vs true displacement (speeds are at 256 px and scaled to ``size``)."""
    flow = get_flow(backend)
    scale = min(size) / 256.0
    rows = []
    for s in speeds:
        v = pan_video(s * scale, n_frames=4, size=size, seed=1)
        m = float(np.mean([top_fraction_mean(magnitude(flow(a, b))) for a, b in zip(v[:-1], v[1:])]))
        rows.append({"true_px": s * scale, "measured_px": m, "rel_error": (m - s * scale) / (s * scale)})
    return rows

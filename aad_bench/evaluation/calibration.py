"""Synthetic clips of known ground truth, used to calibrate and test the native metrics.

``calibrate(backend)`` measures each backend's top-5 % magnitude on textured pans whose true displacement is
known exactly, so the error of DIS (or RAFT) relative to the truth can be reported next to the 6·s/256 rule.

``photo(h, w, seed)`` is a photo-like image: 1/f ("pink") colour noise — the power spectrum of natural images —
under sharp-edged discs, so it has detail at every scale, flat-ish regions and hard edges. ``pan`` films it
with a sub-pixel-exact camera pan, optional blur and sensor grain per frame (quality decay, motion decay,
static clips), which is how the drift and collapse measures were checked (docs/evaluation.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from aad_bench.evaluation.flow import get_flow, magnitude, top_fraction_mean


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A colour texture with coarse blobs and fine grain (trackable everywhere), uint8 ``[h, w, 3]``."""
    r = np.random.default_rng(seed)
    base = cv2.resize(r.random((h // 16 + 1, w // 16 + 1, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
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


def pink(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-std colour noise with a 1/f amplitude spectrum, ``[h, w, 3]`` float."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    spec = (rng.normal(size=(3, h, w // 2 + 1)) + 1j * rng.normal(size=(3, h, w // 2 + 1))) / f
    spec[:, 0, 0] = 0
    img = np.fft.irfft2(spec, s=(h, w)).transpose(1, 2, 0)
    return (img - img.mean()) / img.std()


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like uint8 RGB image (pink noise under sharp-edged discs)."""
    rng = np.random.default_rng(seed)
    img = 0.5 + 0.12 * pink(h, w, rng)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(h * w // 3000 + 3):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(4, max(6, min(h, w) / 6))
        m = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[m] = img[m] * 0.3 + rng.uniform(0, 1, 3) * 0.7
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def pan(
    canvas: np.ndarray,
    offsets: np.ndarray,
    size: tuple[int, int],
    blur: np.ndarray | None = None,
    grain: float | np.ndarray = 1.5,
    seed: int = 0,
) -> np.ndarray:
    """Frames of a horizontal pan: frame t shows ``canvas`` from x = ``offsets[t]`` (sub-pixel, cubic).

    ``blur[t]`` (Gaussian sigma, px) and ``grain[t]`` (noise std, grey levels) degrade frame t.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    t_len = len(offsets)
    grain = np.broadcast_to(np.asarray(grain, np.float64), (t_len,))
    out = []
    for t, x in enumerate(offsets):
        m = np.float32([[1, 0, -x], [0, 1, 0]])
        f = cv2.warpAffine(canvas, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        f = f.astype(np.float32)
        if blur is not None and blur[t] > 0:
            f = cv2.GaussianBlur(f, (0, 0), float(blur[t]))
        out.append(np.clip(f + rng.normal(0, grain[t], f.shape), 0, 255).astype(np.uint8))
    return np.stack(out)


def motion_decay(n: int, speed: float, still_from: int) -> np.ndarray:
    """Pan offsets whose speed fades to 0 at frame ``K = still_from``, the first still frame.

    Pair (t, t+1) moves ``speed·sqrt(1 - t/K)``; frames K, K+1, ... are identical up to grain.
    """
    v = [speed * np.sqrt(max(0.0, 1 - t / still_from)) for t in range(n - 1)]
    return np.concatenate([[0.0], np.cumsum(v)])

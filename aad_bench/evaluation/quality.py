"""imaging_quality: MUSIQ (pyiqa, SPAQ weights from local disk) or a weight-free sharpness/noise score.

Both give a per-frame score on VBench's 0-100 scale; the per-video value is the frame mean and the result JSON
stores it divided by 100 (VBench's aggregate scale). Frames are first resized so the long side is ≤ 512
(VBench's default ``longer`` mode).

Weight-free fallback ``sharpness`` (documented in docs/evaluation.md)::

    S     = mean Sobel gradient magnitude of the 3×3-median-filtered grey frame (0-255 levels)
    sigma = robust noise std: median|I * L| / (0.6745·6), L = Immerkær's 3×3 Laplacian-difference kernel
    score = 100 · S / (S + 8) · exp(-sigma / 8)

Blur lowers ``S``; noise raises ``sigma`` (the median filter keeps ``S`` from rewarding noise). It is a
monotone proxy, not MUSIQ: its numbers live in their own column (backend ``sharpness``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from aad_bench.evaluation.features import vbench_cache
from aad_bench.evaluation.metrics import Metric, VideoItem, VideoScore, register
from aad_bench.registry import Registry
from aad_bench.video.io import read_video

_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


class QualityBackend(Protocol):
    name: str

    def frame_scores(self, frames: np.ndarray) -> np.ndarray: ...


def limit_long_side(frame: np.ndarray, n: int = 512) -> np.ndarray:
    """Downscale so that the long side is at most ``n`` (VBench ``longer`` preprocessing)."""
    h, w = frame.shape[:2]
    if max(h, w) <= n:
        return frame
    s = n / max(h, w)
    return cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def noise_sigma(grey: np.ndarray) -> float:
    """Robust noise standard deviation (uint8 levels) from the median of Immerkær's high-pass response."""
    r = cv2.filter2D(grey.astype(np.float32), -1, _IMMERKAER, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.median(np.abs(r)) / (0.6745 * 6.0))


def sharpness(grey: np.ndarray) -> float:
    """Mean Sobel gradient magnitude of the median-filtered frame (edges survive, pixel noise does not)."""
    g = cv2.medianBlur(grey, 3).astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return float(np.sqrt(gx * gx + gy * gy).mean())


class SharpnessQuality:
    """The weight-free 0-100 proxy described in the module docstring."""

    name = "sharpness"

    def frame_score(self, frame: np.ndarray) -> float:
        grey = cv2.cvtColor(limit_long_side(frame), cv2.COLOR_RGB2GRAY)
        s = sharpness(grey)
        return 100.0 * s / (s + 8.0) * float(np.exp(-noise_sigma(grey) / 8.0))

    def frame_scores(self, frames: np.ndarray) -> np.ndarray:
        return np.array([self.frame_score(f) for f in frames])


class MusiqQuality:
    """pyiqa's MUSIQ with VBench's SPAQ checkpoint from local disk (``AAD_MUSIQ_WEIGHTS`` / VBench cache)."""

    name = "musiq"

    def __init__(self, device: str = "cpu") -> None:
        path = Path(
            os.environ.get(
                "AAD_MUSIQ_WEIGHTS", vbench_cache() / "pyiqa_model" / "musiq_spaq_ckpt-358bb6af.pth"
            )
        )
        if not path.is_file():
            raise FileNotFoundError(
                f"MUSIQ weights not found at {path}; set AAD_MUSIQ_WEIGHTS (nothing is "
                "downloaded) or use --quality sharpness (weight-free)"
            )
        try:
            from pyiqa.archs.musiq_arch import MUSIQ
        except ImportError as e:
            raise ImportError(f"MUSIQ needs pyiqa (pip install 'aad_bench[weights]'): {e}") from None
        self.model = MUSIQ(pretrained_model_path=str(path)).eval().to(device)
        self.device = device

    def frame_scores(self, frames: np.ndarray) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for f in frames:
                x = torch.from_numpy(limit_long_side(f).transpose(2, 0, 1).copy()).float()[None] / 255.0
                out.append(float(self.model(x.to(self.device)).item()))
        return np.array(out)


QUALITY: Registry = Registry("quality backend")
QUALITY.register("sharpness", lambda **kw: SharpnessQuality())
QUALITY.register("musiq", lambda device="cpu", **kw: MusiqQuality(device))
_CACHE: dict[str, QualityBackend] = {}
_FRAME_CACHE: dict[tuple, np.ndarray] = {}


def get_quality(name: str = "sharpness", device: str = "cpu") -> QualityBackend:
    """Build (once per process) the quality backend ``name``."""
    if name not in _CACHE:
        _CACHE[name] = QUALITY.get(name)(device=device)
    return _CACHE[name]


def video_frame_quality(path: Path, backend: str, device: str = "cpu") -> np.ndarray:
    """Per-frame 0-100 quality of a video, memoised per (file, mtime, backend): drift reuses it."""
    key = (str(path), path.stat().st_mtime_ns, backend)
    if key not in _FRAME_CACHE:
        if len(_FRAME_CACHE) > 256:
            _FRAME_CACHE.clear()
        frames, _ = read_video(path)
        _FRAME_CACHE[key] = get_quality(backend, device).frame_scores(frames)
    return _FRAME_CACHE[key]


def _imaging_quality(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    q = video_frame_quality(item.path, backend, cfg.get("device", "cpu"))
    return VideoScore(float(q.mean()) / 100.0, curve=[round(float(v), 3) for v in q])


register(
    Metric(
        "imaging_quality",
        "1",
        "up",
        "quality",
        "sharpness",
        _imaging_quality,
        curve_label="frame",
        doc="mean per-frame quality / 100 (MUSIQ in VBench; weight-free sharpness/noise proxy)",
    )
)

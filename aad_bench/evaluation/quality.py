"""imaging_quality: MUSIQ (pyiqa, SPAQ weights from local disk) or a weight-free sharpness/noise proxy.

Both give a per-frame score on VBench's 0-100 scale; the per-video value is the frame mean and the result JSON
stores it divided by 100 (VBench's aggregate scale). Frames are first resized so the long side is ≤ 512
(VBench's default ``longer`` mode).

Weight-free proxy ``sharpness`` (a stand-in for MUSIQ, never mixed with it; docs/evaluation.md)::

    sigma = noise std from the flattest patches: 10th percentile over the frame of the 8×8 local mean of
            |Immerkær's 3×3 Laplacian-difference response|, scaled so pure Gaussian noise reads its own std
    S     = sqrt(max(mean(gx² + gy²) - 0.375·sigma², 0)): the RMS Sobel gradient (gx, gy = Sobel / 8) with
            the share that noise of std sigma adds (0.375·sigma²) taken out, i.e. the detail of the frame
    score = 100 · S / (S + 8) · exp(-sigma / 8)

Blur lowers ``S`` and noise raises ``sigma``; because noise is read in the flattest patches, fine texture is not
mistaken for noise (which made the earlier form of this proxy *rise* under mild blur). The per-pixel maps behind
``S`` and ``sigma`` (:func:`detail_maps`) are what the motion-compensated drift compares across frames.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from aad_bench.evaluation.device import build_on_device
from aad_bench.evaluation.features import vbench_cache
from aad_bench.evaluation.metrics import Backend, Metric, VideoItem, VideoScore, backend_kind, register
from aad_bench.video.io import read_video

_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
# sqrt(pi/2)/6 turns mean |response| into sigma (Immerkær); 1.27 undoes the 10th-percentile bias (measured on
# Gaussian noise, 128-512 px: the percentile reads 0.79 of the mean)
_SIGMA_SCALE = float(np.sqrt(np.pi / 2) / 6 * 1.27)
NOISE_GRADIENT_ENERGY = 0.375  # E[gx² + gy²] of unit i.i.d. noise with Sobel/8 kernels: 2 · 12/64
MUSIQ_PROXY = "MUSIQ (VBench's imaging quality)"


class QualityBackend(Protocol):
    """Per-frame quality on VBench's 0-100 scale."""

    name: str

    def frame_scores(self, frames: np.ndarray) -> np.ndarray:
        """Scores of ``frames`` (uint8 ``[T, H, W, 3]``)."""
        ...


def limit_long_side(frame: np.ndarray, n: int = 512) -> np.ndarray:
    """Downscale so that the long side is at most ``n`` (VBench ``longer`` preprocessing)."""
    h, w = frame.shape[:2]
    if max(h, w) <= n:
        return frame
    s = n / max(h, w)
    return cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def detail_maps(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel gradient energy ``gx² + gy²`` and local noise response (8×8 mean |Immerkær|) of an RGB frame."""
    grey = cv2.cvtColor(limit_long_side(frame), cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    resp = np.abs(cv2.filter2D(grey, -1, _IMMERKAER, borderType=cv2.BORDER_REFLECT))
    return gx * gx + gy * gy, cv2.blur(resp, (8, 8))


def score_from_maps(energy: np.ndarray, noise: np.ndarray) -> float:
    """The proxy score (0-100) of the pixels given (the whole frame, or a matched region of it)."""
    sigma = float(np.percentile(noise, 10)) * _SIGMA_SCALE
    detail = float(np.sqrt(max(float(energy.mean()) - NOISE_GRADIENT_ENERGY * sigma * sigma, 0.0)))
    return 100.0 * detail / (detail + 8.0) * float(np.exp(-sigma / 8.0))


def noise_sigma(grey: np.ndarray) -> float:
    """Noise standard deviation (uint8 levels) of a grey frame, read in its flattest patches."""
    resp = np.abs(cv2.filter2D(grey.astype(np.float32), -1, _IMMERKAER, borderType=cv2.BORDER_REFLECT))
    return float(np.percentile(cv2.blur(resp, (8, 8)), 10)) * _SIGMA_SCALE


class SharpnessQuality:
    """The weight-free 0-100 proxy described in the module docstring."""

    name = "sharpness"

    def frame_score(self, frame: np.ndarray) -> float:
        """Score of one RGB uint8 frame."""
        return score_from_maps(*detail_maps(frame))

    def frame_scores(self, frames: np.ndarray) -> np.ndarray:
        """Scores of every frame."""
        return np.array([self.frame_score(f) for f in frames])


def _musiq_path() -> Path:
    default = vbench_cache() / "pyiqa_model" / "musiq_spaq_ckpt-358bb6af.pth"
    return Path(os.environ.get("AAD_MUSIQ_WEIGHTS", default))


def musiq_unavailable() -> str | None:
    """``None`` when MUSIQ can run here, else what is missing (weights file or the pyiqa package)."""
    if not _musiq_path().is_file():
        return (
            f"MUSIQ weights not found at {_musiq_path()}; set AAD_MUSIQ_WEIGHTS (nothing is downloaded) "
            "or use the weight-free sharpness proxy"
        )
    import importlib.util

    if importlib.util.find_spec("pyiqa") is None:
        return "MUSIQ needs pyiqa (pip install 'aad_bench[weights]')"
    return None


class MusiqQuality:
    """pyiqa's MUSIQ with VBench's SPAQ checkpoint from local disk (``AAD_MUSIQ_WEIGHTS`` / VBench cache)."""

    name = "musiq"

    def __init__(self, device: str = "cpu") -> None:
        if not _musiq_path().is_file():
            raise FileNotFoundError(musiq_unavailable())
        try:
            from pyiqa.archs.musiq_arch import MUSIQ
        except ImportError as e:
            raise ImportError(f"MUSIQ needs pyiqa (pip install 'aad_bench[weights]'): {e}") from None
        self.model = MUSIQ(pretrained_model_path=str(_musiq_path())).eval().to(device)
        self.device = device

    def frame_scores(self, frames: np.ndarray) -> np.ndarray:
        """MUSIQ score of every frame (long side ≤ 512)."""
        import torch

        out = []
        with torch.no_grad():
            for f in frames:
                x = torch.from_numpy(limit_long_side(f).transpose(2, 0, 1).copy()).float()[None] / 255.0
                out.append(float(self.model(x.to(self.device)).item()))
        return np.array(out)


QUALITY = backend_kind("quality", "quality backend")
QUALITY.register("sharpness", Backend("sharpness", lambda **kw: SharpnessQuality(), proxy_for=MUSIQ_PROXY))
QUALITY.register(
    "musiq", Backend("musiq", lambda device="cpu", **kw: MusiqQuality(device), available=musiq_unavailable)
)
_CACHE: dict[str, QualityBackend] = {}
_FRAME_CACHE: dict[tuple, np.ndarray] = {}


def get_quality(name: str = "sharpness", device: str | None = None) -> QualityBackend:
    """Build (once per process and device) the quality backend ``name``; ``device`` defaults to ``eval --device``."""
    return build_on_device(_CACHE, QUALITY, name, device)


def video_frame_quality(path: Path, backend: str, device: str | None = None) -> np.ndarray:
    """Per-frame 0-100 quality of a video, memoised per (file, mtime, backend): drift reuses it."""
    key = (str(path), path.stat().st_mtime_ns, backend)
    if key not in _FRAME_CACHE:
        if len(_FRAME_CACHE) > 256:
            _FRAME_CACHE.clear()
        frames, _ = read_video(path)
        _FRAME_CACHE[key] = get_quality(backend, device).frame_scores(frames)
    return _FRAME_CACHE[key]


def _imaging_quality(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    q = video_frame_quality(item.path, backend, cfg.get("device"))
    return VideoScore(float(q.mean()) / 100.0, curve=[round(float(v), 3) for v in q])


register(
    Metric(
        "imaging_quality",
        "2",
        "up",
        "quality",
        "sharpness",
        _imaging_quality,
        curve_label="frame",
        curve_unit="per-frame imaging quality (0-100)",
        doc="mean per-frame quality / 100 (MUSIQ in VBench; weight-free sharpness/noise proxy)",
    )
)

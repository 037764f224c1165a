"""Frame feature extractors for the consistency metrics (VBench's DINO / CLIP / DreamSim, or a fallback).

``embed(frames, mode)`` returns L2-normalised features ``[T, D]``; ``mode`` picks VBench's preprocessing:

- ``subject``: shorter side → 224, no crop, ImageNet normalisation (subject_consistency, DINO ViT-B/16)
- ``background``: shorter side → 224 bicubic, centre crop 224, CLIP normalisation (CLIP ViT-B/32)
- ``i2v_subject``: shorter side → 256 bicubic, centre crop 224, ImageNet normalisation (DINO)
- ``i2v_background``: 224×224 bicubic, no normalisation (DreamSim)

Weights are only read from local disk (``$VBENCH_CACHE_DIR``, default ``~/.cache/vbench``, VBench's own
layout, or the ``AAD_*`` variables below); nothing is downloaded. The weight-free ``pixel`` backend is the
Pearson correlation of 32×32 colour thumbnails: it falls with content change like the learned features do,
but its absolute values are not comparable with DINO/CLIP numbers (different backend = different column).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from aad_bench.evaluation.device import build_on_device
from aad_bench.evaluation.metrics import Backend, backend_kind

IMAGENET = (np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]))
CLIP_NORM = (np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711]))


class FeatureBackend(Protocol):
    """Frames ``[T, H, W, 3]`` → L2-normalised features ``[T, D]`` with VBench's preprocessing ``mode``."""

    name: str

    def embed(self, frames: np.ndarray, mode: str) -> np.ndarray:
        """Features of ``frames``."""
        ...


def vbench_cache() -> Path:
    """VBench's weight cache folder."""
    return Path(os.environ.get("VBENCH_CACHE_DIR", Path.home() / ".cache" / "vbench")).expanduser()


def _resize_short(img: np.ndarray, n: int, interp: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = n / min(h, w)
    return cv2.resize(img, (max(n, round(w * s)), max(n, round(h * s))), interpolation=interp)


def _center_crop(img: np.ndarray, n: int) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - n) // 2, (w - n) // 2
    return img[y : y + n, x : x + n]


def preprocess(frame: np.ndarray, mode: str) -> np.ndarray:
    """One RGB uint8 frame → float32 ``[3, H, W]`` with VBench's transform for ``mode``."""
    if mode == "subject":
        x, norm = _resize_short(frame, 224, cv2.INTER_LINEAR), IMAGENET
    elif mode == "background":
        x, norm = _center_crop(_resize_short(frame, 224, cv2.INTER_CUBIC), 224), CLIP_NORM
    elif mode == "i2v_subject":
        x, norm = _center_crop(_resize_short(frame, 256, cv2.INTER_CUBIC), 224), IMAGENET
    elif mode == "i2v_background":
        x, norm = cv2.resize(frame, (224, 224), interpolation=cv2.INTER_CUBIC), None
    else:
        raise ValueError(f"unknown preprocessing mode {mode!r}")
    x = np.clip(x.astype(np.float32) / 255.0, 0, 1)
    if norm is not None:
        x = (x - norm[0]) / norm[1]
    return x.transpose(2, 0, 1).astype(np.float32)


def l2n(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation (zero rows stay zero)."""
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class PixelFeatures:
    """Weight-free fallback: mean-centred 32×32 RGB thumbnails (area-averaged), so cosine = correlation."""

    name = "pixel"

    def embed(self, frames: np.ndarray, mode: str) -> np.ndarray:
        """Thumbnail features; ``mode`` is ignored, so subject and background scores are identical."""
        thumbs = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in frames])
        x = thumbs.reshape(len(frames), -1).astype(np.float64)
        return l2n(x - x.mean(axis=1, keepdims=True))


def _need(path: Path, what: str, env: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{what} not found at {path}; put it there or set {env} (nothing is downloaded); "
            "the weight-free backend is --features pixel"
        )
    return path


class TorchFeatures:
    """Shared batching for torch models: preprocess, forward in batches of 32, normalise."""

    name = "torch"
    device = "cpu"

    def forward(self, x):  # pragma: no cover - needs weights
        """The model's features of a preprocessed batch."""
        raise NotImplementedError

    def embed(self, frames: np.ndarray, mode: str) -> np.ndarray:
        """Preprocess with ``mode``, run the model in batches of 32, L2-normalise."""
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(frames), 32):
                x = torch.from_numpy(np.stack([preprocess(f, mode) for f in frames[i : i + 32]])).to(self.device)
                out.append(self.forward(x).float().cpu().numpy())
        return l2n(np.concatenate(out).astype(np.float64))


class DinoFeatures(TorchFeatures):
    """DINO ViT-B/16 via ``torch.hub`` from a local clone of facebookresearch/dino and local weights."""

    name = "dino"

    def __init__(self, device: str = "cpu") -> None:
        import torch

        repo = _dino_path("AAD_DINO_REPO", "facebookresearch_dino_main")
        weights = _dino_path("AAD_DINO_WEIGHTS", "dino_vitbase16_pretrain.pth")
        _need(repo, "DINO code (clone of facebookresearch/dino)", "AAD_DINO_REPO")
        _need(weights, "DINO ViT-B/16 weights", "AAD_DINO_WEIGHTS")
        self.model = torch.hub.load(str(repo), "dino_vitb16", source="local", pretrained=False)
        self.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.model.eval().to(device)
        self.device = device

    def forward(self, x):
        """DINO CLS features."""
        return self.model(x)


class ClipFeatures(TorchFeatures):
    """OpenAI CLIP ViT-B/32 image features (the ``clip`` package) from a local ``ViT-B-32.pt``."""

    name = "clip"

    def __init__(self, device: str = "cpu") -> None:
        weights = Path(os.environ.get("AAD_CLIP_WEIGHTS", vbench_cache() / "clip_model" / "ViT-B-32.pt"))
        _need(weights, "CLIP ViT-B/32 weights", "AAD_CLIP_WEIGHTS")
        try:
            import clip
        except ImportError as e:
            raise ImportError(f"CLIP features need the 'clip' package (openai-clip): {e}") from None
        self.model, _ = clip.load(str(weights), device=device)
        self.device = device

    def forward(self, x):
        """CLIP image features."""
        return self.model.encode_image(x)


class DreamSimFeatures(TorchFeatures):
    """DreamSim embeddings (``dreamsim`` package) from a local checkpoint folder."""

    name = "dreamsim"

    def __init__(self, device: str = "cpu") -> None:
        cache = Path(os.environ.get("AAD_DREAMSIM_DIR", vbench_cache() / "dreamsim"))
        _need(cache, "DreamSim checkpoints folder", "AAD_DREAMSIM_DIR")
        try:
            from dreamsim import dreamsim
        except ImportError as e:
            raise ImportError(f"DreamSim features need the 'dreamsim' package: {e}") from None
        self.model, _ = dreamsim(pretrained=True, device=device, cache_dir=str(cache))
        self.device = device

    def forward(self, x):
        """DreamSim embeddings."""
        return self.model.embed(x)


def _dino_path(env: str, rel: str) -> Path:
    return Path(os.environ.get(env, vbench_cache() / "dino_model" / rel))


def _missing(what: str, env: str, *paths: Path) -> str | None:
    gone = [str(p) for p in paths if not p.exists()]
    if not gone:
        return None
    return (
        f"{what} not found at {', '.join(gone)}; put it there or set {env} (nothing is downloaded); "
        "the weight-free backend is --features pixel"
    )


FEATURES = backend_kind("features", "feature backend")
FEATURES.register(
    "pixel",
    Backend(
        "pixel",
        lambda **kw: PixelFeatures(),
        proxy_for="DINO / CLIP / DreamSim features",
    ),
)
FEATURES.register(
    "dino",
    Backend(
        "dino",
        lambda device="cpu", **kw: DinoFeatures(device),
        available=lambda: _missing(
            "DINO code and weights",
            "AAD_DINO_REPO / AAD_DINO_WEIGHTS",
            _dino_path("AAD_DINO_REPO", "facebookresearch_dino_main"),
            _dino_path("AAD_DINO_WEIGHTS", "dino_vitbase16_pretrain.pth"),
        ),
    ),
)
FEATURES.register(
    "clip",
    Backend(
        "clip",
        lambda device="cpu", **kw: ClipFeatures(device),
        available=lambda: _missing(
            "CLIP ViT-B/32 weights",
            "AAD_CLIP_WEIGHTS",
            Path(os.environ.get("AAD_CLIP_WEIGHTS", vbench_cache() / "clip_model" / "ViT-B-32.pt")),
        ),
    ),
)
FEATURES.register(
    "dreamsim",
    Backend(
        "dreamsim",
        lambda device="cpu", **kw: DreamSimFeatures(device),
        available=lambda: _missing(
            "DreamSim checkpoints folder",
            "AAD_DREAMSIM_DIR",
            Path(os.environ.get("AAD_DREAMSIM_DIR", vbench_cache() / "dreamsim")),
        ),
    ),
)
_CACHE: dict[str, FeatureBackend] = {}


def get_features(name: str = "pixel", device: str | None = None) -> FeatureBackend:
    """Build (once per process and device) the feature backend ``name``; ``device`` defaults to ``eval --device``."""
    return build_on_device(_CACHE, FEATURES, name, device)

"""Optical-flow backends: OpenCV DIS (default, weight-free) and RAFT (torchvision, local weights only).

A backend maps two RGB uint8 frames ``[H, W, 3]`` to a float32 flow ``[H, W, 2]`` (pixels, frame a → b).
The backend name is part of every result that depends on it, so DIS and RAFT numbers never mix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from aad_bench.evaluation.device import current_device
from aad_bench.evaluation.metrics import Backend, backend_kind

RAFT_ENV = "AAD_RAFT_WEIGHTS"


class FlowBackend(Protocol):
    """Two RGB uint8 frames ``[H, W, 3]`` → float32 flow ``[H, W, 2]`` (pixels, frame a → b)."""

    name: str

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The flow from ``a`` to ``b``."""
        ...


class DISFlow:
    """OpenCV's Dense Inverse Search flow; ``preset`` is ``ultrafast`` | ``fast`` | ``medium``.

    MEDIUM is the default: on synthetic pans it is within a few percent of the true displacement up to
    ~16 px/frame at 256² (see docs/evaluation.md), which is what VBench's threshold needs.
    """

    _PRESETS = {
        "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }

    def __init__(self, preset: str = "medium") -> None:
        if preset not in self._PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose from {sorted(self._PRESETS)}")
        self.name = "dis" if preset == "medium" else f"dis-{preset}"
        self._dis = cv2.DISOpticalFlow_create(self._PRESETS[preset])

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The flow from ``a`` to ``b`` on the grey frames."""
        ga = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
        gb = cv2.cvtColor(np.ascontiguousarray(b), cv2.COLOR_RGB2GRAY)
        return self._dis.calc(ga, gb, None)


def _raft_weights(path: str | os.PathLike | None) -> Path:
    """Where the RAFT weights are; a clear error when they are not on local disk (nothing is downloaded)."""
    p = path or os.environ.get(RAFT_ENV)
    if not p:
        raise FileNotFoundError(
            f"RAFT flow needs local weights: set {RAFT_ENV}=/path/raft_large.pth (a torchvision "
            "raft_large state dict, e.g. raft_large_C_T_SKHT_V2-ff5fadd5.pth) or use --flow dis"
        )
    p = Path(p).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"RAFT weights not found at {p} (from {RAFT_ENV} or --flow-weights)")
    return p


class RAFTFlow:
    """torchvision's RAFT-large with weights from local disk; 20 refinement iterations as in VBench."""

    name = "raft"

    def __init__(self, weights: str | os.PathLike | None = None, device: str = "cpu", iters: int = 20) -> None:
        path = _raft_weights(weights)
        try:
            import torch
            from torchvision.models.optical_flow import raft_large
        except ImportError as e:
            raise ImportError(f"RAFT flow needs torchvision ({e}); install it or use --flow dis") from None
        self._torch = torch
        self.model = raft_large(weights=None, progress=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        self.model.eval().to(device)
        self.device, self.iters = device, iters

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The flow from ``a`` to ``b`` (20 refinement iterations)."""
        torch = self._torch
        h, w = a.shape[:2]
        ph, pw = (-h) % 8, (-w) % 8  # RAFT needs sizes divisible by 8 (VBench's InputPadder does the same)

        def prep(x: np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
            return torch.nn.functional.pad(t, (0, pw, 0, ph), mode="replicate").to(self.device)

        with torch.no_grad():
            flow = self.model(prep(a), prep(b), num_flow_updates=self.iters)[-1]
        return flow[0, :, :h, :w].permute(1, 2, 0).cpu().numpy().astype(np.float32)


def _raft_available() -> str | None:
    try:
        _raft_weights(None)
    except FileNotFoundError as e:
        return str(e)
    return None


_DIS_PROXY = "RAFT (VBench's flow)"  # DIS reads pans within ~3 % (docs/evaluation.md)
FLOW = backend_kind("flow", "flow backend")
for _name, _preset in (("dis", "medium"), ("dis-fast", "fast"), ("dis-ultrafast", "ultrafast")):
    FLOW.register(_name, Backend(_name, lambda _p=_preset, **kw: DISFlow(_p), proxy_for=_DIS_PROXY))
FLOW.register(
    "raft",
    Backend("raft", lambda weights=None, device="cpu", **kw: RAFTFlow(weights, device), available=_raft_available),
)

_CACHE: dict[tuple, FlowBackend] = {}


def get_flow(name: str = "dis", **kw) -> FlowBackend:
    """Build (once per process) the flow backend ``name``; unknown names list the registered ones.

    ``device`` defaults to ``eval --device`` (:mod:`aad_bench.evaluation.device`); DIS ignores it.
    """
    kw.setdefault("device", current_device())
    key = (name, tuple(sorted(kw.items())))
    if key not in _CACHE:
        _CACHE[key] = FLOW.get(name).build(**kw)
    return _CACHE[key]


def magnitude(flow: np.ndarray) -> np.ndarray:
    """Per-pixel flow length."""
    return np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2)


def top_fraction_mean(mag: np.ndarray, frac: float = 0.05) -> float:
    """Mean of the largest ``int(frac·H·W)`` magnitudes (VBench's ``get_score``), via partition, not sort."""
    flat = mag.ravel()
    k = max(1, int(frac * flat.size))
    return float(np.partition(flat, flat.size - k)[flat.size - k :].mean())


def pair_motion(frames: np.ndarray, backend: FlowBackend, frac: float = 0.05) -> np.ndarray:
    """Top-``frac`` mean flow magnitude for each consecutive pair of ``frames`` (``T-1`` values)."""
    return np.array(
        [top_fraction_mean(magnitude(backend(a, b)), frac) for a, b in zip(frames[:-1], frames[1:])],
        dtype=np.float64,
    )

"""Frame interpolators for motion_smoothness: VBench uses AMT-S; here DIS-flow warping or a plain blend.

An interpolator maps two RGB uint8 frames to their temporal midpoint (same shape and dtype).
"""

from __future__ import annotations

import cv2
import numpy as np

from aad_bench.evaluation.flow import get_flow
from aad_bench.evaluation.metrics import Backend, backend_kind


def blend_interp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Midpoint as the plain average (no motion compensation): a lower bound on any real interpolator."""
    return ((a.astype(np.uint16) + b) // 2).astype(np.uint8)


def _warp(img: np.ndarray, flow: np.ndarray, t: float) -> np.ndarray:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        img, gx - t * flow[..., 0], gy - t * flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def dis_interp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Weight-free flow interpolation: backward-warp both frames half-way along DIS flow and average.

    Uses the flow at the target pixel as the flow at its source (the usual first-order approximation), so it
    is exact for smooth translations and degrades gracefully at occlusions.
    """
    flow = get_flow("dis")
    fa = _warp(a, flow(a, b), 0.5)
    fb = _warp(b, flow(b, a), 0.5)
    return ((fa.astype(np.uint16) + fb) // 2).astype(np.uint8)


def _amt_unavailable() -> str:
    return (
        "the 'amt' interpolator (VBench's AMT-S) runs only inside official VBench: use "
        "`aad-bench eval --vbench motion_smoothness` with AMT weights, or --interp dis (weight-free)"
    )


def _amt(**kw: object) -> None:
    raise RuntimeError(_amt_unavailable())


_AMT = "AMT-S (VBench's interpolator)"
INTERP = backend_kind("interp", "interpolator")
INTERP.register("dis", Backend("dis", lambda **kw: dis_interp, proxy_for=_AMT))
INTERP.register("blend", Backend("blend", lambda **kw: blend_interp, proxy_for=_AMT))
INTERP.register("amt", Backend("amt", _amt, available=_amt_unavailable))

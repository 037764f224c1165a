"""Toy-world ground-truth metrics: generated vs data motion, from the ``gt`` entries of a video set's index.

``gt.positions[t][j] = [x, y]`` is object ``j`` at frame ``t`` of the *data* clip that shares the conditioning
image (pixels, or fractions of width/height when every coordinate is ≤ 1.5). The generated video's objects
are tracked from the same start positions by following the flow backend (mean flow in a 5×5 window),
so no toy-world code is needed:

- ``toy_speed_ratio``: generated / data mean speed (px/frame); 1 is ideal (direction ``None``). The set value
  is the ratio of set means (stable when some clips barely move).
- ``toy_trajectory_error``: mean distance between tracked and data positions, as a fraction of min(H, W).
- ``toy_static_share``: share of videos whose tracked speed is < 10 % of the data speed (motion collapse).
"""

from __future__ import annotations

import numpy as np

from aad_bench.evaluation.flow import get_flow
from aad_bench.evaluation.metrics import Metric, MissingInputError, VideoItem, VideoScore, register
from aad_bench.video.io import read_video

STATIC_FRACTION = 0.1


def gt_positions(meta: dict, height: int, width: int) -> np.ndarray:
    """Data positions ``[T, J, 2]`` in pixels from an index entry; a clear error when absent."""
    gt = meta.get("gt") or {}
    pos = gt.get("positions")
    if not pos:
        raise MissingInputError(
            "no gt.positions in the index entry (toy-world metrics need the toy ground truth)"
        )
    p = np.asarray(pos, dtype=np.float64)
    if p.ndim == 2:  # one object: [T, 2]
        p = p[:, None, :]
    if p.ndim != 3 or p.shape[-1] != 2:
        raise MissingInputError(f"gt.positions must be [T][J][2], got shape {p.shape}")
    if np.abs(p).max() <= 1.5:  # normalised coordinates
        p = p * np.array([width, height])
    return p


def track(frames: np.ndarray, start: np.ndarray, flow: str = "dis", radius: int = 2) -> np.ndarray:
    """Follow points ``start [J, 2]`` (x, y pixels) through ``frames`` by mean local flow → ``[T, J, 2]``."""
    fb = get_flow(flow)
    h, w = frames.shape[1:3]
    pts = [np.asarray(start, dtype=np.float64)]
    for a, b in zip(frames[:-1], frames[1:]):
        f = fb(a, b)
        nxt = []
        for x, y in pts[-1]:
            xi, yi = int(np.clip(round(x), 0, w - 1)), int(np.clip(round(y), 0, h - 1))
            win = f[max(0, yi - radius) : yi + radius + 1, max(0, xi - radius) : xi + radius + 1]
            nxt.append([x + win[..., 0].mean(), y + win[..., 1].mean()])
        pts.append(np.array(nxt))
    return np.stack(pts)


def mean_speed(traj: np.ndarray) -> float:
    """Mean per-frame displacement over objects and frames (px/frame)."""
    return float(np.linalg.norm(np.diff(traj, axis=0), axis=-1).mean()) if len(traj) > 1 else 0.0


_CACHE: dict[tuple, dict] = {}


def _toy(item: VideoItem, backend: str, cfg: dict) -> dict:
    """Tracked and data speeds and the trajectory error of one video (memoised: three metrics share it)."""
    key = (str(item.path), item.path.stat().st_mtime_ns, backend, repr(item.meta.get("gt"))[:200])
    if key not in _CACHE:
        _CACHE[key] = _toy_uncached(item, backend)
    return _CACHE[key]


def _toy_uncached(item: VideoItem, backend: str) -> dict:
    frames, _ = read_video(item.path)
    h, w = frames.shape[1:3]
    gt = gt_positions(item.meta, h, w)
    n = min(len(frames), len(gt))
    if n < 2:
        raise ValueError(f"{item.path}: toy metrics need at least 2 frames")
    gen = track(frames[:n], gt[0], backend)
    err = float(np.linalg.norm(gen - gt[:n], axis=-1).mean() / min(h, w))
    return {"gen_speed": mean_speed(gen), "data_speed": mean_speed(gt[:n]), "traj_error": err}


def _speed_ratio(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    t = _toy(item, backend, cfg)
    if t["data_speed"] <= 1e-9:
        raise MissingInputError(f"{item.path}: the data clip does not move; speed ratio undefined")
    return VideoScore(t["gen_speed"] / t["data_speed"], extra=t)


def _ratio_of_means(scores: list[VideoScore]) -> float:
    return sum(s.extra["gen_speed"] for s in scores) / sum(s.extra["data_speed"] for s in scores)


def _traj_error(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    t = _toy(item, backend, cfg)
    return VideoScore(t["traj_error"], extra=t)


def _static(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    t = _toy(item, backend, cfg)
    frac = cfg.get("static_fraction", STATIC_FRACTION)
    return VideoScore(float(t["gen_speed"] < frac * max(t["data_speed"], 1e-9)), extra=t)


register(
    Metric(
        "toy_speed_ratio",
        "1",
        None,
        "flow",
        "dis",
        _speed_ratio,
        needs="gt",
        aggregate=_ratio_of_means,
        doc="generated / data mean object speed (1 = matches data)",
    )
)
register(
    Metric(
        "toy_trajectory_error",
        "1",
        "down",
        "flow",
        "dis",
        _traj_error,
        needs="gt",
        doc="mean tracked-vs-data position error / min(H, W)",
    )
)
register(
    Metric(
        "toy_static_share",
        "1",
        "down",
        "flow",
        "dis",
        _static,
        needs="gt",
        doc="share of videos moving < 10% of the data speed",
    )
)

"""Toy-world ground-truth metrics: generated vs data motion, from the ``gt`` entries of a video set's index.

A toy video's index entry carries ``gt`` of the *data* clip with the same first frame (``positions``,
``velocities``, ``sprites``). Motion is read with the toy world's own estimator
(:mod:`aad_bench.world.motion`: each sprite followed from its first-frame appearance, one bounce-aware velocity
fitted per track) — the same one the demo's printed table and ``aad-bench diagnose`` use, so the three agree:

- ``toy_speed_ratio``: generated / data mean sprite speed; 1 is ideal (direction ``None``). The set value is the
  ratio of set means (``motion_summary``'s ``speed_ratio``); a video whose data twin does not move has no
  per-video ratio (recorded under ``skipped``, not an error) but its speeds still enter the set value.
- ``toy_frozen_share``: among videos whose data twin moves ≥ ``FROZEN_SPEED`` px/frame, the share whose fitted
  speed is below it (``motion_summary``'s ``frozen_share``).
- ``toy_trajectory_error``: mean distance between each sprite's fitted trajectory and its data positions /
  min(H, W).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aad_bench.evaluation.metrics import Metric, MissingInputError, VideoItem, VideoScore, register
from aad_bench.video.io import read_video
from aad_bench.world.motion import FROZEN_SPEED, VERSION, clip_speed, fit_axis_velocity, follow_sprite, gt_speed
from aad_bench.world.toy import reflect

BACKEND = "sprites"  # the single method of these metrics: the toy world's sprite follower + velocity fit
_STILL = f"the data clip moves < {FROZEN_SPEED} px/frame (nothing to compare)"


def toy_gt(item: VideoItem) -> dict[str, Any]:
    """The index entry's ground truth, checked for what the sprite estimator needs; errors name the file."""
    gt = item.meta.get("gt")
    if not isinstance(gt, dict) or not gt.get("positions"):
        raise MissingInputError(f"{item.path}: no gt.positions in the index entry (toy metrics need toy ground truth)")
    missing = [k for k in ("velocities", "sprites") if not isinstance(gt.get(k), list)]
    if missing:
        raise MissingInputError(
            f"{item.path}: the index entry's gt lacks {', '.join(missing)} (written by older sampling code: "
            "re-sample the set)"
        )
    return gt


_CACHE: dict[tuple, dict[str, Any]] = {}


def toy_motion(item: VideoItem) -> dict[str, Any]:
    """Fitted and true speeds (px/frame) and the trajectory error of one video (memoised: three metrics)."""
    gt = toy_gt(item)
    key = (str(item.path), item.path.stat().st_mtime_ns, repr(gt)[:300])
    if key not in _CACHE:
        frames, _ = read_video(item.path)
        if len(frames) < 3:
            raise ValueError(f"{item.path}: toy metrics need at least 3 frames, got {len(frames)}")
        _CACHE[key] = {
            "speed": round(clip_speed(frames, gt), 5),
            "data_speed": round(gt_speed(gt, len(frames)), 5),
            "trajectory_error": _trajectory_error(frames, gt),
        }
    return _CACHE[key]


def _trajectory_error(frames: np.ndarray, gt: dict[str, Any]) -> float:
    """Mean distance between each sprite's fitted trajectory and its true positions, / min(H, W).

    The fitted trajectory ``reflect(x0 + v·t)`` is the model behind the speed, so frames where the follower
    lost a sprite do not dominate.
    """
    pos = np.asarray(gt["positions"], np.float64)
    pos = pos.reshape(len(pos), -1, 2)
    n = min(len(frames), len(pos))
    h, w = frames.shape[1:3]
    f = frames[:n].astype(np.float32) / 255.0
    t = np.arange(n, dtype=np.float64)
    errs = []
    for j, sprite in enumerate(gt["sprites"][: pos.shape[1]]):
        r = float(sprite["radius"])
        track, _ = follow_sprite(f, pos[0, j], sprite["shape"], r)  # (positions, found per frame)
        fitted = [
            reflect(track[0, k] + fit_axis_velocity(track[:, k], r, size - r) * t, r, size - r)
            for k, size in ((0, w), (1, h))
        ]
        errs.append(np.linalg.norm(np.stack(fitted, 1) - pos[:n, j], axis=-1).mean())
    return round(float(np.mean(errs)) / min(h, w), 5)


def _speed_ratio(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    t = toy_motion(item)
    if t["data_speed"] < FROZEN_SPEED:
        return VideoScore(None, extra=t, skip=_STILL)
    return VideoScore(t["speed"] / t["data_speed"], extra=t)


def ratio_of_means(scores: list[VideoScore]) -> float | None:
    """Mean fitted speed / mean true speed over every video (as ``world.motion.motion_summary``)."""
    data = sum(s.extra["data_speed"] for s in scores)
    return sum(s.extra["speed"] for s in scores) / data if data > 1e-9 else None


def _frozen(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    t = toy_motion(item)
    if t["data_speed"] < FROZEN_SPEED:
        return VideoScore(None, extra=t, skip=_STILL)
    return VideoScore(float(t["speed"] < FROZEN_SPEED), extra=t)


def _traj_error(item: VideoItem, backend: str, cfg: dict) -> VideoScore:
    t = toy_motion(item)
    return VideoScore(t["trajectory_error"], extra=t)


for _metric in (
    Metric(
        "toy_speed_ratio",
        f"m{VERSION}",
        None,
        None,
        BACKEND,
        _speed_ratio,
        needs="gt",
        aggregate=ratio_of_means,
        details=True,
        doc="generated / data mean sprite speed (sprite follower + fitted velocity; 1 = matches data)",
    ),
    Metric(
        "toy_frozen_share",
        f"m{VERSION}",
        "down",
        None,
        BACKEND,
        _frozen,
        needs="gt",
        details=True,
        doc=f"share of videos with fitted speed < {FROZEN_SPEED} px/frame among those whose data twin moves",
    ),
    Metric(
        "toy_trajectory_error",
        f"m{VERSION}",
        "down",
        None,
        BACKEND,
        _traj_error,
        needs="gt",
        details=True,
        doc="mean followed-sprite vs data position error / min(H, W)",
    ),
):
    register(_metric)

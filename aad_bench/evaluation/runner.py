"""``aad-bench eval``: score video sets and write ``eval/<set>/<metric>@<backend>.json`` (contracts.md).

A target is a run folder (``videos/<set>/``), a folder of run folders (any depth ≤ 2, e.g. a campaign's
``runs/``) or a bare video-set folder. Finished results (same version, same videos, not older than the
videos) are skipped; an unreadable video is recorded under ``errors`` while the rest of the set is scored.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aad_bench.evaluation.metrics import (
    Metric,
    MissingInputError,
    VideoItem,
    VideoScore,
    backend_registry,
    get_metric,
    load_all,
)
from aad_bench.utils.io import MalformedFileError, atomic_write_json, read_json
from aad_bench.video.io import VideoReadError
from aad_bench.video.sets import INDEX, list_videos, load_index

DEFAULT_METRICS = (
    "dynamic_degree",
    "motion_smoothness",
    "temporal_flickering",
    "subject_consistency",
    "background_consistency",
    "i2v_subject",
    "i2v_background",
    "imaging_quality",
    "drift_score",
    "delta_drift",
    "toy_speed_ratio",
    "toy_trajectory_error",
    "toy_static_share",
)


@dataclass
class Target:
    """One video set to score and where its results go."""

    set_dir: Path
    out_dir: Path

    @property
    def set_name(self) -> str:
        return self.out_dir.name


def _is_set(p: Path) -> bool:
    return p.is_dir() and ((p / INDEX).is_file() or any(p.glob("*.mp4")))


def find_targets(path: str | Path, sets: list[str] | None = None) -> list[Target]:
    """Video sets under ``path`` (run folder, folder of run folders, or a bare set); clear error when none."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder")
    if (path / "videos").is_dir():
        found = [Target(d, path / "eval" / d.name) for d in sorted((path / "videos").iterdir()) if _is_set(d)]
        if not found:
            raise FileNotFoundError(f"{path}/videos: no video sets (folders with *.mp4) in this run folder")
    elif _is_set(path):
        name = load_index(path).get("set") or path.name
        found = [Target(path, path / "eval" / str(name))]
    else:
        found = []
        for sub in sorted(p for p in path.iterdir() if p.is_dir() and p.name != "eval"):
            if (
                (sub / "videos").is_dir()
                or _is_set(sub)
                or any(s.is_dir() and (s / "videos").is_dir() for s in sub.iterdir())
            ):
                found += find_targets(sub, sets)
        if not found:
            raise FileNotFoundError(f"{path}: no run folders, video sets or mp4 files found (empty folder?)")
    return [t for t in found if not sets or t.set_name in sets or t.set_dir.name in sets]


def set_items(target: Target) -> list[VideoItem]:
    index = load_index(target.set_dir)
    paths = list_videos(target.set_dir)
    known = {p.name for p in paths}
    # mp4s missing from the index are scored too: a file nobody indexed must not vanish from the numbers
    paths += [
        p for p in sorted(target.set_dir.glob("*.mp4")) if p.name not in known and not p.name.startswith(".")
    ]
    return [VideoItem(p, dict(index["videos"].get(p.name) or {}), target.set_dir) for p in paths]


def applicable(metric: Metric, items: list[VideoItem]) -> bool:
    """Toy metrics need ``gt`` and i2v metrics need conditioning images somewhere in the set."""
    if metric.needs == "gt":
        return any(it.meta.get("gt") for it in items)
    if metric.needs == "image":
        return any(it.meta.get("image") for it in items) or (items[0].set_dir / "images").is_dir()
    return True


def _is_fresh(out: Path, metric: Metric, backend: str, items: list[VideoItem]) -> bool:
    if not out.is_file():
        return False
    try:
        old = read_json(out)
    except MalformedFileError as e:
        print(f"warning: {e}; recomputing", file=sys.stderr)
        return False
    names = {it.name for it in items}
    done = set(old.get("per_video", {})) | set(old.get("errors", {}))
    newest = max(it.path.stat().st_mtime for it in items if it.path.exists()) if items else 0
    return (
        old.get("version") == metric.version
        and old.get("backend") == backend
        and done == names
        and out.stat().st_mtime >= newest
    )


def score_set(metric: Metric, backend: str, items: list[VideoItem], cfg: dict) -> dict[str, Any]:
    """Score every video; failures (bad file, missing input) go to ``errors`` with the reason."""
    per_video: dict[str, float] = {}
    curves: dict[str, list] = {}
    errors: dict[str, str] = {}
    scores: list[VideoScore] = []
    for it in items:
        try:
            s = metric.fn(it, backend, cfg)
        except (VideoReadError, MissingInputError, ValueError) as e:
            errors[it.name] = str(e)
            print(f"error: {metric.name}@{backend}: {e}", file=sys.stderr)
            continue
        scores.append(s)
        per_video[it.name] = s.value
        if s.curve is not None:
            curves[it.name] = s.curve
    res: dict[str, Any] = {
        "metric": metric.name,
        "version": metric.version,
        "backend": backend,
        "direction": metric.direction,
        "n_videos": len(per_video),
        "aggregate": metric.reduce(scores),
        "per_video": per_video,
    }
    if curves:
        res["curves"] = {"x_label": metric.curve_label or "index", "per_video": curves}
    if errors:
        res["errors"] = errors
    return res


def evaluate_target(
    target: Target, metrics: list[str], backends: dict[str, str], cfg: dict, force: bool = False
) -> tuple[list[Path], int]:
    """Score one set with ``metrics``; returns written files and the number of per-video errors."""
    items = set_items(target)
    written, n_err = [], 0
    for name in metrics:
        metric = get_metric(name)
        backend = backends.get(name) or backends.get(metric.backend_kind or "") or metric.default_backend
        if not applicable(metric, items):
            continue
        out = target.out_dir / f"{name}@{backend}.json"
        if not force and _is_fresh(out, metric, backend, items):
            print(f"skip {out} (up to date)")
            continue
        t0 = time.time()
        res = score_set(metric, backend, items, cfg)
        res = {**res, "video_set": target.set_name, "config": {**cfg, "seconds": round(time.time() - t0, 2)}}
        atomic_write_json(out, _order(res))
        n_err += len(res.get("errors", {}))
        written.append(out)
        print(f"wrote {out}  aggregate={res['aggregate']}")
    return written, n_err


def _order(res: dict) -> dict:
    keys = [
        "metric",
        "version",
        "backend",
        "direction",
        "video_set",
        "n_videos",
        "aggregate",
        "per_video",
        "curves",
        "errors",
        "config",
    ]
    return {k: res[k] for k in keys if k in res}


def evaluate_path(
    path: str | Path,
    metrics: list[str] | None = None,
    backends: dict[str, str] | None = None,
    cfg: dict | None = None,
    sets: list[str] | None = None,
    force: bool = False,
) -> tuple[list[Path], int]:
    """Evaluate every video set under ``path``; unknown metric names fail before any work."""
    registry = load_all()
    metrics = list(metrics or DEFAULT_METRICS)
    for m in metrics:
        metric = registry.get(m)  # did-you-mean error up front
        b = (backends or {}).get(m) or (backends or {}).get(metric.backend_kind or "")
        if b and metric.backend_kind:
            backend_registry(metric.backend_kind).get(b)
    targets = find_targets(path, sets)
    if not targets:
        raise FileNotFoundError(f"{path}: no video set named {', '.join(sets or [])}")
    written, n_err = [], 0
    for t in targets:
        w, e = evaluate_target(t, metrics, backends or {}, cfg or {}, force)
        written += w
        n_err += e
    return written, n_err

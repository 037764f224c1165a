"""``aad-bench eval``: score video sets and write ``eval/<set>/<metric>@<backend>.json`` (docs/contracts.md).

A target is a run folder (``videos/<set>/``), a folder of run folders (any depth ≤ 2, e.g. a campaign's
``runs/``) or a bare video-set folder. Finished results (same version, same videos, not older than the
videos) are skipped. A video that cannot be scored (unreadable, missing, too short) is recorded under
``errors`` with its file name while the rest of the set, the later metrics and the later sets are scored; a
video a metric does not apply to (a toy clip whose data twin does not move) is recorded under ``skipped``,
which is not an error.
"""

from __future__ import annotations

import difflib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aad_bench.evaluation.device import eval_device
from aad_bench.evaluation.metrics import (
    BACKEND_KINDS,
    METRICS,
    Metric,
    MissingInputError,
    VideoItem,
    VideoScore,
    backend_registry,
    get_backend,
    proxy_note,
)
from aad_bench.registry import UnknownNameError
from aad_bench.utils.io import MalformedFileError, atomic_write_json, read_json
from aad_bench.video.io import VideoReadError
from aad_bench.video.sets import INDEX, list_videos, load_index

RESULT_KEYS = (
    "metric",
    "version",
    "backend",
    "proxy_for",
    "direction",
    "video_set",
    "n_videos",
    "aggregate",
    "per_video",
    "curves",
    "details",
    "skipped",
    "errors",
    "config",
)


@dataclass
class Target:
    """One video set to score and where its results go."""

    set_dir: Path
    out_dir: Path

    @property
    def set_name(self) -> str:
        """The set's name (the results folder name)."""
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
    """Every video of a set, missing indexed files included (they become error rows).

    Mp4s nobody indexed are scored too: a file must not vanish from the numbers.
    """
    index = load_index(target.set_dir)
    paths = list_videos(target.set_dir)
    known = {p.name for p in paths}
    paths += [p for p in sorted(target.set_dir.glob("*.mp4")) if p.name not in known and not p.name.startswith(".")]
    items = []
    for p in paths:
        entry = index["videos"].get(p.name)
        if entry is not None and not isinstance(entry, dict):
            print(f"warning: {target.set_dir / INDEX}: entry of {p.name} is not an object; ignored", file=sys.stderr)
            entry = None
        items.append(VideoItem(p, dict(entry or {}), target.set_dir))
    return items


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
    except (MalformedFileError, OSError, UnicodeDecodeError) as e:
        print(f"warning: {e}; recomputing", file=sys.stderr)
        return False
    if not isinstance(old, dict) or not all(isinstance(old.get(k, {}), dict) for k in ("per_video", "errors")):
        print(f"warning: {out}: not a metric result object; recomputing", file=sys.stderr)
        return False
    names = {it.name for it in items}
    done = set(old.get("per_video", {})) | set(old.get("errors", {})) | set(old.get("skipped") or {})
    existing = [it.path.stat().st_mtime for it in items if it.path.is_file()]
    return (
        old.get("version") == metric.version
        and old.get("backend") == backend
        and done == names
        and out.stat().st_mtime >= max(existing, default=0)
    )


def _score_one(metric: Metric, backend: str, it: VideoItem, cfg: dict) -> VideoScore:
    """One video's score; every failure becomes a ``ValueError`` whose message names the file."""
    if not it.path.is_file():
        raise ValueError(f"{it.path}: no such video file (listed in {INDEX})")
    try:
        return metric.fn(it, backend, cfg)
    except (VideoReadError, MissingInputError, ValueError) as e:
        msg = str(e)
        raise ValueError(msg if str(it.path) in msg or it.name in msg else f"{it.path}: {msg}") from None


def score_set(metric: Metric, backend: str, items: list[VideoItem], cfg: dict) -> dict[str, Any]:
    """Score every video; failures go to ``errors`` and non-applicable videos to ``skipped``, with the reason."""
    per_video: dict[str, float] = {}
    curves: dict[str, list] = {}
    details: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    scores: list[VideoScore] = []
    for it in items:
        try:
            s = _score_one(metric, backend, it, cfg)
        except ValueError as e:
            errors[it.name] = str(e)
            print(f"error: {metric.name}@{backend}: {e}", file=sys.stderr)
            continue
        scores.append(s)
        if metric.details and s.extra:
            details[it.name] = s.extra
        if s.value is None:
            skipped[it.name] = s.skip or "not applicable"
            continue
        per_video[it.name] = s.value
        if s.curve is not None:
            curves[it.name] = s.curve
    res: dict[str, Any] = {
        "metric": metric.name,
        "version": metric.version,
        "backend": backend,
        "proxy_for": proxy_note(metric, backend),
        "direction": metric.direction,
        "n_videos": len(per_video),
        "aggregate": metric.reduce(scores),
        "per_video": per_video,
    }
    if curves:
        res["curves"] = {"x_label": metric.curve_label or "index", "y_label": metric.curve_unit, "per_video": curves}
    for key, val in (("details", details), ("skipped", skipped), ("errors", errors)):
        if val:
            res[key] = val
    return res


def backends_for(metric: Metric, backends: dict[str, str]) -> list[str]:
    """The chosen backend (per metric, per kind, default), then the ``also`` backends available here."""
    chosen = backends.get(metric.name) or backends.get(metric.backend_kind or "") or metric.default_backend
    extra = [b for b in metric.also if b != chosen and get_backend(metric, b).available() is None]
    return [chosen, *extra]


def evaluate_target(
    target: Target, metrics: list[str], backends: dict[str, str], cfg: dict, force: bool = False
) -> tuple[list[Path], int]:
    """Score one set with ``metrics``; returns written files and the number of per-video errors."""
    items = set_items(target)
    written, n_err = [], 0
    for name in metrics:
        metric = METRICS.get(name)
        if not applicable(metric, items):
            continue
        for backend in backends_for(metric, backends):
            out = target.out_dir / f"{name}@{backend}.json"
            if not force and _is_fresh(out, metric, backend, items):
                print(f"skip {out} (up to date)")
                continue
            t0 = time.time()
            res = score_set(metric, backend, items, cfg)
            res = {**res, "video_set": target.set_name, "config": {**cfg, "seconds": round(time.time() - t0, 2)}}
            atomic_write_json(out, {k: res[k] for k in RESULT_KEYS if k in res})
            n_err += len(res.get("errors", {}))
            written.append(out)
            proxy = f"  [proxy for {res['proxy_for']}]" if res.get("proxy_for") else ""
            print(f"wrote {out}  aggregate={res['aggregate']}{proxy}")
    return written, n_err


def check_names(metrics: list[str], backends: dict[str, str]) -> None:
    """Fail before any work on an unknown name or a chosen backend that cannot run here.

    Unknown metric, backend kind or backend names get "did you mean"; a backend whose weights or package are
    missing says what to install.
    """
    for m in metrics:
        metric = METRICS.get(m)
        chosen = backends.get(m) or backends.get(metric.backend_kind or "")
        if chosen:
            why = get_backend(metric, chosen).available()
            if why:
                raise FileNotFoundError(f"{m}@{chosen}: {why}")
    for key, name in backends.items():
        if key in BACKEND_KINDS:
            backend_registry(key).get(name)
        elif key in METRICS:
            get_backend(METRICS.get(key), name)
        else:
            options = BACKEND_KINDS.names() + METRICS.names()
            close = difflib.get_close_matches(key, options, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"--backend {key}={name}: {key!r} is neither a metric nor a backend kind.{hint} "
                f"Backend kinds: {', '.join(BACKEND_KINDS.names())}; metrics: see `aad-bench eval --list`"
            )


def evaluate_path(
    path: str | Path,
    metrics: list[str] | None = None,
    backends: dict[str, str] | None = None,
    cfg: dict | None = None,
    sets: list[str] | None = None,
    force: bool = False,
) -> tuple[list[Path], int]:
    """Evaluate every video set under ``path`` (default: every registered metric that applies).

    ``cfg["device"]`` (already resolved, e.g. by :func:`aad_bench.evaluation.device.resolve_eval_device`) is
    where weight-based backends run; the CPU when absent.
    """
    metrics = list(metrics or METRICS.names())
    backends = dict(backends or {})
    check_names(metrics, backends)
    targets = find_targets(path, sets)
    if not targets:
        raise FileNotFoundError(f"{path}: no video set named {', '.join(sets or [])}")
    written, n_err = [], 0
    with eval_device((cfg or {}).get("device")):  # weight-based backends are built there (CLI: --device)
        for t in targets:
            w, e = evaluate_target(t, metrics, backends, cfg or {}, force)
            written += w
            n_err += e
    return written, n_err

"""Run folders (+ optional campaign ``index.jsonl``) → one long-form DataFrame, one row per (run, metric).

Hot path: ``os.scandir`` + plain ``json``. Runs that diverged, failed, are still running or have no metric at
all still get one row each. Metric values come from ``eval/<set>/<metric>@<backend>.json`` (ours),
``*_eval_results.json`` (official VBench, backend ``vbench``, inside ``eval/<set>/`` or directly in a results
folder) and ``reported.json`` (numbers copied from a paper: ``source`` = "as reported"). Files of the wrong
shape are listed in ``df.attrs["problems"]`` and never stop the collection.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pandas as pd

from aad_bench.reporting.runs import (
    BAD,
    REPORTED,
    VBENCH_SUFFIX,
    Problem,
    assign_arms,
    find_runs,
    load_json,
    run_info,
)

VBENCH_BACKEND = "vbench"  # official files name no backend; their RAFT/AMT numbers get their own columns
DOWN = ("drift_score", "delta_drift")  # the only lower-is-better dimensions a reported table can hold
RUN_COLUMNS = [
    "run",
    "run_dir",
    "job",
    "method",
    "display",
    "order",
    "arm",
    "title",
    "seed",
    "stage",
    "status",
    "reason",
    "backbone",
    "logit",
    "nfe",
    "nfe_clip",
    "warmup",
    "source",
]
METRIC_COLUMNS = [
    "set",
    "metric",
    "version",
    "backend",
    "proxy_for",
    "direction",
    "value",
    "n_videos",
    "n_errors",
    "file",
]


def _num(v: Any) -> float:
    if isinstance(v, bool):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _row(set_name, metric, version, backend, proxy, direction, value, n, n_err, path) -> tuple:
    return (set_name, metric, version, backend, proxy, direction, value, n, n_err, path)


def _ours(set_name: str, path: str, name: str, problems: list[Problem]) -> list[tuple]:
    """The row of one ``<metric>@<backend>.json`` (a NaN row naming the file when unusable)."""
    metric, _, backend = name[:-5].partition("@")
    data = load_json(path, problems)
    why = None if data is BAD else _shape(data)
    if why:
        problems.append(Problem(path, why))
    if data is BAD or why:
        return [_row(set_name, metric, None, backend or None, None, None, math.nan, None, None, path)]
    version = data.get("version")
    return [
        _row(
            set_name,
            str(data.get("metric") or metric),
            str(version) if version is not None else None,
            str(data.get("backend") or backend or "") or None,
            data.get("proxy_for") if isinstance(data.get("proxy_for"), str) else None,
            data.get("direction") if data.get("direction") in ("up", "down") else None,
            _num(data.get("aggregate")),
            data.get("n_videos") if isinstance(data.get("n_videos"), int) else None,
            len(data.get("errors") or {}),
            path,
        )
    ]


def _shape(data: Any) -> str | None:
    if not isinstance(data, dict):
        return f"expected a metric result object, got a JSON {type(data).__name__}"
    agg = data.get("aggregate")
    if agg is not None and (isinstance(agg, bool) or not isinstance(agg, int | float)):
        return f"'aggregate' should be a number or null, got {type(agg).__name__}"
    for key in ("per_video", "errors", "curves", "skipped", "details"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"{key!r} should be an object, got {type(data[key]).__name__}"
    return None


def vbench_aggregate(entry: Any) -> float:
    """Element 0 of an official ``*_eval_results.json`` entry (0-1 scale, as VBench writes aggregates)."""
    return _num(entry[0]) if isinstance(entry, list) and entry else _num(entry)


def _official(set_name: str, path: str, problems: list[Problem]) -> list[tuple]:
    """Rows of one official VBench ``*_eval_results.json`` (``dim → [aggregate, (extra,) [videos]]``)."""
    data = load_json(path, problems)
    if data is BAD:
        return []
    if not isinstance(data, dict):
        problems.append(Problem(path, f"expected an object mapping dimension → results, got {type(data).__name__}"))
        return []
    rows = []
    for dim, entry in data.items():
        if not isinstance(entry, list) or not entry or math.isnan(vbench_aggregate(entry)):
            problems.append(Problem(path, f"dimension {dim!r} is not [aggregate, ..., [videos]]"))
            continue
        n = len(entry[-1]) if len(entry) > 1 and isinstance(entry[-1], list) else None
        rows.append(_row(set_name, dim, "vbench", VBENCH_BACKEND, None, "up", vbench_aggregate(entry), n, 0, path))
    return rows


def _reported(run_dir: str, problems: list[Problem]) -> list[tuple]:
    """Rows of ``reported.json``: numbers copied from a paper (0-1 scale, as VBench aggregates)."""
    path = os.path.join(run_dir, REPORTED)
    data = load_json(path, problems) if os.path.isfile(path) else None
    if not isinstance(data, dict) or not isinstance(data.get("scores"), dict):
        return []
    set_name = str(data.get("set") or "vbench")
    rows = []
    for metric, value in data["scores"].items():
        backend = str(data.get("backend") or VBENCH_BACKEND)
        direction = "down" if metric in DOWN else "up"
        rows.append(_row(set_name, metric, "reported", backend, None, direction, _num(value), None, None, path))
    return rows


def _scan_eval(run_dir: str, problems: list[Problem]) -> list[tuple]:
    rows: list[tuple] = []
    try:
        sets = sorted((e.name, e.path) for e in os.scandir(os.path.join(run_dir, "eval")) if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        sets = []
    for set_name, set_path in sets:
        ours, official = [], []
        for e in sorted(os.scandir(set_path), key=lambda e: e.name):
            if not e.name.endswith(".json") or e.name.startswith(".") or not e.is_file():
                continue
            if e.name.endswith(VBENCH_SUFFIX):
                official += _official(set_name, e.path, problems)
            elif "@" in e.name:
                ours += _ours(set_name, e.path, e.name, problems)
        # a raw VBench file next to its ``<dim>@vbench.json`` conversion must not count twice
        seen = {(r[1], r[3]) for r in ours}
        rows += ours + [r for r in official if (r[1], r[3]) not in seen]
    try:  # official results straight in a results folder (no eval/<set>/ around them)
        loose = sorted(e.path for e in os.scandir(run_dir) if e.name.endswith(VBENCH_SUFFIX) and e.is_file())
    except (FileNotFoundError, NotADirectoryError):
        loose = []
    for path in loose:
        rows += _official(VBENCH_BACKEND, path, problems)
    return rows + _reported(run_dir, problems)


def collect(root: str | os.PathLike) -> pd.DataFrame:
    """Long-form table of a campaign: ``RUN_COLUMNS`` + swept-setting columns + ``METRIC_COLUMNS``.

    A run without metrics (diverged, failed, not evaluated) appears once with ``metric`` = None;
    ``df.attrs["problems"]`` lists every file or index line that could not be used, with the reason.
    """
    problems: list[Problem] = []
    found = find_runs(root, problems)
    infos = [run_info(run_dir, idx, problems) for run_dir, idx in found]
    swept = assign_arms(infos)
    records: list[tuple] = []
    settings: list[dict[str, str]] = []
    for (run_dir, _), info in zip(found, infos):
        head = tuple(info[c] for c in RUN_COLUMNS)
        rows = _scan_eval(run_dir, problems) or [(None,) * 6 + (math.nan, None, None, None)]
        records.extend(head + r for r in rows)
        settings.extend([info["settings"]] * len(rows))
    df = pd.DataFrame.from_records(records, columns=RUN_COLUMNS + METRIC_COLUMNS)
    for k in swept:
        df[k if k not in df.columns else f"override.{k}"] = [s.get(k) for s in settings]
    df.attrs["axes"] = swept
    df.attrs["root"] = os.fspath(root)
    df.attrs["problems"] = [{"path": p.path, "problem": p.problem} for p in problems]
    return df


def collect_per_video(
    df: pd.DataFrame, metric: str, backend: str | None = None, set_name: str | None = None
) -> pd.DataFrame:
    """Per-video values of one metric for the runs in ``df``: columns run, arm, seed, status, set, video, value."""
    sel = df[df["metric"] == metric]
    if isinstance(backend, str):
        sel = sel[sel["backend"] == backend]
    if isinstance(set_name, str):
        sel = sel[sel["set"] == set_name]
    out: list[tuple] = []
    scratch: list[Problem] = []
    for row in sel.itertuples(index=False):
        data = load_json(row.file, scratch) if isinstance(row.file, str) and os.path.isfile(row.file) else None
        if not isinstance(data, dict):
            continue
        if row.file.endswith(VBENCH_SUFFIX):
            entry = data.get(metric)
            videos = entry[-1] if isinstance(entry, list) and len(entry) > 1 and isinstance(entry[-1], list) else []
            scale = 100.0 if metric == "imaging_quality" else 1.0  # VBench writes per-video MUSIQ on 0-100
            items = [
                (os.path.basename(str(d.get("video_path"))), _num(d.get("video_results")) / scale)
                for d in videos
                if isinstance(d, dict)
            ]
        else:
            pv = data.get("per_video")
            items = [(v, _num(x)) for v, x in (pv.items() if isinstance(pv, dict) else [])]
        out.extend((row.run, row.arm, row.seed, row.status, row.set, v, x) for v, x in items)
    return pd.DataFrame.from_records(out, columns=["run", "arm", "seed", "status", "set", "video", "value"])

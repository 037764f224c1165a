"""Run folders (+ optional campaign ``index.jsonl``) → one long-form DataFrame, one row per (run, metric).

Hot path: ``os.scandir`` + plain ``json``; ``config.yaml`` is never parsed here (see ``html.py`` for diffs).
Runs that diverged, failed, are still running or have no metric at all still get one row each.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from aad_bench.utils.io import MalformedFileError, read_jsonl

# discriminator ablation axes per method name: (backbone, logit granularity)
METHOD_DISC: dict[str, tuple[str, str]] = {
    "aad1": ("bidirectional", "video"),
    "symmetric": ("causal", "frame"),
    "causal_video": ("causal", "video"),
    "bidir_frame": ("bidirectional", "frame"),
    "patch": ("bidirectional", "patch"),
}
# one NFE per chunk for every distilled generator; the teacher's NFE must come from the run itself
METHOD_NFE: dict[str, int] = {m: 1 for m in (*METHOD_DISC, "dmd")}
HEAD_ALIASES = {
    "video": "video",
    "video_wise": "video",
    "video-wise": "video",
    "frame": "frame",
    "frame_wise": "frame",
    "frame-wise": "frame",
    "patch": "patch",
}
BACKBONE_ALIASES = {"bidirectional": "bidirectional", "bidir": "bidirectional", "causal": "causal"}
VBENCH_SUFFIX = "_eval_results.json"
# official VBench files name no backend: label them "vbench", as the evaluation side's ``<dim>@vbench.json``
# conversions of the same files are, so VBench's RAFT numbers never share a column with native DIS/RAFT ones
VBENCH_BACKEND = "vbench"

RUN_COLUMNS = [
    "run",
    "run_dir",
    "job",
    "method",
    "arm",
    "seed",
    "stage",
    "status",
    "reason",
    "backbone",
    "logit",
    "nfe",
    "warmup",
]
METRIC_COLUMNS = [
    "set",
    "metric",
    "version",
    "backend",
    "direction",
    "value",
    "n_videos",
    "n_errors",
    "source",
]


def parse_overrides(overrides: list[str] | None) -> dict[str, str]:
    """``["method=aad1", "+x.y=3"]`` → ``{"method": "aad1", "x.y": "3"}`` (Hydra prefixes stripped)."""
    out: dict[str, str] = {}
    for ov in overrides or []:
        key, sep, val = str(ov).partition("=")
        if sep:
            out[key.lstrip("+~")] = val
    return out


def _bool(val: Any) -> bool | None:
    if isinstance(val, bool) or val is None:
        return val
    s = str(val).strip().lower()
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(s)


def _int(val: Any) -> int | None:
    try:
        return int(val)
    except (TypeError, ValueError):
        return None


def _warmup(method: str, ov: dict[str, str], summary: dict[str, Any]) -> bool | None:
    """Whether Stage II (DMD warm-up) preceded Stage III: summary/override if given, else yes."""
    if "warmup" in summary:
        return _bool(summary["warmup"])
    for key, val in ov.items():
        if "warmup" in key.rsplit(".", 1)[-1]:
            b = _bool(val)
            return b if b is not None else (_int(val) or 0) > 0
    return True if method in METHOD_DISC else None


def _disc(method: str, summary: dict[str, Any]) -> tuple[str | None, str | None]:
    disc = summary.get("disc")
    if isinstance(disc, dict) and (disc.get("backbone") or disc.get("head")):
        bb = BACKBONE_ALIASES.get(str(disc.get("backbone")).lower(), disc.get("backbone"))
        head = HEAD_ALIASES.get(str(disc.get("head")).lower(), disc.get("head"))
        return bb, head
    return METHOD_DISC.get(method, (None, None))


def _nfe(method: str, ov: dict[str, str], summary: dict[str, Any]) -> int | None:
    if _int(summary.get("nfe")) is not None:
        return _int(summary["nfe"])
    for key, val in ov.items():
        if key.rsplit(".", 1)[-1] == "nfe" and _int(val) is not None:
            return _int(val)
    return METHOD_NFE.get(method)


def arm_label(method: str, axes: dict[str, str]) -> str:
    """Canonical arm name: the method plus every non-seed override, sorted (so seeds of one arm group)."""
    extra = ",".join(f"{k}={v}" for k, v in sorted(axes.items()))
    return f"{method} [{extra}]" if extra else method


def _load_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise MalformedFileError(f"{path}: malformed JSON ({e.msg} at line {e.lineno})") from None


def _run_info(run_dir: str, index_row: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The per-run columns (see ``RUN_COLUMNS``) and the ablation axes of one run folder."""
    idx = index_row or {}
    res: dict[str, Any] = {}
    status, reason = None, None
    try:
        res = _load_json(os.path.join(run_dir, "results.json"))
        status, reason = res.get("status"), res.get("reason")
    except FileNotFoundError:
        status, reason = idx.get("status") or "missing", idx.get("error") or "no results.json"
    except (MalformedFileError, UnicodeDecodeError) as e:
        status, reason = "malformed", str(e)
    ov = parse_overrides(res.get("overrides") or idx.get("overrides"))
    summary = res.get("summary") if isinstance(res.get("summary"), dict) else {}
    method = str(res.get("method") or ov.get("method") or "unknown")
    seed = _int(res.get("seed", ov.get("seed")))
    axes = {k: v for k, v in ov.items() if k not in ("method", "seed")}
    backbone, logit = _disc(method, summary)
    info = {
        "run": res.get("run_name") or os.path.basename(run_dir.rstrip("/")),
        "run_dir": run_dir,
        "job": idx.get("job"),
        "method": method,
        "arm": arm_label(method, axes),
        "seed": seed,
        "stage": res.get("stage"),
        "status": status,
        "reason": reason,
        "backbone": backbone,
        "logit": logit,
        "nfe": _nfe(method, ov, summary),
        "warmup": _warmup(method, ov, summary),
    }
    return info, axes


def _num(v: Any) -> float:
    if isinstance(v, bool):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _metric_rows(set_name: str, path: str, name: str) -> list[tuple]:
    """Rows (``METRIC_COLUMNS`` order) from one eval file: ours (``metric@backend.json``) or VBench's."""
    try:
        data = _load_json(path)
    except (MalformedFileError, UnicodeDecodeError, OSError) as e:
        metric, _, backend = name[:-5].partition("@")
        return [(set_name, metric, None, backend or None, None, math.nan, None, None, f"{path} ({e})")]
    if name.endswith(VBENCH_SUFFIX):
        return [
            (
                set_name,
                dim,
                "vbench",
                VBENCH_BACKEND,
                "up",
                vbench_aggregate(dim, entry),
                _n_vbench(entry),
                0,
                path,
            )
            for dim, entry in data.items()
        ]
    metric, _, backend = name[:-5].partition("@")
    return [
        (
            set_name,
            data.get("metric", metric),
            str(data.get("version")) if data.get("version") is not None else None,
            data.get("backend", backend or None),
            data.get("direction"),
            _num(data.get("aggregate")),
            data.get("n_videos"),
            len(data.get("errors") or {}),
            path,
        )
    ]


def vbench_aggregate(dim: str, entry: Any) -> float:
    """Element 0 of an official ``*_eval_results.json`` entry (0-1 scale, as VBench writes aggregates)."""
    return _num(entry[0]) if isinstance(entry, list) and entry else _num(entry)


def _n_vbench(entry: Any) -> int | None:
    return (
        len(entry[1]) if isinstance(entry, list) and len(entry) > 1 and isinstance(entry[1], list) else None
    )


def _scan_eval(run_dir: str) -> list[tuple]:
    rows: list[tuple] = []
    try:
        sets = sorted((e.name, e.path) for e in os.scandir(os.path.join(run_dir, "eval")) if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return rows
    for set_name, set_path in sets:
        ours, official = [], []
        for e in sorted(os.scandir(set_path), key=lambda e: e.name):
            if e.name.endswith(".json") and not e.name.startswith(".") and e.is_file():
                if e.name.endswith(VBENCH_SUFFIX):
                    official.extend(_metric_rows(set_name, e.path, e.name))
                elif "@" in e.name:
                    ours.extend(_metric_rows(set_name, e.path, e.name))
        # a raw VBench file next to its ``<dim>@vbench.json`` conversion must not count twice
        seen = {(r[1], r[3]) for r in ours}
        rows += ours + [r for r in official if (r[1], r[3]) not in seen]
    return rows


def read_index(campaign: str | os.PathLike) -> list[dict[str, Any]]:
    """The campaign's ``index.jsonl``: latest line per ``job`` wins, in job order."""
    latest: dict[Any, dict[str, Any]] = {}
    for row in read_jsonl(Path(campaign) / "index.jsonl"):
        latest[row.get("job", len(latest))] = row
    return [latest[k] for k in sorted(latest, key=str)]


def find_runs(root: str | os.PathLike) -> list[tuple[str, dict[str, Any] | None]]:
    """``(run_dir, index_row)`` pairs under a campaign folder, a folder of runs, or one run folder."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder")
    if os.path.isfile(os.path.join(root, "results.json")):
        return [(root, None)]
    by_dir: dict[str, dict[str, Any] | None] = {}
    for row in read_index(root):
        rd = row.get("run_dir")
        key = os.path.normpath(os.path.join(root, rd)) if rd else f"<job {row.get('job')}>"
        by_dir[key] = row
    base = os.path.join(root, "runs") if os.path.isdir(os.path.join(root, "runs")) else root
    for e in os.scandir(base):
        if e.is_dir() and not e.name.startswith("."):
            by_dir.setdefault(os.path.normpath(e.path), None)
    return sorted(by_dir.items())


def collect(root: str | os.PathLike) -> pd.DataFrame:
    """Long-form table of a campaign: ``RUN_COLUMNS`` + ablation-axis columns + ``METRIC_COLUMNS``.

    A run without metrics (diverged, failed, not evaluated) appears once with ``metric`` = None.
    """
    records: list[tuple] = []
    all_axes: list[dict[str, str]] = []
    for run_dir, idx in find_runs(root):
        info, axes = _run_info(run_dir, idx)
        head = tuple(info[c] for c in RUN_COLUMNS)
        rows = _scan_eval(run_dir) or [(None,) * 5 + (math.nan, None, None, None)]
        records.extend(head + r for r in rows)
        all_axes.extend([axes] * len(rows))
    df = pd.DataFrame.from_records(records, columns=RUN_COLUMNS + METRIC_COLUMNS)
    keys = sorted({k for a in all_axes for k in a})
    for k in keys:
        col = k if k not in df.columns else f"override.{k}"
        df[col] = [a.get(k) for a in all_axes]
    df.attrs["axes"] = keys
    df.attrs["root"] = os.fspath(root)
    return df


def collect_per_video(
    df: pd.DataFrame, metric: str, backend: str | None = None, set_name: str | None = None
) -> pd.DataFrame:
    """Per-video values of one metric for the runs in ``df``: columns run, arm, seed, status, video, value."""
    sel = df[df["metric"] == metric]
    if isinstance(backend, str):
        sel = sel[sel["backend"] == backend]
    if isinstance(set_name, str):
        sel = sel[sel["set"] == set_name]
    out: list[tuple] = []
    for row in sel.itertuples(index=False):
        try:
            data = _load_json(row.source)
        except (OSError, MalformedFileError):
            continue
        if row.source.endswith(VBENCH_SUFFIX):
            entry = data.get(metric, [None, []])
            items = [
                (os.path.basename(str(d.get("video_path"))), d.get("video_results"))
                for d in (entry[1] if isinstance(entry, list) and len(entry) > 1 else [])
            ]
            items = [(v, _num(x) / (100.0 if metric == "imaging_quality" else 1.0)) for v, x in items]
        else:
            items = [(v, _num(x)) for v, x in (data.get("per_video") or {}).items()]
        out.extend((row.run, row.arm, row.seed, row.status, row.set, v, x) for v, x in items)
    return pd.DataFrame.from_records(out, columns=["run", "arm", "seed", "status", "set", "video", "value"])

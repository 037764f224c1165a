"""Which runs a report covers and what each run is: campaign index, run folders, results.json, arms.

Everything about a method (display name, order, discriminator, NFE) comes from the run's own ``results.json``
(``method_info``, written from the method's YAML) or, for older runs, from the ``method`` section of its
``config.yaml``; nothing here lists methods. Every reader checks shape as well as syntax: a file or index line of
the wrong shape becomes a :class:`Problem` (path + why) and the rest of the campaign goes on.

An **arm** is a method plus the swept settings of its run: the job's overrides minus seeds and run plumbing
(:data:`PLUMBING`); only settings whose values differ between the campaign's runs name an arm, so an override
every run shares (``size=tiny``) neither names nor splits anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aad_bench.campaign.index import CampaignIndex

VBENCH_SUFFIX = "_eval_results.json"
REPORTED = "reported.json"
# top-level config keys that change where or how a run executes, never what it computes
PLUMBING = frozenset(
    {"paths", "progress", "slurm", "hydra", "launcher", "campaign", "seed", "device", "resume", "log", "cache"}
)
VALUE_STATUSES = ("finished", "evaluated", "reported")  # runs whose numbers count


@dataclass
class Problem:
    """A file (or line) that could not be used, and why; reports list them."""

    path: str
    problem: str


def _json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.loads(f.read())


BAD = object()  # what :func:`load_json` returns for a file it could not parse (JSON ``null`` is ``None``)


def load_json(path: str, problems: list[Problem]) -> Any:
    """Parsed JSON, or :data:`BAD` plus a :class:`Problem` when unreadable; a missing file raises."""
    try:
        return _json(path)
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problems.append(Problem(path, f"malformed JSON ({getattr(e, 'msg', e)})"))
    except OSError as e:
        problems.append(Problem(path, f"unreadable ({e.strerror or e})"))
    return BAD


def read_index(campaign: str | os.PathLike, problems: list[Problem] | None = None) -> list[dict[str, Any]]:
    """The campaign's ``index.jsonl``: one merged record per job, in job order.

    Read through :class:`~aad_bench.campaign.index.CampaignIndex` (the campaign's own reader). Torn or
    wrong-shaped lines anywhere are skipped and recorded in ``problems`` (one entry with the count and line
    numbers), so one bad line never makes the campaign unreadable.
    """
    problems = [] if problems is None else problems
    index = CampaignIndex(campaign)
    try:
        jobs = index.latest()
    except (NotADirectoryError, IsADirectoryError, PermissionError) as e:
        problems.append(Problem(str(index.path), f"unreadable ({e})"))
        return []
    if index.skipped:
        bad = [f"{n} ({'torn' if why.startswith('torn') else why})" for n, why in index.skipped]
        problems.append(Problem(str(index.path), f"{len(bad)} line(s) skipped: {', '.join(bad[:10])}"))
    return list(jobs.values())


def _has_results(path: str) -> bool:
    """A run folder, or a folder of numbers a report can read (eval/, official VBench or reported files)."""
    if any(os.path.isfile(os.path.join(path, f)) for f in ("results.json", REPORTED, "config.yaml")):
        return True
    if os.path.isdir(os.path.join(path, "eval")):
        return True
    try:
        return any(e.name.endswith(VBENCH_SUFFIX) for e in os.scandir(path))
    except OSError:
        return False


def find_runs(root: str | os.PathLike, problems: list[Problem] | None = None) -> list[tuple[str, dict | None]]:
    """``(run_dir, index_row)`` pairs under a campaign folder, a folder of runs, or one run / results folder."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder")
    if _has_results(root) and not os.path.isfile(os.path.join(root, "index.jsonl")):
        return [(root, None)]
    by_dir: dict[str, dict[str, Any] | None] = {}
    for row in read_index(root, problems):
        rd = row.get("run_dir")
        key = os.path.normpath(os.path.join(root, rd)) if rd else f"<job {row.get('job')}>"
        by_dir[key] = row
    base = os.path.join(root, "runs") if os.path.isdir(os.path.join(root, "runs")) else root
    for e in os.scandir(base):
        if e.is_dir() and not e.name.startswith(".") and (base != root or _has_results(e.path)):
            by_dir.setdefault(os.path.normpath(e.path), None)
    return sorted(by_dir.items())


def parse_overrides(overrides: list[Any] | None) -> dict[str, str]:
    """``["method=aad1", "+x.y=3"]`` → ``{"method": "aad1", "x.y": "3"}`` (Hydra prefixes stripped)."""
    out: dict[str, str] = {}
    for ov in overrides or []:
        key, sep, val = str(ov).partition("=")
        if sep:
            out[key.lstrip("+~")] = val
    return out


def settings(overrides: dict[str, str]) -> dict[str, str]:
    """The overrides that may name an arm: not the method, not a seed, not run plumbing."""
    return {k: v for k, v in overrides.items() if k != "method" and k.split(".", 1)[0] not in PLUMBING}


def _results_shape(res: Any) -> str | None:
    if not isinstance(res, dict):
        return f"expected an object, got a JSON {type(res).__name__}"
    checks = {
        "run_dir": str,
        "status": str,
        "reason": str,
        "method": str,
        "overrides": list,
        "summary": dict,
        "method_info": dict,
    }
    for key, kind in checks.items():
        if res.get(key) is not None and not isinstance(res[key], kind):
            return f"{key!r} should be a {kind.__name__}, got {type(res[key]).__name__}"
    return None


def _config_method(run_dir: str) -> dict[str, Any]:
    """The ``method`` section of ``config.yaml`` (the fallback for runs without ``method_info``)."""
    import yaml

    try:
        cfg = yaml.safe_load(Path(run_dir, "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    m = cfg.get("method") if isinstance(cfg, dict) else None
    return m if isinstance(m, dict) else {}


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _warmup(res: dict, summary: dict, ov: dict[str, str], stages: Any) -> bool | None:
    """Whether Stage II (DMD warm-up) preceded Stage III: results / summary / override / the method's stages."""
    for v in (res.get("warmup"), summary.get("warmup")):
        if isinstance(v, bool):
            return v
    for key, val in ov.items():
        if "warmup" in key.rsplit(".", 1)[-1]:
            s = val.strip().lower()
            return s not in ("false", "0", "no", "none", "null")
    if isinstance(stages, list) and "gan" in stages:
        return "dmd" in stages
    return None


def _status(run_dir: str, idx: dict, problems: list[Problem]) -> tuple[dict, str, str | None]:
    """(results object, status, reason) of one run folder; wrong shapes are ``malformed`` with the path."""
    path = os.path.join(run_dir, "results.json")
    try:
        res = load_json(path, problems)
    except (FileNotFoundError, NotADirectoryError):
        return _without_results(run_dir, idx, problems)
    if res is BAD:
        return {}, "malformed", f"{path}: {problems[-1].problem}"
    why = _results_shape(res)
    if why:
        problems.append(Problem(path, why))
        return {}, "malformed", f"{path}: {why}"
    return res, res.get("status") or "unknown", res.get("reason")


def _without_results(run_dir: str, idx: dict, problems: list[Problem]) -> tuple[dict, str, str | None]:
    rep = os.path.join(run_dir, REPORTED)
    if os.path.isfile(rep):
        data = load_json(rep, problems)
        if isinstance(data, dict) and isinstance(data.get("scores"), dict):
            return data, "reported", f"as reported: {data.get('source') or 'source not given'}"
        if data is not BAD:
            problems.append(Problem(rep, "expected an object with a 'scores' mapping"))
        return {}, "malformed", f"{rep}: not a reported-scores object"
    if os.path.isdir(run_dir) and _has_results(run_dir):
        return {}, "evaluated", "no results.json: numbers from its eval files only"
    return {}, idx.get("status") or "missing", idx.get("error") or "no results.json"


def run_info(run_dir: str, index_row: dict[str, Any] | None, problems: list[Problem]) -> dict[str, Any]:
    """The per-run columns of a report (method, its attributes, seed, status, settings) of one run folder."""
    idx = index_row or {}
    res, status, reason = _status(run_dir, idx, problems)
    ov = parse_overrides(res.get("overrides") or idx.get("overrides"))
    summary = res.get("summary") if isinstance(res.get("summary"), dict) else {}
    info = res.get("method_info") if isinstance(res.get("method_info"), dict) else None
    if info is None and status not in ("reported", "malformed", "missing") and os.path.isdir(run_dir):
        info = _config_method(run_dir)
    info = info or {}
    name = os.path.basename(run_dir.rstrip("/"))
    fallback = name if status != "missing" else "unknown"
    method = str(res.get("method") or info.get("name") or ov.get("method") or fallback)
    gan = info.get("gan") if isinstance(info.get("gan"), dict) else {}  # config.yaml: method.gan.disc
    disc = next(
        (d for d in (info.get("disc"), summary.get("disc"), res.get("disc"), gan.get("disc")) if isinstance(d, dict)),
        {},
    )
    seed = res.get("seed", ov.get("seed"))
    return {
        "run": str(res.get("run_name") or name),
        "run_dir": run_dir,
        "job": idx.get("job"),
        "method": method,
        "display": str(res.get("display") or info.get("display") or method),
        "order": _num(info.get("order")),
        "seed": int(seed) if isinstance(seed, int | str) and str(seed).lstrip("-").isdigit() else None,
        "stage": res.get("stage") if isinstance(res.get("stage"), str) else None,
        "status": status,
        "reason": reason,
        "backbone": disc.get("backbone"),
        "logit": disc.get("head") or disc.get("logit"),
        "nfe": _num(info.get("nfe_per_chunk")) or _num(res.get("nfe")) or _num(summary.get("nfe")),
        "nfe_clip": _num(summary.get("nfe")),
        "warmup": _warmup(res, summary, ov, info.get("stages") or res.get("stages")),
        "source": "as reported" if status == "reported" else "re-evaluated",
        "settings": settings(ov),
        # a public checkpoint sampled beside the runs (task "public"): its settings are compared only with other
        # runs of the same public model, so they never name or split our arms
        "public": method if res.get("task") == "public" else None,
    }


def assign_arms(infos: list[dict[str, Any]]) -> list[str]:
    """Swept setting keys (values differ between runs); sets each info's ``arm`` and ``title`` in place.

    A run that could not say what its method is (a job that failed before its folder existed) borrows the
    display name and order from another run of the same method. Runs of a public checkpoint (``task`` public)
    are compared among runs of the same public model only.
    """
    known: dict[str, tuple[str, float | None]] = {}
    for i in infos:
        if i["order"] is not None or i["display"] != i["method"]:
            known.setdefault(i["method"], (i["display"], i["order"]))
    for i in infos:
        if i["order"] is None and i["display"] == i["method"] and i["method"] in known:
            i["display"], i["order"] = known[i["method"]]
    swept: list[str] = []
    for group in sorted({i.get("public") for i in infos}, key=lambda g: (g is not None, g or "")):
        members = [i for i in infos if i.get("public") == group]
        keys = sorted({k for i in members for k in i["settings"]})
        axes = [k for k in keys if len({i["settings"].get(k) for i in members}) > 1]
        swept += [k for k in axes if k not in swept]
        for i in members:
            extra = ",".join(f"{k}={i['settings'][k]}" for k in axes if k in i["settings"])
            i["arm"] = f"{i['method']} [{extra}]" if extra else i["method"]
            i["title"] = f"{i['display']} [{extra}]" if extra else i["display"]
    return swept

"""Report figures (matplotlib, Agg backend): metric curves, trade-off, training curves, long-rollout frames.

Each function reads only run-folder files (eval JSON ``curves``, ``metrics.jsonl``, ``videos/long/*.mp4``),
writes PNGs into ``out_dir`` and returns ``[(caption, path), ...]`` for the figures it made (none if no data).
Every figure is titled with what it plots (metric, unit, backend) and the video set; lines are labelled with
the arms' display names, and legends sit outside the axes so they never hide data or titles.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from aad_bench.reporting.runs import VALUE_STATUSES  # noqa: E402
from aad_bench.utils.io import read_jsonl  # noqa: E402

MAX_ARMS = 12  # more lines than this are unreadable; the tables still hold every arm
Figure = tuple[str, Path]


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=90, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _slug(*parts: object) -> str:
    return "_".join(str(p) for p in parts if p).replace("/", "-").replace("@", "-").replace(" ", "")


def _titles(df: pd.DataFrame) -> dict[str, str]:
    first = df.drop_duplicates("arm")
    col = first["title"] if "title" in first else first["arm"]
    return {a: (t if isinstance(t, str) else a) for a, t in zip(first["arm"], col)}


def _legend(ax: plt.Axes, n: int) -> None:
    if n:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _run_curve(path: str) -> tuple[list, str, str, np.ndarray] | None:
    """(x, x label, y label, mean over videos) of one eval file's ``curves`` (shortest video's length)."""
    try:
        with open(path, encoding="utf-8") as f:
            curves = json.load(f).get("curves")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(curves, dict) or not isinstance(curves.get("per_video"), dict):
        return None
    per = [np.asarray(v, float) for v in curves["per_video"].values() if isinstance(v, list) and v]
    per = [v for v in per if v.ndim == 1]
    if not per:
        return None
    n = min(len(v) for v in per)
    x = curves.get("x") if isinstance(curves.get("x"), list) else list(range(n))
    return (
        x[:n],
        str(curves.get("x_label") or "index"),
        str(curves.get("y_label") or ""),
        np.mean([v[:n] for v in per], 0),
    )


def plot_curves(df: pd.DataFrame, out_dir: Path) -> list[Figure]:
    """Per (set, backend, curve kind): each arm's mean over runs ± one std band over runs.

    Metrics that store the same curve (drift_score and delta_drift both keep per-segment quality) share one
    figure, titled with both.
    """
    figs: list[Figure] = []
    titles = _titles(df)
    ok = df[df["status"].isin(VALUE_STATUSES) & df["file"].notna()]
    groups: dict[tuple, dict] = {}
    for (set_name, metric, backend), sel in ok.groupby(["set", "metric", "backend"], sort=True):
        by_arm: dict[str, list[np.ndarray]] = defaultdict(list)
        x, x_label, y_label = None, "", ""
        for arm, path in zip(sel["arm"], sel["file"]):
            got = _run_curve(path)
            if got is not None:
                x, x_label, y_label, y = got
                by_arm[arm].append(y)
        if by_arm:
            key = (set_name, backend, y_label or metric, x_label)
            g = groups.setdefault(key, {"metrics": [], "by_arm": by_arm, "x": x})
            g["metrics"].append(metric)
    for (set_name, backend, y_label, x_label), g in groups.items():
        arms = sorted(g["by_arm"], key=lambda a: titles.get(a, a))
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        for arm in arms[:MAX_ARMS]:
            n = min(len(y) for y in g["by_arm"][arm])
            ys = np.stack([y[:n] for y in g["by_arm"][arm]])
            mean, sd = ys.mean(0), ys.std(0, ddof=1) if len(ys) > 1 else np.zeros(n)
            (line,) = ax.plot(g["x"][:n], mean, label=f"{titles.get(arm, arm)} (n={len(ys)})")
            ax.fill_between(g["x"][:n], mean - sd, mean + sd, color=line.get_color(), alpha=0.2)
        names = " / ".join(g["metrics"])
        ax.set(xlabel=x_label, ylabel=y_label)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(f"{names} ({backend}) — set '{set_name}'", fontsize=9)
        _legend(ax, len(arms))
        path = _save(fig, out_dir / f"curve_{_slug(set_name, g['metrics'][0], backend)}.png")
        more = f"; {MAX_ARMS} of {len(arms)} arms" if len(arms) > MAX_ARMS else ""
        figs.append((f"{y_label} behind {names} ({backend}), set '{set_name}': mean over runs ± 1 std{more}", path))
    return figs


def plot_tradeoff(agg: pd.DataFrame, out_dir: Path) -> list[Figure]:
    """Per set and flow backend: dynamic degree vs consistency ((subject + background)/2), one point per arm."""
    figs: list[Figure] = []
    have = agg[agg["n"] > 0]
    titles = _titles(agg)
    for (set_name, backend), dyn in have[have["metric"] == "dynamic_degree"].groupby(["set", "backend"]):
        cons = have[(have["set"] == set_name) & have["metric"].isin(["subject_consistency", "background_consistency"])]
        cons = cons[(cons["backend"] == "vbench") == (backend == "vbench")]  # official with official only
        if cons.empty:
            continue
        # one backend per metric (real weights before proxies, then the most arms): never averaged across
        proxy = cons["proxy_for"].notna() if "proxy_for" in cons else pd.Series(False, index=cons.index)
        count = cons.groupby(["metric", "backend"])["arm"].transform("count")
        cons = cons.assign(_p=proxy, _c=-count).sort_values(["_p", "_c", "backend"])
        pick = cons.drop_duplicates("metric")[["metric", "backend"]]
        cons = cons.merge(pick, on=["metric", "backend"])
        c_backend = "+".join(sorted(set(cons["backend"])))
        cons = cons.groupby("arm").agg(c=("mean", "mean"), ce=("ci", "mean"))
        pts = dyn.set_index("arm").join(cons, how="inner")
        if len(pts) < 2:  # a trade-off needs two arms to compare
            continue
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        for arm, r in pts.iterrows():
            ax.errorbar(
                r["c"] * 100,
                r["mean"] * 100,
                xerr=_nz(r["ce"]) * 100,
                yerr=_nz(r["ci"]) * 100,
                fmt="o",
                capsize=3,
                label=titles.get(arm, arm),
            )
        ax.set(
            xlabel=f"consistency (subject+background)/2 ×100 ({c_backend})", ylabel=f"dynamic degree ×100 ({backend})"
        )
        ax.set_title(f"Dynamic degree vs consistency — set '{set_name}'", fontsize=9)
        _legend(ax, len(pts))
        path = _save(fig, out_dir / f"tradeoff_{_slug(set_name, backend)}.png")
        what = f"dynamic degree ({backend}) vs consistency ({c_backend})"
        figs.append((f"Trade-off on '{set_name}': {what}; bars = 95% CI where n ≥ 2", path))
    return figs


def _nz(v: float) -> float:
    return 0.0 if v is None or not math.isfinite(v) else float(v)


def plot_training(df: pd.DataFrame, out_dir: Path, max_runs: int = 200) -> list[Figure]:
    """Training curves per stage from ``metrics.jsonl``: every ``loss/*`` key and ``d_acc``, mean per arm."""
    titles = _titles(df)
    runs = df.drop_duplicates("run_dir")[["run_dir", "arm"]].head(max_runs)
    data: dict[str, dict[str, dict[str, list]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run_dir, arm in runs.itertuples(index=False):
        try:
            rows = read_jsonl(Path(run_dir) / "metrics.jsonl")
        except (OSError, ValueError):
            continue
        for r in rows:
            if not isinstance(r, dict) or not isinstance(r.get("step"), int | float):
                continue
            for k, v in r.items():
                if (k.startswith("loss/") or k == "d_acc") and isinstance(v, int | float):
                    data[str(r.get("stage"))][k][arm].append((r["step"], float(v)))
    figs: list[Figure] = []
    for stage, keys in sorted(data.items()):
        fig, axes = plt.subplots(1, len(keys), figsize=(3.0 * len(keys) + 1.6, 2.9), squeeze=False)
        for ax, (key, arms) in zip(axes[0], sorted(keys.items())):
            for arm in sorted(arms)[:MAX_ARMS]:
                s = pd.DataFrame(arms[arm], columns=["step", "v"]).groupby("step")["v"].mean()
                ax.plot(s.index, s.to_numpy(), label=titles.get(arm, arm), lw=1)
            ax.set_title(key, fontsize=8)
            ax.set_xlabel("step", fontsize=8)
        _legend(axes[0][-1], len(runs))
        fig.suptitle(f"Training curves, stage {stage} (mean over seeds)", fontsize=9)
        fig.tight_layout()
        path = _save(fig, out_dir / f"training_{_slug(stage)}.png")
        figs.append((f"Training curves, stage {stage}: each loss and d_acc per step, mean over seeds", path))
    return figs


def frame_strips(df: pd.DataFrame, out_dir: Path, per_part: int = 3) -> list[Figure]:
    """Contact sheet: for each arm, frames at the start, middle and end of its first long rollout."""
    from aad_bench.video.io import VideoReadError, contact_sheet, read_video

    rows, labels = [], []
    titles = _titles(df)
    runs = df[df["status"].isin(VALUE_STATUSES)].drop_duplicates("run_dir")
    for arm, sel in runs.groupby("arm", sort=True):
        for run_dir in sel["run_dir"]:
            vids = sorted(Path(run_dir, "videos", "long").glob("*.mp4"))
            if not vids:
                continue
            try:
                frames, _ = read_video(vids[0])
            except VideoReadError:
                continue
            if frames.ndim != 4 or frames.shape[-1] != 3:  # a decoder quirk must not break the report
                continue
            t = len(frames)
            mid = max(0, t // 2 - per_part // 2)
            idx = [*range(min(per_part, t)), *range(mid, min(mid + per_part, t)), *range(max(0, t - per_part), t)]
            rows.append(frames[idx])
            labels.append(titles.get(arm, arm))
            break
        if len(rows) >= MAX_ARMS:
            break
    if not rows:
        return []
    path = contact_sheet(rows, out_dir / "frames_long.png", max_frames=3 * per_part, labels=labels, scale=3)
    return [("Set 'long': frames at the start | middle | end of each arm's first long rollout (one row per arm)", path)]

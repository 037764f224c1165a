"""Report figures (matplotlib, Agg backend): time curves, drift per segment, trade-off, training, frames.

Each function reads only run-folder files (eval JSON ``curves``, ``metrics.jsonl``, ``videos/long/*.mp4``),
writes PNGs into ``out_dir`` and returns ``[(caption, path), ...]`` for the figures it made (none if no data).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

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


def _run_curve(source: str) -> tuple[list, str, np.ndarray] | None:
    """Mean over videos of one eval file's ``curves`` (truncated to the shortest video)."""
    try:
        with open(source, encoding="utf-8") as f:
            curves = json.load(f).get("curves")
    except (OSError, ValueError, AttributeError):
        return None
    per = [np.asarray(v, float) for v in (curves or {}).get("per_video", {}).values() if v]
    if not per:
        return None
    n = min(len(v) for v in per)
    return (
        list(curves.get("x", range(n)))[:n],
        str(curves.get("x_label", "")),
        np.mean([v[:n] for v in per], 0),
    )


def plot_curves(df: pd.DataFrame, out_dir: Path) -> list[Figure]:
    """Per (set, metric, backend) with ``curves``: each arm's mean over runs ± one std band over runs."""
    figs: list[Figure] = []
    ok = df[(df["status"] == "finished") & df["source"].notna()]
    for (set_name, metric, backend), sel in ok.groupby(["set", "metric", "backend"], sort=True):
        by_arm: dict[str, list[np.ndarray]] = defaultdict(list)
        x, x_label = None, ""
        for arm, source in zip(sel["arm"], sel["source"]):
            got = _run_curve(source)
            if got is not None:
                x, x_label, y = got
                by_arm[arm].append(y)
        if not by_arm:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.4))
        for arm in sorted(by_arm)[:MAX_ARMS]:
            n = min(len(y) for y in by_arm[arm])
            ys = np.stack([y[:n] for y in by_arm[arm]])
            mean, sd = ys.mean(0), ys.std(0, ddof=1) if len(ys) > 1 else np.zeros(n)
            (line,) = ax.plot(x[:n], mean, label=f"{arm} (n={len(ys)})")
            ax.fill_between(x[:n], mean - sd, mean + sd, color=line.get_color(), alpha=0.2)
        what = "per segment" if "segment" in x_label else "over time"
        ax.set(xlabel=x_label or "x", ylabel=f"{metric} ({backend})", title=f"{metric} {what} — {set_name}")
        ax.legend(fontsize=7)
        path = _save(fig, out_dir / f"curve_{_slug(set_name, metric, backend)}.png")
        figs.append((f"{metric}@{backend} {what} on '{set_name}' (mean over runs ± 1 std)", path))
    return figs


def plot_tradeoff(agg: pd.DataFrame, out_dir: Path) -> list[Figure]:
    """Dynamic degree vs consistency (mean of subject and background consistency), one point per arm."""
    figs: list[Figure] = []
    have = agg[agg["n"] > 0]
    cons = have[have["metric"].isin(["subject_consistency", "background_consistency"])]
    cons = cons.groupby("arm").agg(c=("mean", "mean"), ce=("ci", "mean"))
    for backend, dyn in have[have["metric"] == "dynamic_degree"].groupby("backend"):
        pts = dyn.set_index("arm").join(cons, how="inner")
        if pts.empty:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for arm, r in pts.iterrows():
            ax.errorbar(
                r["c"] * 100,
                r["mean"] * 100,
                xerr=_nz(r["ce"]) * 100,
                yerr=_nz(r["ci"]) * 100,
                fmt="o",
                capsize=3,
                label=arm,
            )
        ax.set(
            xlabel="consistency (subject+background)/2 ×100",
            ylabel=f"dynamic degree ({backend}) ×100",
            title="Dynamic degree vs consistency",
        )
        ax.legend(fontsize=7)
        path = _save(fig, out_dir / f"tradeoff_{_slug(backend)}.png")
        figs.append((f"Trade-off: dynamic degree ({backend}) vs consistency, ± 95% CI", path))
    return figs


def _nz(v: float) -> float:
    return 0.0 if v is None or not math.isfinite(v) else float(v)


def plot_training(df: pd.DataFrame, out_dir: Path, max_runs: int = 200) -> list[Figure]:
    """Training curves per stage from ``metrics.jsonl``: every ``loss/*`` key and ``d_acc``, mean per arm."""
    runs = df.drop_duplicates("run_dir")[["run_dir", "arm"]].head(max_runs)
    data: dict[str, dict[str, dict[str, list]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run_dir, arm in runs.itertuples(index=False):
        try:
            rows = read_jsonl(Path(run_dir) / "metrics.jsonl")
        except (OSError, ValueError):
            continue
        for r in rows:
            for k, v in r.items():
                if (k.startswith("loss/") or k == "d_acc") and isinstance(v, int | float) and "step" in r:
                    data[str(r.get("stage"))][k][arm].append((r["step"], float(v)))
    figs: list[Figure] = []
    for stage, keys in sorted(data.items()):
        fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
        for ax, (key, arms) in zip(axes[0], sorted(keys.items())):
            for arm in sorted(arms)[:MAX_ARMS]:
                s = pd.DataFrame(arms[arm], columns=["step", "v"]).groupby("step")["v"].mean()
                ax.plot(s.index, s.to_numpy(), label=arm, lw=1)
            ax.set(title=key, xlabel="step")
        axes[0][0].legend(fontsize=6)
        fig.suptitle(f"stage {stage}")
        path = _save(fig, out_dir / f"training_{_slug(stage)}.png")
        figs.append((f"Training curves, stage {stage} (mean over seeds)", path))
    return figs


def frame_strips(df: pd.DataFrame, out_dir: Path, per_part: int = 3) -> list[Figure]:
    """Contact sheet: for each arm, frames at the start, middle and end of its first long rollout."""
    from aad_bench.video.io import VideoReadError, contact_sheet, read_video

    rows, labels = [], []
    for arm, sel in df[df["status"] == "finished"].drop_duplicates("run_dir").groupby("arm", sort=True):
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
            idx = [
                *range(min(per_part, t)),
                *range(mid, min(mid + per_part, t)),
                *range(max(0, t - per_part), t),
            ]
            rows.append(frames[idx])
            labels.append(arm)
            break
        if len(rows) >= MAX_ARMS:
            break
    if not rows:
        return []
    path = contact_sheet(rows, out_dir / "frames_long.png", max_frames=3 * per_part, labels=labels, scale=3)
    return [("Long rollouts: frames at start | middle | end (one row per arm)", path)]

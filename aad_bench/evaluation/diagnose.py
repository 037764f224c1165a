"""Motion-collapse diagnostics: where and how often motion dies.

Per video (all frames, native fps): the motion curve (top-5 % flow magnitude per consecutive pair), VBench's
dynamic verdict (~8 fps sampling), the freeze frame (first frame after which motion stays below
``freeze_px·min(H, W)/256`` px), copy-of-the-first-frame detection (every frame within ``COPY_TOL`` grey
levels of frame 0) and per-chunk motion relative to the first chunk (and to data clips when given).

A video is **collapsed** when it copies its first frame, or freezes in its first half, or (with data) moves
less than 10 % of the data's mean motion. Outputs: ``DIR/diagnosis.csv``, ``DIR/diagnosis/verdict.md``,
``motion_over_time.png``, ``chunk_motion.png``, ``contact_sheet.png`` and ``curves.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aad_bench.evaluation.flow import get_flow, pair_motion
from aad_bench.evaluation.motion import TOP_FRAC, is_dynamic, motion_profile
from aad_bench.evaluation.runner import find_targets, set_items
from aad_bench.utils.io import atomic_write_json, atomic_write_text
from aad_bench.video.io import VideoReadError, contact_sheet, read_video
from aad_bench.video.sets import list_videos, load_index

COPY_TOL = 3.0  # grey levels: above x264 re-encoding noise, far below any visible motion
FREEZE_FRACTION = 0.5
DATA_FRACTION = 0.1


def video_row(
    path: Path,
    flow: str = "dis",
    freeze_px: float = 0.5,
    chunk: int | None = None,
    data_motion: float | None = None,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Diagnosis of one video: (csv row, motion curve, frames)."""
    frames, fps = read_video(path)
    if len(frames) < 3:
        raise VideoReadError(f"{path}: needs at least 3 frames, got {len(frames)}")
    prof = motion_profile(frames, flow, freeze_px)
    sub = frames[:: max(1, round(fps / 8.0))]
    dyn = is_dynamic(pair_motion(sub, get_flow(flow), TOP_FRAC), *frames.shape[1:3], len(sub))
    c = chunk or max(2, len(frames) // 4)
    chunks = [float(prof.pair_scores[i : i + c].mean()) for i in range(0, len(prof.pair_scores), c)]
    copy = bool(prof.first_frame_mad.max() < COPY_TOL)
    mean_motion = float(prof.pair_scores.mean())
    early_freeze = prof.freeze_frame is not None and prof.freeze_frame <= FREEZE_FRACTION * (len(frames) - 1)
    slow = data_motion is not None and mean_motion < DATA_FRACTION * data_motion
    row = {
        "video": path.name,
        "frames": len(frames),
        "dynamic_degree": dyn,
        "freeze_frame": prof.freeze_frame if prof.freeze_frame is not None else "",
        "copy_of_first": copy,
        "collapsed": bool(copy or early_freeze or slow),
        "mean_motion": round(mean_motion, 4),
        "first_chunk_motion": round(chunks[0], 4),
        "last_chunk_motion": round(chunks[-1], 4),
        "last_vs_first": round(chunks[-1] / chunks[0], 4) if chunks[0] > prof.threshold else "",
        "vs_data": round(mean_motion / data_motion, 4) if data_motion else "",
        "chunk_motion": " ".join(f"{v:.3f}" for v in chunks),
    }
    return row, prof.pair_scores, frames


def data_mean_motion(data_dir: str | Path, flow: str = "dis") -> float:
    """Mean motion (top-5 % flow per pair) over every readable data clip."""
    vals = []
    for p in list_videos(data_dir):
        try:
            frames, _ = read_video(p)
        except VideoReadError:
            continue
        vals.append(float(pair_motion(frames, get_flow(flow), TOP_FRAC).mean()))
    if not vals:
        raise FileNotFoundError(f"{data_dir}: no readable data videos")
    return float(np.mean(vals))


def verdict(rows: list[dict], errors: dict[str, str]) -> str:
    """One paragraph summarising the diagnosis."""
    n = len(rows)
    if n == 0:
        return f"No video could be diagnosed ({len(errors)} unreadable)."
    col = sum(r["collapsed"] for r in rows)
    copies = sum(r["copy_of_first"] for r in rows)
    fr = [r["freeze_frame"] for r in rows if r["freeze_frame"] != ""]
    dyn = np.mean([r["dynamic_degree"] for r in rows])
    ratios = [r["last_vs_first"] for r in rows if r["last_vs_first"] != ""]
    text = (
        f"{col} of {n} videos ({100 * col / n:.0f}%) show motion collapse: {copies} copy their first frame, "
        f"{len(fr)} freeze"
    )
    text += (
        f" (median freeze frame {int(np.median(fr))} of {int(np.median([r['frames'] for r in rows]))})"
        if fr
        else ""
    )
    text += f". VBench dynamic degree is {dyn:.2f}."
    if ratios:
        text += f" Motion in the last chunk is {np.median(ratios):.2f}x the first chunk (median)"
        text += ", i.e. motion fades over the rollout." if np.median(ratios) < 0.5 else "."
    vs = [r["vs_data"] for r in rows if r["vs_data"] != ""]
    if vs:
        text += f" Generated motion is {np.median(vs):.2f}x the data's (median)."
    if errors:
        text += f" {len(errors)} video(s) could not be read: {', '.join(sorted(errors))}."
    return text


def _plots(
    folder: Path, rows: list[dict], curves: dict[str, np.ndarray], sheets: list, thr_px: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, c in list(curves.items())[:24]:
        ax.plot(np.arange(1, len(c) + 1), c, lw=1, alpha=0.8, label=name if len(curves) <= 8 else None)
    ax.axhline(thr_px, color="k", ls="--", lw=0.8, label="freeze threshold")
    ax.set(xlabel="frame", ylabel="top-5% flow (px)", title="motion over time")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(folder / "motion_over_time.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in rows[:24]:
        ch = np.array([float(v) for v in r["chunk_motion"].split()])
        if r["last_vs_first"] != "":
            ax.plot(np.arange(len(ch)), ch / ch[0], marker="o", lw=1)
    ax.set(xlabel="chunk", ylabel="motion / first chunk", title="per-chunk motion")
    fig.tight_layout()
    fig.savefig(folder / "chunk_motion.png", dpi=110)
    plt.close(fig)
    if sheets:
        sheets.sort(key=lambda s: not s[0])  # collapsed first
        contact_sheet(
            [s[2] for s in sheets[:8]],
            folder / "contact_sheet.png",
            max_frames=12,
            labels=[s[1] for s in sheets[:8]],
            scale=1,
        )


def _thumbs(frames: np.ndarray, n: int = 96) -> np.ndarray:
    import cv2

    h, w = frames.shape[1:3]
    s = min(1.0, n / max(h, w))
    idx = np.linspace(0, len(frames) - 1, min(12, len(frames))).round().astype(int)
    return np.stack([cv2.resize(frames[i], (max(1, round(w * s)), max(1, round(h * s)))) for i in idx])


def diagnose(
    path: str | Path,
    flow: str = "dis",
    data_dir: str | Path | None = None,
    freeze_px: float = 0.5,
    chunk: int | None = None,
    sets: list[str] | None = None,
) -> dict[str, Any]:
    """Diagnose every video set under ``path`` and write ``path/diagnosis.csv`` plus ``path/diagnosis/``."""
    import pandas as pd

    path = Path(path)
    data_motion = data_mean_motion(data_dir, flow) if data_dir else None
    rows, curves, sheets, errors = [], {}, [], {}
    thr = freeze_px
    for t in find_targets(path, sets):
        ch = chunk or load_index(t.set_dir).get("chunk_frames")
        for p in (it.path for it in set_items(t)):
            try:
                row, curve, frames = video_row(p, flow, freeze_px, ch, data_motion)
            except VideoReadError as e:
                errors[p.name] = str(e)
                continue
            thr = freeze_px * min(frames.shape[1:3]) / 256.0
            rows.append({"set": t.set_name, **row})
            curves[f"{t.set_name}/{p.name}"] = curve
            sheets.append((row["collapsed"], p.stem, _thumbs(frames)))
    if not rows and not errors:
        raise FileNotFoundError(f"{path}: no videos to diagnose")
    folder = path / "diagnosis"
    folder.mkdir(parents=True, exist_ok=True)
    csv = path / "diagnosis.csv"
    atomic_write_text(csv, pd.DataFrame(rows, columns=_COLUMNS).to_csv(index=False))
    text = verdict(rows, errors)
    atomic_write_text(folder / "verdict.md", text + "\n")
    atomic_write_json(
        folder / "curves.json",
        {
            "x_label": "frame",
            "flow": flow,
            "threshold_px": thr,
            "per_video": {k: v.round(4) for k, v in curves.items()},
            "errors": errors,
        },
    )
    if rows:
        _plots(folder, rows, curves, sheets, thr)
    return {"csv": csv, "folder": folder, "verdict": text, "rows": rows, "errors": errors}


_COLUMNS = [
    "set",
    "video",
    "frames",
    "dynamic_degree",
    "freeze_frame",
    "copy_of_first",
    "collapsed",
    "mean_motion",
    "first_chunk_motion",
    "last_chunk_motion",
    "last_vs_first",
    "vs_data",
    "chunk_motion",
]

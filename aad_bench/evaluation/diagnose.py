"""Motion-collapse diagnostics: where and how often motion dies.

Per video (all frames, native fps; optical flow computed once per video): the visible-motion curve (the
noise-masked top-5 % flow of :mod:`aad_bench.evaluation.motion`), VBench's dynamic verdict (~8 fps sampling;
the consecutive-pair flows are reused when the video is ≤ 12 fps, where VBench samples every frame), the
**freeze frame** — the first still frame, i.e. the first frame ``k`` after which no pair moves (0 when the video
copies its first frame) — and per-chunk motion relative to the first chunk (and to data clips when given).

A real video is **collapsed** when it copies its first frame, freezes anywhere (≥ 2 still pairs at the end),
fades (last-chunk motion < ``FADE_RATIO`` × the first chunk's) or, with data, moves < 10 % of the data's mean
motion. A toy video (index ``gt`` with sprites) is judged by the toy world's sprite estimator, the measure of
the demo's table and of eval's ``toy_*`` metrics: collapsed when its fitted speed is below ``FROZEN_SPEED`` while
its data twin moves, or when it copies its first frame. Unreadable videos are rows with their error.
Outputs: ``DIR/diagnosis.csv`` and ``DIR/diagnosis/`` (``verdict.md``, ``curves.json``, figures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aad_bench.evaluation.diagnose_plots import write_figures
from aad_bench.evaluation.metrics import MissingInputError, VideoItem
from aad_bench.evaluation.motion import (
    FREEZE_PX,
    MIN_SAMPLED,
    SAMPLE_FPS,
    is_dynamic,
    motion_profile,
    pair_flows,
    top_motion,
)
from aad_bench.evaluation.runner import find_targets, set_items
from aad_bench.evaluation.toy_metrics import toy_motion
from aad_bench.utils.io import atomic_write_json, atomic_write_text
from aad_bench.video.io import VideoReadError, read_video
from aad_bench.video.sets import list_videos, load_index
from aad_bench.world.motion import FROZEN_SPEED

FADE_RATIO = 0.25  # last-chunk / first-chunk visible motion below this = fading
DATA_FRACTION = 0.1
COLUMNS = [
    "set",
    "video",
    "frames",
    "error",
    "collapsed",
    "reasons",
    "freeze_frame",
    "copy_of_first",
    "dynamic_degree",
    "mean_motion",
    "first_chunk_motion",
    "last_chunk_motion",
    "last_vs_first",
    "vs_data",
    "speed",
    "data_speed",
    "frozen",
    "noise_sigma",
    "chunk_motion",
]


def _dynamic(frames: np.ndarray, fps: float, raw: np.ndarray, flow: str) -> bool | str:
    """VBench's verdict, reusing the consecutive-pair flow when VBench samples every frame."""
    step = max(1, round(fps / SAMPLE_FPS))
    if step == 1:
        scores, n = raw, len(frames)
    else:
        sub = frames[::step]
        n = len(sub)
        scores = top_motion(pair_flows(sub, flow)) if n >= 2 else np.zeros(0)
    return is_dynamic(scores, *frames.shape[1:3], n) if n >= MIN_SAMPLED else ""


def _toy(item: VideoItem) -> dict[str, Any] | None:
    gt = item.meta.get("gt")
    if not isinstance(gt, dict) or not isinstance(gt.get("sprites"), list):
        return None
    try:
        return toy_motion(item)
    except MissingInputError:
        return None


def video_row(
    item: VideoItem,
    flow: str = "dis",
    freeze_px: float = FREEZE_PX,
    chunk: int | None = None,
    data_motion: float | None = None,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Diagnosis of one video: (csv row, visible-motion curve, frames)."""
    frames, fps = read_video(item.path)
    if len(frames) < 3:
        raise VideoReadError(f"{item.path}: needs at least 3 frames, got {len(frames)}")
    flows = pair_flows(frames, flow)
    prof = motion_profile(frames, flows, freeze_px=freeze_px)
    c = chunk or max(2, len(frames) // 4)
    chunks = [float(prof.pair_scores[i : i + c].mean()) for i in range(0, len(prof.pair_scores), c)]
    fade = chunks[-1] / chunks[0] if chunks[0] >= freeze_px else None
    mean_motion = float(prof.pair_scores.mean())
    toy = _toy(item)
    reasons, frozen = _reasons(prof, toy, fade, mean_motion, data_motion)
    row = {
        "video": item.name,
        "frames": len(frames),
        "error": "",
        "collapsed": bool(reasons),
        "reasons": "; ".join(reasons),
        "freeze_frame": prof.freeze_frame if prof.freeze_frame is not None else "",
        "copy_of_first": prof.copy_of_first,
        "dynamic_degree": _dynamic(frames, fps, prof.raw_scores, flow),
        "mean_motion": round(mean_motion, 4),
        "first_chunk_motion": round(chunks[0], 4),
        "last_chunk_motion": round(chunks[-1], 4),
        "last_vs_first": round(fade, 4) if fade is not None else "",
        "vs_data": round(mean_motion / data_motion, 4) if data_motion else "",
        "speed": toy["speed"] if toy else "",
        "data_speed": toy["data_speed"] if toy else "",
        "frozen": frozen if frozen is not None else "",
        "noise_sigma": round(prof.sigma, 3),
        "chunk_motion": " ".join(f"{v:.3f}" for v in chunks),
    }
    return row, prof.pair_scores, frames


def _reasons(
    prof, toy: dict | None, fade: float | None, mean_motion: float, data_motion: float | None
) -> tuple[list[str], bool | None]:
    """Why a video counts as collapsed (empty: it does not) and, for toy videos, whether its sprites froze."""
    reasons = []
    if toy is not None:  # one motion measure: the sprite estimator decides for toy videos
        frozen = toy["data_speed"] >= FROZEN_SPEED and toy["speed"] < FROZEN_SPEED
        if prof.copy_of_first and toy["data_speed"] >= FROZEN_SPEED:
            reasons.append("copies its first frame")
        if frozen:
            reasons.append(f"frozen sprites ({toy['speed']:.3f} px/frame vs data {toy['data_speed']:.3f})")
        return reasons, frozen
    if prof.copy_of_first:
        reasons.append("copies its first frame")
    elif prof.freeze_frame is not None:
        reasons.append(f"still from frame {prof.freeze_frame}")
    if fade is not None and fade < FADE_RATIO:
        reasons.append(f"fades (last/first chunk motion {fade:.2f})")
    if data_motion is not None and mean_motion < DATA_FRACTION * data_motion:
        reasons.append(f"moves {mean_motion / data_motion:.2f}x the data")
    return reasons, None


def data_mean_motion(data_dir: str | Path, flow: str = "dis") -> float:
    """Mean visible motion over every readable data clip."""
    vals = []
    for p in list_videos(data_dir):
        try:
            frames, _ = read_video(p)
        except VideoReadError:
            continue
        if len(frames) >= 2:
            vals.append(float(motion_profile(frames, flow=flow).pair_scores.mean()))
    if not vals:
        raise FileNotFoundError(f"{data_dir}: no readable data videos")
    return float(np.mean(vals))


def verdict(rows: list[dict], errors: dict[str, str]) -> str:
    """One paragraph summarising the diagnosis."""
    n = len(rows)
    if n == 0:
        return f"No video could be diagnosed ({len(errors)} unreadable: {', '.join(sorted(errors))})."
    col = sum(r["collapsed"] for r in rows)
    count = {k: sum(k in r["reasons"] for r in rows) for k in ("copies", "still from", "fades", "frozen sprites")}
    text = (
        f"{col} of {n} videos ({100 * col / n:.0f}%) show motion collapse: {count['copies']} copy their first "
        f"frame, {count['still from']} freeze, {count['fades']} fade (last-chunk motion < {FADE_RATIO:g}x the first)"
    )
    fr = [r["freeze_frame"] for r in rows if r["freeze_frame"] != ""]
    if fr:
        text += f"; median first still frame {int(np.median(fr))} of {int(np.median([r['frames'] for r in rows]))}"
    toy = [r for r in rows if r["frozen"] != ""]
    moving = [r for r in rows if r["data_speed"] != "" and r["data_speed"] >= FROZEN_SPEED]
    if moving:
        speed = np.mean([r["speed"] for r in toy]) / max(np.mean([r["data_speed"] for r in toy]), 1e-9)
        text += (
            f"; toy sprites: {count['frozen sprites']} of {len(moving)} frozen (fitted speed < {FROZEN_SPEED} "
            f"px/frame while the data moves), speed ratio {speed:.2f} (eval's toy_* metrics use the same fit)"
        )
    dyn = [r["dynamic_degree"] for r in rows if r["dynamic_degree"] != ""]
    text += f". VBench dynamic degree is {np.mean(dyn):.2f}." if dyn else "."
    ratios = [r["last_vs_first"] for r in rows if r["last_vs_first"] != ""]
    if ratios:
        text += f" Motion in the last chunk is {np.median(ratios):.2f}x the first chunk (median)."
    vs = [r["vs_data"] for r in rows if r["vs_data"] != ""]
    if vs:
        text += f" Generated motion is {np.median(vs):.2f}x the data's (median)."
    if errors:
        text += f" {len(errors)} video(s) could not be read: {', '.join(sorted(errors))}."
    return text


def diagnose(
    path: str | Path,
    flow: str = "dis",
    data_dir: str | Path | None = None,
    freeze_px: float = FREEZE_PX,
    chunk: int | None = None,
    sets: list[str] | None = None,
) -> dict[str, Any]:
    """Diagnose every video set under ``path`` and write ``path/diagnosis.csv`` plus ``path/diagnosis/``."""
    if chunk is not None and chunk < 1:
        raise ValueError(f"--chunk must be >= 1 frame, got {chunk}")
    path = Path(path)
    data_motion = data_mean_motion(data_dir, flow) if data_dir else None
    rows, table, curves, sheets, errors = [], [], {}, [], {}
    for t in find_targets(path, sets):
        ch = chunk or load_index(t.set_dir).get("chunk_frames")
        ch = ch if isinstance(ch, int) and ch >= 1 else None
        for item in set_items(t):
            try:
                if not item.path.is_file():
                    raise VideoReadError(f"{item.path}: no such video file (listed in index.json)")
                row, curve, frames = video_row(item, flow, freeze_px, ch, data_motion)
            except (VideoReadError, MissingInputError, ValueError, OSError) as e:
                errors[f"{t.set_name}/{item.name}"] = str(e)
                table.append({"set": t.set_name, "video": item.name, "error": str(e)})
                continue
            rows.append({"set": t.set_name, **row})
            table.append(rows[-1])
            curves[f"{t.set_name}/{item.name}"] = curve
            sheets.append((row["collapsed"], f"{t.set_name}/{item.path.stem}", frames))
    if not table:
        raise FileNotFoundError(f"{path}: no videos to diagnose")
    return _write(path, rows, table, curves, sheets, errors, flow, freeze_px)


def _write(path: Path, rows, table, curves, sheets, errors, flow: str, freeze_px: float) -> dict[str, Any]:
    """Write ``diagnosis.csv`` and ``diagnosis/`` (verdict, curves, figures); returns the summary dict."""
    import pandas as pd

    folder = path / "diagnosis"
    folder.mkdir(parents=True, exist_ok=True)
    csv = atomic_write_text(path / "diagnosis.csv", pd.DataFrame(table, columns=COLUMNS).to_csv(index=False))
    text = verdict(rows, errors)
    figures = write_figures(folder, rows, curves, sheets, freeze_px) if rows else []
    atomic_write_text(folder / "verdict.md", text + "\n\n" + "\n".join(f"- {f}" for f in figures) + "\n")
    atomic_write_json(
        folder / "curves.json",
        {
            "x_label": "frame pair (t, t+1)",
            "y_label": "visible motion (px: top-5% flow where the flow explains the change)",
            "flow": flow,
            "threshold_px": freeze_px,
            "per_video": {k: v.round(4) for k, v in curves.items()},
            "errors": errors,
        },
    )
    return {"csv": csv, "folder": folder, "verdict": text, "rows": rows, "errors": errors, "figures": figures}

"""Figures of ``aad-bench diagnose``: small multiples of every video's motion, chunk motion, a contact sheet.

Every figure works for any number of videos: motion curves are small multiples (one panel per video, titled by
it, 36 panels per page), chunk motion shows the median and quartiles over videos with every video as a thin
line, and the contact sheet says how many videos it shows when it cannot show them all.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

PANELS = 36  # small multiples per page (6 x 6)
SHEET_ROWS = 8  # videos in the contact sheet


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def motion_pages(folder: Path, rows: list[dict], curves: dict[str, np.ndarray], thr: float) -> list[Path]:
    """Small multiples: one panel per video (collapsed ones titled in red), ``PANELS`` per page."""
    plt = _plt()
    names = list(curves)
    collapsed = {f"{r['set']}/{r['video']}": r["collapsed"] for r in rows}
    ymax = max(max((float(c.max()) for c in curves.values() if len(c)), default=1.0), 2 * thr)
    paths = []
    for page, start in enumerate(range(0, len(names), PANELS)):
        part = names[start : start + PANELS]
        cols = min(6, len(part))
        nrows = math.ceil(len(part) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(2.2 * cols, 1.6 * nrows + 0.6), squeeze=False, sharey=True)
        for ax, name in zip(axes.flat, part):
            c = curves[name]
            ax.plot(np.arange(len(c)), c, lw=1)
            ax.axhline(thr, color="k", ls="--", lw=0.6)
            ax.set_ylim(0, ymax * 1.05)
            ax.set_title(name[-28:], fontsize=6, color="crimson" if collapsed.get(name) else "black")
            ax.tick_params(labelsize=5)
        for ax in list(axes.flat)[len(part) :]:
            ax.axis("off")
        n_pages = math.ceil(len(names) / PANELS)
        fig.suptitle(
            f"Visible motion per frame pair (px: top-5% flow where the flow explains the change); "
            f"dashed: still {thr:g} px; "
            f"red title: collapsed — page {page + 1}/{n_pages}, videos {start + 1}-{start + len(part)} of {len(names)}",
            fontsize=7,
        )
        fig.supxlabel("frame pair (t, t+1)", fontsize=7)
        fig.tight_layout()
        path = folder / (f"motion_over_time_{page + 1}.png" if page else "motion_over_time.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def chunk_figure(folder: Path, rows: list[dict]) -> Path | None:
    """Chunk motion / first chunk: every video thin, median and quartiles over videos bold."""
    series = [np.array([float(v) for v in r["chunk_motion"].split()]) for r in rows if r["last_vs_first"] != ""]
    if not series:
        return None
    plt = _plt()
    n = min(len(s) for s in series)
    rel = np.stack([s[:n] / s[0] for s in series])
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for s in rel:
        ax.plot(np.arange(n), s, color="0.75", lw=0.6)
    q1, med, q3 = np.percentile(rel, [25, 50, 75], axis=0)
    ax.fill_between(np.arange(n), q1, q3, color="tab:blue", alpha=0.25, label="quartiles over videos")
    ax.plot(np.arange(n), med, color="tab:blue", lw=2, label=f"median ({len(rel)} videos; grey: each)")
    ax.set(xlabel="chunk", ylabel="visible motion / first chunk", title="Motion per chunk relative to the first")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = folder / "chunk_motion.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sheet(folder: Path, sheets: list[tuple[bool, str, np.ndarray]]) -> tuple[Path, str]:
    """Contact sheet of up to ``SHEET_ROWS`` videos (collapsed first), titled with how many it shows."""
    from PIL import Image, ImageDraw

    from aad_bench.video.io import contact_sheet

    ordered = sorted(sheets, key=lambda s: not s[0])
    shown = ordered[:SHEET_ROWS]
    thumbs = [_thumbs(s[2]) for s in shown]
    path = contact_sheet(
        thumbs, folder / "contact_sheet.png", max_frames=12, labels=[s[1].rsplit("/", 1)[-1] for s in shown]
    )
    title = f"{len(shown)} of {len(sheets)} videos (collapsed first)" + (
        "; the rest are in diagnosis.csv" if len(sheets) > len(shown) else ""
    )
    img = Image.open(path).convert("RGB")
    canvas = Image.new("RGB", (img.width, img.height + 16), "white")
    canvas.paste(img, (0, 16))
    ImageDraw.Draw(canvas).text((4, 2), title, fill="black")
    canvas.save(path)
    return path, title


def _thumbs(frames: np.ndarray, n: int = 96) -> np.ndarray:
    import cv2

    h, w = frames.shape[1:3]
    s = min(1.0, n / max(h, w))
    idx = np.linspace(0, len(frames) - 1, min(12, len(frames))).round().astype(int)
    return np.stack([cv2.resize(frames[i], (max(1, round(w * s)), max(1, round(h * s)))) for i in idx])


def write_figures(folder: Path, rows: list[dict], curves: dict[str, np.ndarray], sheets: list, thr: float) -> list[str]:
    """Write every figure; returns one line per figure for ``verdict.md``."""
    lines = [f"{p.name}: visible motion per video (small multiples)" for p in motion_pages(folder, rows, curves, thr)]
    chunk = chunk_figure(folder, rows)
    if chunk:
        lines.append(f"{chunk.name}: motion per chunk relative to the first (median, quartiles, each video)")
    if sheets:
        path, title = sheet(folder, sheets)
        lines.append(f"{path.name}: {title}")
    return lines

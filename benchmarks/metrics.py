"""Frames/s (decode included) of each native metric at 256² and 480p, decord reads, DIS vs RAFT; with
``--calibration`` also the grain floor of the motion statistics and the drift evidence of docs/evaluation.md.

Usage: ``python benchmarks/metrics.py [--frames 33] [--calibration]``. The last printed line is one JSON object.
RAFT is timed only when ``AAD_RAFT_WEIGHTS`` points at local torchvision raft_large weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aad_bench.evaluation import drift, quality  # noqa: E402
from aad_bench.evaluation.calibration import calibrate, motion_decay, pan, pan_video, photo  # noqa: E402
from aad_bench.evaluation.metrics import VideoItem, get_metric  # noqa: E402
from aad_bench.video.io import read_video, write_mp4  # noqa: E402

METRICS = [
    "dynamic_degree",
    "temporal_flickering",
    "motion_smoothness",
    "subject_consistency",
    "background_consistency",
    "imaging_quality",
    "drift_score",
]
SIZES = {"256": (256, 256), "480p": (480, 854)}


def _time(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_size(tag: str, size: tuple[int, int], n: int, tmp: Path) -> dict:
    """Write one pan video at ``size`` and time decord reads and every native metric on it."""
    path = write_mp4(tmp / f"bench_{tag}-0.mp4", pan_video(3.0 * min(size) / 256, n, size), 16, pix_fmt="yuv420p")
    out = {"read_fps": n / _time(lambda: read_video(path), 2)}
    item = VideoItem(path, {}, tmp)
    for name in METRICS:
        m = get_metric(name)
        quality._FRAME_CACHE.clear()  # drift would otherwise reuse imaging_quality's per-frame scores
        sec = _time(lambda m=m: m.fn(item, m.default_backend, {}))
        frames = len(read_video(path, fps=8)[0]) if name == "dynamic_degree" else n
        out[f"{name}@{m.default_backend}_fps"] = frames / sec
    return out


def bench_flow(n: int) -> dict:
    """Seconds per pair of DIS presets (and RAFT when its weights are local) at 256²."""
    from aad_bench.evaluation.flow import get_flow

    v = pan_video(3.0, n, (256, 256))
    out = {}
    backends = ["dis", "dis-fast", "dis-ultrafast"] + (["raft"] if os.environ.get("AAD_RAFT_WEIGHTS") else [])
    for b in backends:
        f = get_flow(b)
        pairs = list(zip(v[:-1], v[1:]))[: 4 if b == "raft" else None]
        out[f"{b}_ms_per_pair_256"] = 1000 * _time(lambda f=f, p=pairs: [f(a, c) for a, c in p]) / len(pairs)
    return out


def _encode(frames, tmp: Path, crf: int = 18):
    path = write_mp4(tmp / "c-0.mp4", frames, 16, quality=crf, pix_fmt="yuv420p")
    return read_video(path)[0]


def grain_floor(tmp: Path) -> dict:
    """Where the freeze threshold can sit: still grainy clips vs slow pans (x264 yuv420p).

    Still clips (toy and photo-like content, grain std 2 / 8, crf 18 / 23): VBench's top-5 % flow and the
    median-filtered visible motion that freeze detection uses (max px); pans of 0.5 and 1 px/frame (min px).
    """
    from scipy.ndimage import median_filter

    from aad_bench.evaluation.motion import clip_noise, pair_flows, top_motion, visible_motion
    from aad_bench.world.toy import ToyWorldConfig, render_clip

    out = {}
    rng = np.random.default_rng(0)
    for size in (32, 64, 128, 256, 480):
        cfg = ToyWorldConfig(height=size, width=size, radius=(2.5 * size / 32, 5 * size / 32))
        row = {"still_vbench_top5_max": 0.0, "still_visible_max": 0.0}
        for kind in ("toy", "photo"):
            base = render_clip(cfg, "eval", 1)[0][0] if kind == "toy" else photo(size, size, 1)
            for sigma in (2.0, 8.0):
                for crf in (18, 23):
                    still = np.repeat(base[None], 9, 0).astype(np.float32) + rng.normal(0, sigma, (9, *base.shape))
                    f = _encode(np.clip(still, 0, 255).astype(np.uint8), tmp, crf)
                    flows = pair_flows(f)
                    row["still_vbench_top5_max"] = max(row["still_vbench_top5_max"], float(top_motion(flows).max()))
                    curve = visible_motion(f, flows, clip_noise(f))
                    vis = float(median_filter(curve, size=3, mode="mirror").max())  # what freeze_frame sees
                    row["still_visible_max"] = max(row["still_visible_max"], vis)
        for speed in (0.5, 1.0):
            f = _encode(pan(photo(size, size * 3, 2), np.arange(9) * speed, (size, size), grain=2.0), tmp)
            flows = pair_flows(f)
            row[f"pan_{speed:g}px_visible_min"] = float(visible_motion(f, flows, clip_noise(f)).min())
        out[f"{size}px"] = {k: round(v, 3) for k, v in row.items()}
    return out


def drift_evidence(tmp: Path) -> dict:
    """Drift of a quality decay vs a drift-free twin whose content changes, raw proxy vs motion-compensated."""
    import cv2

    size, t = (128, 128), 48
    canvas = photo(128, 512, 1)
    twin = np.concatenate([cv2.GaussianBlur(photo(128, 256, 2), (0, 0), 4), photo(128, 256, 3)], 1)
    clips = {
        "quality_decay": pan(
            canvas, np.arange(t) * 2.0, size, blur=np.linspace(0, 1.6, t), grain=np.linspace(1.5, 5, t)
        ),
        "content_twin": pan(twin, np.arange(t) * 5.3, size),
        "static": pan(canvas, np.zeros(t), size, grain=2.0),
        "steady_pan": pan(canvas, np.arange(t) * 3.0, size),
        "motion_decay": pan(canvas, motion_decay(t, 12.0, 40), size),
    }
    out = {}
    for name, frames in clips.items():
        f = _encode(frames, tmp)
        bounds = drift.segment_bounds(len(f), 5)
        raw = drift.segment_means(quality.SharpnessQuality().frame_scores(f), bounds)
        mc = drift.segment_means(drift.tracked_quality(f)[0], bounds)
        out[name] = {
            "drift@sharpness": round(drift.drift_score(raw), 2),
            "drift@sharpness-mc": round(drift.drift_score(mc), 2),
            "delta@sharpness": round(drift.delta_drift(raw), 2),
            "delta@sharpness-mc": round(drift.delta_drift(mc), 2),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=33)
    p.add_argument("--calibration", action="store_true", help="also the grain floor and the drift evidence")
    args = p.parse_args()
    import cv2

    cv2.setNumThreads(2)
    res: dict = {"frames": args.frames, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as d:
        for tag, size in SIZES.items():
            t0 = time.perf_counter()
            r = bench_size(tag, size, args.frames, Path(d))
            res[tag] = {k: round(v, 1) for k, v in r.items()}
            print(f"{tag}: {res[tag]}  ({time.perf_counter() - t0:.1f} s)")
    res["flow"] = {k: round(v, 2) for k, v in bench_flow(args.frames).items()}
    print(f"flow: {res['flow']}")
    cal = calibrate("dis")
    res["dis_calibration"] = {f"{r['true_px']:g}px": round(r["rel_error"], 4) for r in cal}
    res["dis_max_abs_rel_error_4_to_8px"] = round(max(abs(r["rel_error"]) for r in cal if 4 <= r["true_px"] <= 8), 4)
    if args.calibration:
        with tempfile.TemporaryDirectory() as d:
            res["grain_floor"] = grain_floor(Path(d))
            print(f"grain floor: {res['grain_floor']}")
            res["drift_evidence"] = drift_evidence(Path(d))
            print(f"drift evidence: {res['drift_evidence']}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()

"""Frames/s (decode included) of each native metric at 256² and 480p, decord reads, DIS vs RAFT.

Usage: ``python benchmarks/metrics.py [--frames 33]``. The last printed line is one JSON object.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aad_bench.evaluation import quality  # noqa: E402
from aad_bench.evaluation.calibration import calibrate, pan_video  # noqa: E402
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
    path = write_mp4(
        tmp / f"bench_{tag}-0.mp4", pan_video(3.0 * min(size) / 256, n, size), 16, pix_fmt="yuv420p"
    )
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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=33)
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
    res["dis_max_abs_rel_error_4_to_8px"] = round(
        max(abs(r["rel_error"]) for r in cal if 4 <= r["true_px"] <= 8), 4
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()

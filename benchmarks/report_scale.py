"""Collect + VBench composites + aggregate + tables over 10,000 synthetic run folders (generated, not timed).

Usage: ``python benchmarks/report_scale.py [--runs 10000]``; the last printed line is one JSON object with
``seconds`` (collect + composites + statistics + the three paper tables in three formats; target ≤ 10 s).
The folders go to ``/dev/shm`` when writable (``REPORT_SCALE_DIR`` overrides), so file-system cache is warm.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aad_bench.reporting.collect import collect  # noqa: E402
from aad_bench.reporting.stats import add_vbench_aggregates, aggregate  # noqa: E402
from aad_bench.reporting.tables import disc_ablation_table, main_table, warmup_table  # noqa: E402

METHODS = ["aad1", "symmetric", "causal_video", "bidir_frame", "patch", "dmd"]
DISC = {  # what each method's YAML declares (results.json ``method_info``): backbone, head
    "aad1": ("bidirectional", "video"),
    "symmetric": ("causal", "frame"),
    "causal_video": ("causal", "video"),
    "bidir_frame": ("bidirectional", "frame"),
    "patch": ("bidirectional", "patch"),
    "dmd": None,
}
METRICS = [
    ("subject_consistency", "dino", "train_len", "up"),
    ("background_consistency", "clip", "train_len", "up"),
    ("motion_smoothness", "amt", "train_len", "up"),
    ("dynamic_degree", "dis", "train_len", "up"),
    ("aesthetic_quality", "laion", "train_len", "up"),
    ("imaging_quality", "musiq", "train_len", "up"),
    ("drift_score", "musiq", "long", "down"),
]
VIDEOS = [f"toy_{i:05d}-0.mp4" for i in range(16)]


def make_campaign(root: Path, n: int) -> None:
    """``n`` run folders: 6 methods × a λ sweep × seeds; 1% diverged; an index.jsonl."""
    rng = random.Random(0)
    index = []
    for i in range(n):
        method, lam, seed = METHODS[i % 6], (10, 20, 50)[(i // 6) % 3], i // 18
        ov = [f"method={method}", f"seed={seed}", f"method.reg.lambda_={lam}"]
        run = root / "runs" / f"{i:05d}"
        status = "diverged" if rng.random() < 0.01 else "finished"
        (run / "eval" / "train_len").mkdir(parents=True)
        (run / "eval" / "long").mkdir()
        disc = DISC[method]
        info = {
            "name": method,
            "display": method.upper(),
            "order": METHODS.index(method),
            "stages": ["ode", "dmd"] + (["gan"] if disc else []),
            "disc": {"backbone": disc[0], "head": disc[1]} if disc else None,
            "nfe_per_chunk": 1,
        }
        res = {"status": status, "method": method, "method_info": info, "seed": seed, "overrides": ov}
        (run / "results.json").write_text(json.dumps({**res, "summary": {"nfe": 4}}))
        index.append(json.dumps({"job": i, "overrides": ov, "run_dir": f"runs/{i:05d}", "status": status}))
        if status != "finished":
            continue
        for metric, backend, set_name, direction in METRICS:
            pv = {v: round(rng.random(), 4) for v in VIDEOS}
            obj = {
                "metric": metric,
                "version": "1",
                "backend": backend,
                "direction": direction,
                "video_set": set_name,
                "n_videos": 16,
                "aggregate": sum(pv.values()) / 16,
                "per_video": pv,
            }
            (run / "eval" / set_name / f"{metric}@{backend}.json").write_text(json.dumps(obj))
    (root / "index.jsonl").write_text("\n".join(index) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    args = ap.parse_args()
    # tmpfs when there is one: creating and deleting 80k small files on a disk takes minutes
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=os.environ.get("REPORT_SCALE_DIR", shm)) as tmp:
        t0 = time.perf_counter()
        make_campaign(Path(tmp), args.runs)
        gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        df = collect(tmp)
        t_collect = time.perf_counter() - t0
        agg = aggregate(add_vbench_aggregates(df))
        text = [
            f(t)
            for t in (main_table(agg), disc_ablation_table(agg), warmup_table(agg))
            for f in (lambda t: t.markdown(), lambda t: t.latex(), lambda t: t.html())
        ]
        seconds = time.perf_counter() - t0
    print(f"generated {args.runs} runs in {gen:.1f}s; {len(df)} rows; {sum(map(len, text))} chars of tables")
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "collect_s": round(t_collect, 3),
                "runs": args.runs,
                "rows": len(df),
                "target_s": 10,
            }
        )
    )


if __name__ == "__main__":
    main()

"""The toy 2x2 discriminator study, timed, with the statistical power it reaches.

    python benchmarks/toy_study.py [--out DIR] [--seeds 0,1,2] [--videos 32] [-- extra aad-bench overrides]

Runs ``aad-bench -m +ablation=disc_2x2`` (every arm x seed; the arms of one seed share Stage I + II through the
cache), scores every run with ``aad-bench eval``, and reads the per-arm speed ratio (toy sprite measure, training
length) with its 95 % t-interval over seeds and the paired difference to ``aad1``. Prints a table; the last line
is one JSON object with ``wall_s`` (train + sample), ``eval_s``, ``ci_half`` per arm and ``max_ci_half`` (issue
target: <= 0.1 with the 2x2 finishing in <= 60 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

METRIC, BACKEND, SET = "toy_speed_ratio", "sprites", "train_len"


def _aad(*args: str) -> float:
    """Run ``aad-bench`` in a fresh interpreter; returns its wall time (raises on failure)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aad_bench.cli", *args], check=True)
    return time.perf_counter() - t0


def power_table(runs: Path) -> tuple[list[dict], list[dict]]:
    """Per-arm mean / CI of the speed ratio and the paired difference to ``aad1`` (report's statistics)."""
    from aad_bench.reporting.collect import collect
    from aad_bench.reporting.stats import aggregate, paired_compare

    df = collect(runs)
    agg = aggregate(df)
    sel = agg[(agg["metric"] == METRIC) & (agg["backend"] == BACKEND) & (agg["set"] == SET)]
    arms = [{"arm": r.arm, "mean": float(r["mean"]), "ci_half": float(r.ci), "n": int(r.n)}
            for _, r in sel.iterrows()]
    paired = paired_compare(df, "aad1", METRIC, BACKEND, SET)
    diffs = [{"arm": r.arm, "mean_diff": float(r.mean_diff), "p": float(r.p)} for _, r in paired.iterrows()]
    return arms, diffs


def main(argv: list[str] | None = None) -> int:
    """Run, score and summarise the study."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="aad_runs/bench_toy_study", help="output folder (paths.out)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--videos", type=int, default=32,
                   help="training-length videos per run (sample.n_videos; 32 = every eval clip of the default "
                        "toy world, twice the default: less clip-to-clip noise in each arm's score)")
    p.add_argument("extra", nargs="*", help="more aad-bench overrides (after --)")
    a = p.parse_args(argv)
    out = Path(a.out).resolve()
    wall = _aad("-m", "+ablation=disc_2x2", f"seed={a.seeds}", f"paths.out={out}", "progress=false",
                f"sample.n_videos={a.videos}", *a.extra)
    eval_s = _aad("eval", str(out / "runs"))
    arms, diffs = power_table(out / "runs")
    print(f"{'arm':<14}{'speed ratio':>12}{'± 95% CI':>10}{'n':>4}{'vs aad1':>10}{'p':>8}")
    by_arm = {d["arm"]: d for d in diffs}
    for r in sorted(arms, key=lambda r: r["arm"]):
        d = by_arm.get(r["arm"], {"mean_diff": float("nan"), "p": float("nan")})
        print(f"{r['arm']:<14}{r['mean']:>12.3f}{r['ci_half']:>10.3f}{r['n']:>4}{d['mean_diff']:>10.3f}{d['p']:>8.3f}")
    halves = {r["arm"]: round(r["ci_half"], 4) for r in arms}
    print(json.dumps({"wall_s": round(wall, 1), "eval_s": round(eval_s, 1), "seeds": a.seeds,
                      "videos": a.videos, "overrides": a.extra, "ci_half": halves,
                      "max_ci_half": max(halves.values()) if halves else None, "target_ci_half": 0.1}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""SLURM overhead per job: N trivial jobs as one submitit array on the local cluster vs N local runs.

    python benchmarks/slurm_overhead.py [--n 8] [--partition debug]

Both sides start a fresh Python that imports submitit and does a trivial sum, so the difference is what SLURM
(sbatch, scheduling passes, srun, accounting polls by submitit) adds. The last printed line is one JSON object
with ``overhead_s_per_job`` (target <= 5 s on the CI cluster).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time


def trivial(i: int) -> int:
    """The job: as little work as possible."""
    return sum(range(1000)) + i


def run_slurm(n: int, partition: str, folder: str) -> float:
    """Wall time to submit ``n`` array tasks and collect every result."""
    import submitit

    ex = submitit.AutoExecutor(folder=f"{folder}/%j", cluster="slurm")
    ex.update_parameters(slurm_partition=partition, cpus_per_task=1, mem_gb=1, timeout_min=5,
                         slurm_array_parallelism=n)
    t0 = time.perf_counter()
    jobs = ex.map_array(trivial, list(range(n)))
    assert [j.result() for j in jobs] == [trivial(i) for i in range(n)]
    return time.perf_counter() - t0


def run_local(n: int) -> float:
    """Wall time of ``n`` sequential fresh-interpreter runs of the same job."""
    code = "import submitit; print(sum(range(1000)))"
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--partition", default="debug")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="slurm_overhead_") as folder:  # fresh: no stale _result.pkl
        t_slurm = run_slurm(a.n, a.partition, folder)
    t_local = run_local(a.n)
    out = {"n_jobs": a.n, "slurm_s": round(t_slurm, 2), "local_s": round(t_local, 2),
           "slurm_s_per_job": round(t_slurm / a.n, 2), "local_s_per_job": round(t_local / a.n, 2),
           "overhead_s_per_job": round((t_slurm - t_local) / a.n, 2)}
    print(f"{a.n} trivial jobs: SLURM array {t_slurm:.1f} s, local {t_local:.1f} s")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()

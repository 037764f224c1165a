"""Training throughput and discriminator cost on 2 CPU cores.

1. Steps/s of each stage's training step on the default toy config (teacher; I ODE; II DMD incl. 5 critic
   updates; III GAN with R1+R2) — random weights, the real loss functions.
2. Bidirectional vs causal discriminator forward+backward (batch 4): time and peak memory above the resting RSS
   (kernel VmHWM after a reset) as the clip grows, each point in a fresh process.
   The paper: the bidirectional D needs more memory but trains faster with full-attention kernels.

Last line: one JSON object. Run: ``python benchmarks/training.py`` (about 3 minutes).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import default_cfg  # noqa: E402


def stage_rates(steps: int = 3) -> dict[str, float]:
    """Steps/s per stage via the real loops on tiny data sets of the default world."""
    from aad_bench.models.dit import DiTConfig
    from aad_bench.runfolder import RunFolder
    from aad_bench.training.distill import build_context
    from aad_bench.training.dmd import dmd_stage
    from aad_bench.training.gan import gan_stage
    from aad_bench.training.ode import ode_stage
    from aad_bench.training.teacher import train_teacher

    out = tempfile.mkdtemp()
    n = steps + 1  # one warm-up step, timed from the metrics log
    cfg = default_cfg(f"paths.out={out}", "progress=false", f"teacher.steps={n}", "teacher.log_every=1",
                      f"method.ode.steps={n}", f"method.dmd.steps={n}", f"method.gan.steps={n}",
                      "method.ode.pairs=8", "method.dmd.early_stop.criterion=budget", "distill.log_every=1",
                      "distill.ckpt_every=1000")
    torch.manual_seed(0)
    f, h, w = cfg.world.frames, cfg.world.height, cfg.world.width
    data = torch.rand(32, f, 3, h, w) * 2 - 1
    run = RunFolder(Path(out) / "run")
    run.path.mkdir()
    teacher = train_teacher(run, DiTConfig(**cfg.model), data, cfg.teacher, 0, progress=False)
    ctx = build_context(cfg, run, teacher, data, 1.0, data[:2, 0])
    ode_stage(ctx, None, {"bench": 1})
    dmd_stage(ctx, None)
    gan_stage(ctx, None)
    rates: dict[str, list[float]] = {}
    for row in run.metrics():
        if row["step"] > 1:
            rates.setdefault(row["stage"], []).append(row["steps_per_s"])
    return {f"{k}_steps_per_s": round(sum(v) / len(v), 3) for k, v in rates.items()}


def _disc_point(frames: int, visibility: str, q: mp.Queue) -> None:
    from aad_bench.models.discriminator import Discriminator
    from aad_bench.models.dit import DiTConfig, VideoDiT

    torch.set_num_threads(2)
    cfg = default_cfg(f"world.frames={frames}")
    d = Discriminator(VideoDiT(DiTConfig(**cfg.model)), visibility, "video", [1, 2, 3])
    x = torch.randn(4, frames, 3, cfg.world.height, cfg.world.width)
    t = torch.rand(4, frames)
    d(x, t).sum().backward()  # warm-up
    d.zero_grad(set_to_none=True)
    base = _reset_peak()
    t0 = time.perf_counter()
    for _ in range(3):
        d(x, t).sum().backward()
        d.zero_grad(set_to_none=True)
    q.put(((time.perf_counter() - t0) / 3, _status_kb("VmHWM") - base))


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _reset_peak() -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) so it measures only what follows; returns the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def disc_costs(frame_list=(9, 17, 33, 65)) -> list[dict]:
    ctx = mp.get_context("spawn")
    rows = []
    for frames in frame_list:
        for vis in ("bidirectional", "causal"):
            q = ctx.Queue()
            p = ctx.Process(target=_disc_point, args=(frames, vis, q))
            p.start()
            sec, peak = q.get()
            p.join()
            rows.append({"frames": frames, "backbone": vis, "fwd_bwd_s": round(sec, 4), "peak_extra_mb": peak // 1024})
    return rows


def main() -> dict:
    torch.set_num_threads(2)
    res = stage_rates()
    rows = disc_costs()
    print(f"{'frames':>6} {'backbone':>14} {'fwd+bwd s':>10} {'peak extra MB':>14}")
    for r in rows:
        print(f"{r['frames']:>6} {r['backbone']:>14} {r['fwd_bwd_s']:>10.3f} {r['peak_extra_mb']:>14}")
    for k, v in res.items():
        print(f"{k}: {v}")
    res["discriminator"] = rows
    return res


if __name__ == "__main__":
    print(json.dumps(main()))

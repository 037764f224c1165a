"""Scaling across processes on CPU (gloo): data-parallel throughput, ZeRO-3 / FSDP memory, Ulysses CP memory.

1. Samples/s of a flow-matching training step of the default DiT (global batch 8, 1 thread per process):
   2 processes (``ddp``, ``fsdp``) vs 1 (``single``) → ``dp2_over_dp1`` (ideal 2.0 on 2 free cores).
2. Bytes of parameters + gradients + optimizer state held per rank at the peak of an AdamW step of a wider DiT
   (after backward, before the update; storages reachable from the module, its gradients and the optimizer /
   ZeRO optimizer with its buffers, each counted once), at 2 ranks under ZeRO-3 and FSDP vs one process →
   ``zero3_mem_ratio``, ``fsdp_mem_ratio`` (target <= 0.6); ZeRO-3 also at 4 ranks.
3. Peak RSS above the resting RSS (VmHWM after a reset) of a bidirectional discriminator forward+backward on a
   long clip, per rank at Ulysses cp=2 vs cp=1 → ``cp2_disc_mem_ratio``; and its time.

Each point runs in fresh processes (``torch.distributed.run``). Last line: one JSON object.
Run: ``python benchmarks/scaling.py`` (about 3 minutes on 2 cores; DeepSpeed's first run adds its JIT build).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve()


def _dit(dim: int, depth: int, heads: int, frames_hw: int = 32):
    from aad_bench.models.dit import DiTConfig, VideoDiT

    torch.manual_seed(0)
    return VideoDiT(DiTConfig(height=frames_hw, width=frames_hw, dim=dim, depth=depth, heads=heads, chunk=4))


def _flow_loss(model, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    t = torch.rand(x0.shape[0], 1, generator=g).expand(-1, x0.shape[1]).contiguous()
    noise = torch.randn(x0.shape, generator=g)
    x_t = (1 - t[..., None, None, None]) * x0 + t[..., None, None, None] * noise
    return (model(x_t, t) - (noise - x0)).pow(2).mean()


def worker_throughput(engine, steps: int, batch: int) -> dict:
    rt = engine.rt
    m = engine.prepare(_dit(96, 4, 2), lambda mod: torch.optim.AdamW(mod.parameters(), lr=1e-4), name="teacher",
                       batch=batch, grad_clip=1.0)
    x = torch.randn(batch, 9, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # the global batch: each
    # model call gives every data-parallel rank its share
    g = torch.Generator().manual_seed(rt.rank)
    times = []
    for i in range(steps + 2):  # two warm-up steps
        rt.barrier()
        t0 = time.perf_counter()
        m.backward(_flow_loss(m, x, g))
        m.step()
        rt.barrier()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    return {"samples_per_s": batch / times[len(times) // 2], "step_s": times[len(times) // 2]}


def _storages(obj, seen: set, out: dict, depth: int = 0) -> None:
    """Unique tensor storages reachable from ``obj`` (tensors, DTensors, containers, optimizer objects)."""
    if depth > 6 or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        local = getattr(obj, "_local_tensor", None)  # DTensor: this rank's shard
        t = local if local is not None else obj
        if t.device.type != "meta" and t.numel():
            st = t.untyped_storage()
            out[st.data_ptr()] = st.nbytes()
        for extra in (getattr(obj, "grad", None), getattr(obj, "ds_tensor", None)):
            if extra is not None:
                _storages(extra, seen, out, depth + 1)
        return
    if isinstance(obj, dict):
        for v in list(obj.values()):
            _storages(v, seen, out, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _storages(v, seen, out, depth + 1)
    elif isinstance(obj, torch.optim.Optimizer) or type(obj).__module__.startswith("deepspeed.runtime.zero"):
        for v in list(vars(obj).values()):
            _storages(v, seen, out, depth + 1)


def worker_memory(engine) -> dict:
    m = engine.prepare(_dit(384, 8, 6), lambda mod: torch.optim.AdamW(mod.parameters(), lr=1e-4), name="model",
                       batch=engine.rt.dp_size, grad_clip=1.0)
    x = torch.randn(1, 5, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    m.backward(_flow_loss(m, x, g))
    m.step()  # creates the optimizer state
    m.backward(_flow_loss(m, x, g))  # the peak: weights + gradients + optimizer state, just before the update
    held: dict = {}
    seen: set = set()
    _storages([list(m.module.parameters()), m.optimizer], seen, held)
    if getattr(m, "ds", None) is not None:
        _storages(m.ds.optimizer, seen, held)
    m.step()
    return {"param_optim_mb": sum(held.values()) / 2**20,
            "n_params": sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in m.module.parameters())}


def _rss_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def worker_cp(engine, frames: int) -> dict:
    from aad_bench.models.discriminator import Discriminator

    d = engine.prepare(Discriminator(_dit(96, 4, 2), "bidirectional", "video", [1, 2, 3]),
                       lambda mod: torch.optim.AdamW(mod.parameters()), name="disc", batch=2,
                       context_parallel=True)
    x = torch.randn(2, frames, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    t = torch.rand(2, frames, generator=torch.Generator().manual_seed(1))
    d(x, t).sum().backward()  # warm-up
    d.module.zero_grad(set_to_none=True)
    engine.rt.barrier()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
    base = _rss_kb("VmRSS")
    t0 = time.perf_counter()
    d(x, t).sum().backward()
    sec = time.perf_counter() - t0
    return {"peak_extra_mb": (_rss_kb("VmHWM") - base) / 1024, "fwd_bwd_s": sec, "tokens": frames * 64}


def worker(args: argparse.Namespace) -> None:
    from aad_bench.engine import setup

    torch.set_num_threads(args.threads)
    engine = setup(json.loads(args.trainer))
    try:
        if args.worker == "throughput":
            res = worker_throughput(engine, args.steps, 8)
        elif args.worker == "memory":
            res = worker_memory(engine)
        else:
            res = worker_cp(engine, args.frames)
        rows = [None] * engine.rt.world
        if engine.rt.distributed:
            torch.distributed.all_gather_object(rows, res)
        else:
            rows = [res]
        if engine.rt.is_main:
            Path(args.out).write_text(json.dumps(rows))
    finally:
        engine.rt.close()


def run(what: str, trainer: dict, nproc: int, threads: int = 1, **kw) -> list[dict]:
    """One measurement in fresh processes; returns every rank's result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "res.json"
        args = [str(HERE), "--worker", what, "--trainer", json.dumps(trainer), "--out", str(out),
                "--threads", str(threads), *[f"--{k}={v}" for k, v in kw.items()]]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args] \
            if nproc > 1 else [sys.executable, *args]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
        if not out.exists():
            raise RuntimeError(f"{what} {trainer} x{nproc} failed:\n{(p.stdout + p.stderr)[-3000:]}")
        return json.loads(out.read_text())


def main() -> dict:
    res: dict = {"machine": f"{os.cpu_count()} CPU cores, gloo, torch {torch.__version__}"}
    dp1 = run("throughput", {}, 1, steps=6)[0]["samples_per_s"]
    dp1_2t = run("throughput", {}, 1, threads=2, steps=6)[0]["samples_per_s"]
    ddp = run("throughput", {"engine": "ddp"}, 2, steps=6)[0]["samples_per_s"]
    fsdp = run("throughput", {"engine": "fsdp"}, 2, steps=6)[0]["samples_per_s"]
    res.update(dp1_samples_per_s=round(dp1, 2), dp1_2threads_samples_per_s=round(dp1_2t, 2),
               ddp2_samples_per_s=round(ddp, 2), fsdp2_samples_per_s=round(fsdp, 2),
               dp2_over_dp1=round(ddp / dp1, 3), fsdp2_over_dp1=round(fsdp / dp1, 3))
    single = run("memory", {}, 1)[0]
    zero3 = run("memory", {"engine": "deepspeed", "deepspeed_config": "zero3"}, 2)
    fsdp_m = run("memory", {"engine": "fsdp"}, 2)
    zero3_4 = run("memory", {"engine": "deepspeed", "deepspeed_config": "zero3"}, 4)
    res.update(mem_params=single["n_params"], single_param_optim_mb=round(single["param_optim_mb"], 1),
               zero3_param_optim_mb=[round(r["param_optim_mb"], 1) for r in zero3],
               fsdp_param_optim_mb=[round(r["param_optim_mb"], 1) for r in fsdp_m],
               zero3_mem_ratio=round(max(r["param_optim_mb"] for r in zero3) / single["param_optim_mb"], 3),
               fsdp_mem_ratio=round(max(r["param_optim_mb"] for r in fsdp_m) / single["param_optim_mb"], 3),
               zero3_mem_ratio_4ranks=round(max(r["param_optim_mb"] for r in zero3_4) / single["param_optim_mb"], 3))
    cp1 = run("cp", {"engine": "ddp"}, 1, frames=33)[0]
    cp2 = run("cp", {"engine": "ddp", "cp": 2}, 2, frames=33)
    res.update(cp_tokens=cp1["tokens"], cp1_disc_peak_mb=round(cp1["peak_extra_mb"], 1),
               cp2_disc_peak_mb=[round(r["peak_extra_mb"], 1) for r in cp2],
               cp2_disc_mem_ratio=round(max(r["peak_extra_mb"] for r in cp2) / cp1["peak_extra_mb"], 3),
               cp1_disc_fwd_bwd_s=round(cp1["fwd_bwd_s"], 3),
               cp2_disc_fwd_bwd_s=round(max(r["fwd_bwd_s"] for r in cp2), 3))
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=["throughput", "memory", "cp"])
    ap.add_argument("--trainer", default="{}")
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--frames", type=int, default=33)
    a = ap.parse_args()
    if a.worker:
        worker(a)
    else:
        r = main()
        for k, v in r.items():
            print(f"{k}: {v}")
        print(json.dumps(r))

"""One-GPU benchmark in bf16 (unattended, a few minutes): per-stage step cost, discriminator trade-off, streaming.

1. Step time, tokens/s, peak memory and model FLOPs utilisation of each stage's step shape: teacher (flow
   matching, bidirectional), I (ODE regression, block-causal), II (DMD: rollout with gradient + frozen teacher +
   critic update), III (GAN: rollout + D on real/fake/R1/R2 + generator through D). FLOPs are counted by
   ``torch.utils.flop_counter`` on one step; MFU = FLOPs / time / the card's dense bf16 peak (table below).
2. Discriminator forward+backward, bidirectional (SDPA flash) vs causal (flex_attention BlockMask): time and
   peak memory as the clip grows (the paper's trade-off, measured).
3. One-step streaming: frames/s of the causal student's chunk-by-chunk rollout with its KV cache (batch 1).

Without CUDA it prints why and exits 0 (``--smoke`` runs the same code tiny on the CPU, for CI of this script).
Every measurement is guarded: a failing one records its error and the rest still run. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0,
                    "4090": 165.0, "3090": 71.0}  # dense bf16 tensor-core peaks of common cards (vendor sheets)


def _engine(device: str, precision: str):
    from aad_bench.engine import setup

    return setup({"device": device, "precision": precision})


def _model(size: dict):
    from aad_bench.models.dit import DiTConfig, VideoDiT

    torch.manual_seed(0)
    return VideoDiT(DiTConfig(height=size["hw"], width=size["hw"], patch=4, dim=size["dim"], depth=size["depth"],
                              heads=size["heads"], chunk=4, window_frames=size["frames"]))


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def measure(fn: Callable[[], object], dev: torch.device, repeats: int) -> dict:
    """Median time, peak memory and FLOPs of ``fn`` (after one warm-up call)."""
    from torch.utils.flop_counter import FlopCounterMode

    fn()
    _sync(dev)
    try:  # FLOPs of compiled kernels (flex_attention) may not be countable: then MFU is left out, not guessed
        with FlopCounterMode(display=False) as fc:
            fn()
        flops = fc.get_total_flops()
    except Exception:
        flops = None
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    return {"step_s": sorted(times)[len(times) // 2], "flops": flops, "peak_gib": peak}


def stage_steps(engine, size: dict) -> dict[str, Callable[[], object]]:
    """Closures running one optimizer step of each stage's shape on random data."""
    from aad_bench.models.discriminator import Discriminator, logistic_d_loss, nonsaturating_g_loss
    from aad_bench.sampling.samplers import causal_rollout

    dev, b, f = engine.rt.device, size["batch"], size["frames"]
    opt = lambda m: torch.optim.AdamW(m.parameters(), lr=1e-5)  # noqa: E731
    teacher = engine.prepare(_model(size), None, name="teacher")
    student = engine.prepare(_model(size), opt, name="student", batch=b, grad_clip=1.0)
    critic = engine.prepare(_model(size), opt, name="critic", batch=b, grad_clip=1.0)
    disc = engine.prepare(Discriminator(_model(size), "bidirectional", "video", sorted({0, size["depth"] - 1})), opt,
                          name="disc", batch=b, grad_clip=1.0)
    x = torch.randn(b, f, 3, size["hw"], size["hw"], device=dev)
    t = torch.rand(b, 1, device=dev).expand(b, f).contiguous()
    chunks = (f - 1) // 4

    def flow(m, causal=False):
        m.backward((m(x, t, causal=causal) - x).pow(2).mean())
        m.step()

    def rollout():
        return torch.cat([x[:, :1], causal_rollout(student, x[:, 0], chunks, noise=torch.randn_like(x[:, 1:]),
                                                   grad_chunks=set(range(chunks)))], 1)

    def dmd():
        fake = rollout()
        with torch.no_grad():
            grad = critic(fake, t) - teacher(fake, t)
        student.backward((fake * grad.detach()).mean())
        student.step()
        critic.backward((critic(fake.detach(), t) - x).pow(2).mean())
        critic.step()

    def gan():
        fake = rollout()
        lr_, lf_ = disc(x, t), disc(fake.detach(), t)
        r = (disc(x + 0.01 * torch.randn_like(x), t) - lr_).pow(2).mean()
        r = r + (disc(fake.detach() + 0.01 * torch.randn_like(x), t) - lf_).pow(2).mean()
        disc.backward(logistic_d_loss(lr_, lf_) + r)
        disc.step()
        with disc.frozen():
            loss = nonsaturating_g_loss(disc(fake, t))
        student.backward(loss)
        student.step()

    return {"teacher": lambda: flow(critic), "ode": lambda: flow(student, causal=True), "dmd": dmd, "gan": gan}


def disc_tradeoff(engine, size: dict, frames_list: list[int], repeats: int) -> list[dict]:
    from aad_bench.models.discriminator import Discriminator

    rows = []
    for frames in frames_list:
        for vis in ("bidirectional", "causal"):
            row = {"frames": frames, "backbone": vis, "tokens": frames * (size["hw"] // 4) ** 2}
            try:
                d = engine.prepare(Discriminator(_model(size), vis, "video", sorted({0, size["depth"] - 1})),
                                   lambda m: torch.optim.AdamW(m.parameters()), name="disc", batch=1)
                x = torch.randn(1, frames, 3, size["hw"], size["hw"], device=engine.rt.device)
                t = torch.rand(1, frames, device=engine.rt.device)

                def step(d=d, x=x, t=t):
                    d(x, t).sum().backward()
                    d.module.zero_grad(set_to_none=True)

                row.update(measure(step, engine.rt.device, repeats))
                del d
            except Exception as e:  # e.g. out of memory at the longest clip: record it, go on
                row["error"] = f"{type(e).__name__}: {str(e)[:200]}"
            rows.append(row)
            if engine.rt.device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


@torch.no_grad()
def streaming_fps(engine, size: dict, chunks: int) -> dict:
    from aad_bench.sampling.samplers import causal_rollout

    student = engine.prepare(_model(size), None, name="student")
    cond = torch.randn(1, 3, size["hw"], size["hw"], device=engine.rt.device)
    causal_rollout(student, cond, 2)  # warm-up
    _sync(engine.rt.device)
    t0 = time.perf_counter()
    causal_rollout(student, cond, chunks)
    _sync(engine.rt.device)
    sec = time.perf_counter() - t0
    return {"frames": chunks * 4, "fps": chunks * 4 / sec}


def run(smoke: bool) -> dict:
    dev_name = "cpu" if smoke else "cuda"
    engine = _engine(dev_name, "fp32" if smoke else "bf16")
    dev = engine.rt.device
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu (smoke)"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in card), None)
    size = {"hw": 16, "dim": 32, "depth": 2, "heads": 2, "frames": 9, "batch": 2} if smoke else \
        {"hw": 64, "dim": 512, "depth": 8, "heads": 8, "frames": 17, "batch": 4}
    res: dict = {"card": card, "peak_bf16_tflops": peak, "size": size, "torch": torch.__version__, "stages": {}}
    reps = 2 if smoke else 5
    tokens = size["batch"] * size["frames"] * (size["hw"] // 4) ** 2
    for name, fn in stage_steps(engine, size).items():
        try:
            m = measure(fn, dev, reps)
            m.update(tokens_per_s=tokens / m["step_s"],
                     mfu=m["flops"] / m["step_s"] / (peak * 1e12) if peak and m["flops"] else None)
            res["stages"][name] = m
        except Exception as e:
            res["stages"][name] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
    res["discriminator"] = disc_tradeoff(engine, size, [9] if smoke else [9, 17, 33, 65], reps)
    try:
        res["streaming"] = streaming_fps(engine, size, 2 if smoke else 16)
    except Exception as e:
        res["streaming"] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
    engine.rt.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (checks this script, no GPU)")
    a = ap.parse_args()
    if not a.smoke and not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device visible; nothing measured (run it on a GPU node)")
        print(json.dumps({"cuda": False, "skipped": "no CUDA device"}))
        return
    res = run(a.smoke)
    for name, m in res["stages"].items():
        if "error" in m:
            print(f"{name:>8}: {m['error']}")
            continue
        mfu = f"{100 * m['mfu']:.1f}%" if m.get("mfu") is not None else "n/a"
        peak = f"{m['peak_gib']:.2f} GiB" if m.get("peak_gib") is not None else "n/a"
        print(f"{name:>8}: {m['step_s'] * 1e3:8.1f} ms/step  {m['tokens_per_s']:10.0f} tokens/s  peak {peak}  "
              f"MFU {mfu}")
    for r in res["discriminator"]:
        print(f"D {r['backbone']:>13} {r['frames']:>3} frames ({r['tokens']} tokens): "
              + (r["error"] if "error" in r else f"{r['step_s'] * 1e3:.1f} ms, peak {r['peak_gib']} GiB"))
    print(f"streaming: {res['streaming']}")
    print(json.dumps({"cuda": not a.smoke, **res}, default=float))


if __name__ == "__main__":
    main()

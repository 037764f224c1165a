"""Wan backbone costs: CPU step times of ``wan_tiny`` per stage, latent-cache throughput of the tiny Wan VAE, and
(only with CUDA) streaming speed of a Wan-1.3B-shaped causal student at 480p, 81 frames.

CPU (2 threads, batch 2, clip = image latent + 3 chunks of 2, random weights):
  ``teacher_step_s``   bidirectional forward + backward + AdamW step (teacher training, critic update);
  ``stage1_step_s``    block-causal forward + backward + step (ODE regression / diffusion forcing);
  ``stage2_step_s``    self-rollout with the KV cache (gradient through the last chunk) + teacher and critic
                       evaluations + generator step + one critic step (one DMD iteration at ratio 1);
  ``stage3_step_s``    rollout + bidirectional video-head discriminator on real and fake + D step + G step;
  ``cache_clips_per_s`` mp4 → decord → tiny Wan VAE → shard files, 8 clips of 17 frames at 64x64.
GPU (skipped without CUDA): random-weight Wan2.1-1.3B shape in bf16, 480x832 (60x104 latents, 1560 tokens per
frame), 81 frames = image latent + 5 chunks of 4, streamed chunk by chunk with the fused cache refresh:
``gpu.fps_1nfe`` / ``gpu.first_chunk_s_1nfe`` (paper, H100: 43.37 FPS, 0.289 s) and the same for a 4-step student
(paper: 17.70 FPS, 0.714 s), without VAE decoding; ``gpu.vae_decode_s`` is the Wan VAE (real shape, random
weights) decoding the whole clip, reported separately.
Run: ``python benchmarks/wan.py``; the last line is one JSON object.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).parent))
from _common import median_time  # noqa: E402
from wan_helpers import tiny_inputs, tiny_model  # noqa: E402

from aad_bench.models.discriminator import Discriminator, logistic_d_loss, nonsaturating_g_loss  # noqa: E402
from aad_bench.models.rectified_flow import add_noise, x0_from_v  # noqa: E402


def rollout(model, cond: torch.Tensor, chunks: int, steps=(1.0,), grad_last: bool = False) -> torch.Tensor:
    """Chunk-by-chunk generation, the previous clean chunk refreshed into the cache in the same pass."""
    ck, b = model.cfg.chunk, cond.shape[0]
    shape = (b, ck, *cond.shape[1:])
    cache = model.new_cache()
    prev, prev_t, out = cond[:, None], torch.zeros(b, 1, device=cond.device), []
    for k in range(chunks):
        with torch.set_grad_enabled(grad_last and k == chunks - 1):
            x = torch.randn(shape, device=cond.device, dtype=cond.dtype)
            for i, t in enumerate(steps):
                tv = torch.full((b, ck), t, device=cond.device)
                if i == 0:
                    v = model.forward_cached(torch.cat([prev, x], 1), torch.cat([prev_t, tv], 1), cache,
                                             write_frames=prev.shape[1])[:, prev.shape[1]:]
                else:
                    v = model.forward_cached(x, tv, cache)
                x0 = x0_from_v(x, v, tv)
                nxt = steps[i + 1] if i + 1 < len(steps) else 0.0
                x = x0 if nxt == 0.0 else (1 - nxt) * x0 + nxt * torch.randn_like(x0)
        out.append(x)
        prev, prev_t = x.detach(), torch.zeros(b, ck, device=cond.device)
    return torch.cat(out, 1)


def cpu_steps(repeats: int) -> dict[str, float]:
    teacher, student, critic = tiny_model(0).train(), tiny_model(1).train(), tiny_model(2).train()
    x, t, ctx = tiny_inputs(teacher.cfg)
    opt = {m: torch.optim.AdamW(m.parameters(), 1e-4) for m in (teacher, student, critic)}
    disc = Discriminator(teacher, "bidirectional", "video", [1, 2])
    d_opt = torch.optim.AdamW(disc.parameters(), 1e-4)

    def step(model, causal):
        opt[model].zero_grad()
        (model(x, t, causal=causal, context=ctx) - x).square().mean().backward()
        opt[model].step()

    def dmd():
        fake = rollout(student, x[:, 0], 3, grad_last=True)
        tt = torch.full((2, 7), 0.5)
        tt[:, 0] = 0
        xt = add_noise(torch.cat([x[:, :1], fake], 1), torch.randn_like(x), tt)
        with torch.no_grad():
            real_v, fake_v = teacher(xt, tt, context=ctx), critic(xt, tt, context=ctx)
        opt[student].zero_grad()
        (fake * (fake_v - real_v)[:, 1:]).mean().backward()
        opt[student].step()
        opt[critic].zero_grad()
        (critic(xt.detach(), tt, context=ctx) - x).square().mean().backward()
        opt[critic].step()

    def gan():
        fake = rollout(student, x[:, 0], 3, grad_last=True)
        clip = torch.cat([x[:, :1], fake], 1)
        d_opt.zero_grad()
        logistic_d_loss(disc(x, t), disc(clip.detach(), t)).backward()
        d_opt.step()
        opt[student].zero_grad()
        nonsaturating_g_loss(disc(clip, t)).backward()
        opt[student].step()

    return {"teacher_step_s": median_time(lambda: step(teacher, False), repeats),
            "stage1_step_s": median_time(lambda: step(student, True), repeats),
            "stage2_step_s": median_time(dmd, repeats), "stage3_step_s": median_time(gan, repeats)}


def cache_throughput(n: int = 8) -> float:
    from aad_bench.data.latents import build_latent_cache
    from aad_bench.data.manifest import read_clips, write_folder_set
    from aad_bench.models.wan_vae import wan_vae_codec

    rng = np.random.default_rng(0)
    codec = wan_vae_codec(random="tiny", batch=4)
    with tempfile.TemporaryDirectory() as d:
        vids = [rng.integers(0, 255, (17, 72, 96, 3), dtype=np.uint8) for _ in range(n)]
        write_folder_set(Path(d) / "clips", vids, [f"clip {i}" for i in range(n)], fps=16)
        clips, _ = read_clips(Path(d) / "clips")
        t0 = time.perf_counter()
        build_latent_cache(clips, codec, Path(d) / "cache", frames=17, height=64, width=64, fps=16, shard_size=4,
                           codec_id="tiny", progress=False)
        return n / (time.perf_counter() - t0)


def gpu_streaming() -> dict[str, float]:
    """Wan-1.3B-shaped causal student (random bf16 weights) at 480p, 81 frames, on one CUDA device."""
    from aad_bench.models.wan import WanConfig, WanVideo
    from aad_bench.models.wan.checkpoints import cast

    dev = torch.device("cuda")
    cfg = WanConfig(chunk=4, sink_chunks=1, window_frames=20, dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device(dev):
        model = WanVideo(cfg)
    cast(model.net, torch.bfloat16)
    model.eval()
    cond = torch.randn(1, 16, 60, 104, device=dev)
    ctx = torch.randn(1, 512, 4096, device=dev, dtype=torch.bfloat16)
    model.null_text = ctx  # a prompt's worth of text tokens in every cross-attention
    out: dict[str, float] = {"params": sum(p.numel() for p in model.parameters())}
    for name, steps in (("1nfe", (1.0,)), ("4nfe", (1.0, 0.9375, 0.8333333, 0.625))):
        with torch.no_grad():
            rollout(model, cond, 5, steps)  # warm-up (flex BlockMask compilation, kernels)
            torch.cuda.synchronize()
            first = _first_chunk(model, cond, steps)
            times = []
            for _ in range(3):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                rollout(model, cond, 5, steps)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
        total = sorted(times)[1]
        out[f"fps_{name}"] = 81 / total
        out[f"first_chunk_s_{name}"] = first
        out[f"total_s_{name}"] = total
    out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    out["vae_decode_s"] = _vae_decode(dev)
    return out


def _first_chunk(model, cond, steps) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    rollout(model, cond, 1, steps)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def _vae_decode(dev) -> float:
    from diffusers import AutoencoderKLWan

    vae = AutoencoderKLWan().to(dev, torch.bfloat16).eval()
    z = torch.randn(1, 16, 21, 60, 104, device=dev, dtype=torch.bfloat16)
    with torch.no_grad():
        vae.decode(z[:, :, :2])
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        vae.decode(z)
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(repeats: int = 5) -> dict:
    torch.set_num_threads(2)
    res: dict = {"machine": "cpu", **cpu_steps(repeats), "cache_clips_per_s": cache_throughput()}
    print(f"wan_tiny CPU step time (s): teacher {res['teacher_step_s']:.3f}  stage I {res['stage1_step_s']:.3f}  "
          f"stage II {res['stage2_step_s']:.3f}  stage III {res['stage3_step_s']:.3f}")
    print(f"latent cache (tiny Wan VAE, 17x64x64 clips): {res['cache_clips_per_s']:.2f} clips/s")
    if torch.cuda.is_available():
        res["gpu"] = gpu_streaming()
        res["gpu"]["device"] = torch.cuda.get_device_name()
        g = res["gpu"]
        print(f"Wan-1.3B shape, 480p, 81 frames on {g['device']}: 1 NFE {g['fps_1nfe']:.1f} FPS "
              f"(first chunk {g['first_chunk_s_1nfe']:.3f} s; paper H100 43.37 FPS, 0.289 s), 4 NFE "
              f"{g['fps_4nfe']:.1f} FPS (paper 17.70 FPS, 0.714 s); VAE decode {g['vae_decode_s']:.2f} s")
    else:
        res["gpu"] = None
        print("GPU section skipped: no CUDA device")
    return res


if __name__ == "__main__":
    print(json.dumps(main()))

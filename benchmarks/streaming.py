"""Per-chunk latency of streaming generation with the sink + window KV cache, vs recomputing the prefix.

Prints a table and, as its last line, one JSON object; key ``chunk64_over_chunk2`` (target <= 1.15: flat cost per
chunk). The cache is still filling at chunk 2 (image + 1 chunk); it is full from chunk ``window_frames / chunk + 1``
on (``first_full_chunk``: 4 for the default 6-frame window of 2-frame chunks), so ``chunk64_over_full`` is the
steady-state flatness.
Run: ``python benchmarks/streaming.py`` (default toy backbone, random weights, batch 1, 2 CPU threads).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from aad_bench.models.dit import DiTConfig, VideoDiT

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _common import default_cfg  # noqa: E402


def _cached_latency(model: VideoDiT, chunks: int, probe: set[int]) -> dict[int, float]:
    """Roll out ``chunks`` chunks with the KV cache (fused cache refresh); time the probed chunks."""
    ck = model.cfg.chunk
    cache = model.new_cache()
    prev, prev_t = torch.randn(1, 1, 3, model.cfg.height, model.cfg.width), torch.zeros(1, 1)
    out: dict[int, float] = {}
    with torch.no_grad():
        for k in range(1, chunks + 1):
            x = torch.randn(1, ck, 3, model.cfg.height, model.cfg.width)
            t0 = time.perf_counter()
            y = model.forward_cached(torch.cat([prev, x], 1), torch.cat([prev_t, torch.ones(1, ck)], 1), cache,
                                     write_frames=prev.shape[1])[:, prev.shape[1]:]
            if k in probe:
                out[k] = time.perf_counter() - t0
            prev, prev_t = x - y, torch.zeros(1, ck)
    return out


def _recompute_latency(model: VideoDiT, k: int) -> float:
    """Without a cache, chunk ``k`` needs one causal pass over the whole prefix (image + k chunks)."""
    frames = 1 + k * model.cfg.chunk
    seq = torch.randn(1, frames, 3, model.cfg.height, model.cfg.width)
    t = torch.zeros(1, frames)
    t[:, -model.cfg.chunk:] = 1.0
    with torch.no_grad():
        t0 = time.perf_counter()
        model(seq, t, causal=True)
    return time.perf_counter() - t0


def main(repeats: int = 5) -> dict[str, float]:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = VideoDiT(DiTConfig(**default_cfg().model)).eval()
    _cached_latency(model, 4, set())  # warm-up
    full = model.cfg.window_frames // model.cfg.chunk + 1  # the first chunk that meets a full window
    probe = {2, full, 64}
    cached = [_cached_latency(model, 64, probe) for _ in range(repeats)]
    _recompute_latency(model, 2)
    med = {"cached": {k: statistics.median(r[k] for r in cached) for k in probe},
           "recompute": {k: statistics.median(_recompute_latency(model, k) for _ in range(3 if k < 8 else 1))
                         for k in (2, 64)}}
    print(f"{'mode':>10} {'chunk 2 (ms)':>14} {'chunk 64 (ms)':>14} {'64/2':>6}")
    for m, d in med.items():
        print(f"{m:>10} {1e3 * d[2]:14.2f} {1e3 * d[64]:14.2f} {d[64] / d[2]:6.2f}")
    return {"chunk2_ms": round(1e3 * med["cached"][2], 3), "chunk64_ms": round(1e3 * med["cached"][64], 3),
            "chunk64_over_chunk2": round(med["cached"][64] / med["cached"][2], 3),
            "first_full_chunk": full, "full_ms": round(1e3 * med["cached"][full], 3),
            "chunk64_over_full": round(med["cached"][64] / med["cached"][full], 3),
            "recompute_chunk2_ms": round(1e3 * med["recompute"][2], 3),
            "recompute_chunk64_ms": round(1e3 * med["recompute"][64], 3),
            "recompute_chunk64_over_chunk2": round(med["recompute"][64] / med["recompute"][2], 3),
            "window_frames": model.cfg.window_frames, "sink_chunks": model.cfg.sink_chunks,
            "chunk": model.cfg.chunk, "threads": torch.get_num_threads()}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)))

"""Per-chunk latency of streaming generation with the sink + window KV cache, vs recomputing the prefix.

Prints a table and, as its last line, one JSON object; key ``chunk64_over_chunk2`` (target <= 1.15: flat cost per
chunk). Run: ``python benchmarks/streaming.py`` (default toy backbone, random weights, batch 1, 2 CPU threads).
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


def _per_chunk_latency(model: VideoDiT, chunks: int, recompute: bool, probe: set[int]) -> dict[int, float]:
    ck = model.cfg.chunk
    cond = torch.randn(1, 1, 3, model.cfg.height, model.cfg.width)
    frames = [cond]
    cache = model.new_cache()
    prev, prev_t = cond, torch.zeros(1, 1)
    out: dict[int, float] = {}
    with torch.no_grad():
        for k in range(1, chunks + 1):
            x = torch.randn(1, ck, 3, model.cfg.height, model.cfg.width)
            t0 = time.perf_counter()
            if recompute:  # no cache: run the whole causal prefix again for every new chunk
                seq = torch.cat([*frames, x], 1)
                t = torch.zeros(1, seq.shape[1])
                t[:, -ck:] = 1.0
                y = model(seq, t, causal=True)[:, -ck:]
            else:
                y = model.forward_cached(torch.cat([prev, x], 1), torch.cat([prev_t, torch.ones(1, ck)], 1), cache,
                                         write_frames=prev.shape[1])[:, prev.shape[1]:]
            dt = time.perf_counter() - t0
            if k in probe:
                out[k] = dt
            x0 = x - y
            frames.append(x0)
            prev, prev_t = x0, torch.zeros(1, ck)
    return out


def main(repeats: int = 5) -> dict[str, float]:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = VideoDiT(DiTConfig(**default_cfg().model)).eval()
    _per_chunk_latency(model, 4, False, set())  # warm-up
    probe = {2, 64}
    runs = {"cached": [], "recompute": []}
    for _ in range(repeats):
        runs["cached"].append(_per_chunk_latency(model, 64, False, probe))
    for _ in range(max(1, repeats // 2)):  # the baseline is quadratic: fewer repeats
        runs["recompute"].append(_per_chunk_latency(model, 64, True, probe))
    med = {m: {k: statistics.median(r[k] for r in rs) for k in probe} for m, rs in runs.items()}
    print(f"{'mode':>10} {'chunk 2 (ms)':>14} {'chunk 64 (ms)':>14} {'64/2':>6}")
    for m, d in med.items():
        print(f"{m:>10} {1e3 * d[2]:14.2f} {1e3 * d[64]:14.2f} {d[64] / d[2]:6.2f}")
    return {"chunk2_ms": round(1e3 * med["cached"][2], 3), "chunk64_ms": round(1e3 * med["cached"][64], 3),
            "chunk64_over_chunk2": round(med["cached"][64] / med["cached"][2], 3),
            "recompute_chunk2_ms": round(1e3 * med["recompute"][2], 3),
            "recompute_chunk64_ms": round(1e3 * med["recompute"][64], 3),
            "recompute_chunk64_over_chunk2": round(med["recompute"][64] / med["recompute"][2], 3),
            "window_frames": model.cfg.window_frames, "sink_chunks": model.cfg.sink_chunks,
            "chunk": model.cfg.chunk, "threads": torch.get_num_threads()}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)))

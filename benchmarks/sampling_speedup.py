"""One-step causal student vs the multi-step teacher on the same backbone: sampling time per clip.

``nfe_bound`` is the ratio of network evaluations *in clip-forward equivalents*: the teacher runs ``steps`` full-clip
passes (x2 with CFG); the student runs one pass per chunk, each over [previous clean chunk (cache refresh) + new
chunk] against a bounded cache, which together cost about one full-clip pass for clips inside the window. Target:
``speedup >= 0.8 * nfe_bound``. Last line: one JSON object. Run: ``python benchmarks/sampling_speedup.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import default_cfg, median_time  # noqa: E402

from aad_bench.models.dit import DiTConfig, VideoDiT  # noqa: E402
from aad_bench.sampling.samplers import causal_rollout, teacher_sample  # noqa: E402


def main(batch: int = 4, repeats: int = 5) -> dict[str, float]:
    torch.set_num_threads(2)
    cfg = default_cfg()
    model = VideoDiT(DiTConfig(**cfg.model)).eval()
    frames = cfg.world.frames - 1
    cond = torch.randn(batch, 3, cfg.world.height, cfg.world.width)
    s = cfg.teacher.sample
    chunks = frames // model.cfg.chunk
    t_teacher = median_time(lambda: teacher_sample(model, cond, frames, s.steps, s.cfg, s.shift), repeats)
    with torch.no_grad():
        t_student = median_time(lambda: causal_rollout(model, cond, chunks), repeats)
    teacher_nfe = s.steps * (2 if s.cfg != 1.0 else 1)
    bound = teacher_nfe / 1.0
    res = {"teacher_steps": s.steps, "teacher_cfg": s.cfg, "teacher_nfe": teacher_nfe,
           "student_nfe_per_chunk": 1, "chunks": chunks, "nfe_bound": bound,
           "teacher_s_per_clip": round(t_teacher / batch, 5), "student_s_per_clip": round(t_student / batch, 5),
           "speedup": round(t_teacher / t_student, 3)}
    res["speedup_over_bound"] = round(res["speedup"] / bound, 3)
    # teacher sampling time per clip against its number of steps (CFG on)
    res["teacher_s_per_clip_by_steps"] = {
        n: round(median_time(lambda n=n: teacher_sample(model, cond, frames, n, s.cfg, s.shift), 3) / batch, 5)
        for n in (4, 8, 16, 32)}
    for n, v in res["teacher_s_per_clip_by_steps"].items():
        print(f"teacher {n:>2} steps: {1e3 * v:7.1f} ms/clip")
    print(f"teacher {s.steps} steps x{2 if s.cfg != 1 else 1} (CFG): {1e3 * t_teacher / batch:.1f} ms/clip; "
          f"one-step student ({chunks} chunks): {1e3 * t_student / batch:.1f} ms/clip; "
          f"speed-up {res['speedup']:.1f}x vs bound {bound:.0f}x")
    return res


if __name__ == "__main__":
    print(json.dumps(main()))

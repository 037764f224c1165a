"""Sampling generated videos from a run: training-length clips and long (>= 4x) streamed rollouts.

``task=sample`` (or ``aad-bench sample RUN``) re-samples a finished run from its checkpoint; the distillation task
calls the same functions at its end. Sampling never scores: evaluation is a separate step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from aad_bench.models.dit import VideoDiT
from aad_bench.runfolder import RunFolder
from aad_bench.sampling import causal_rollout
from aad_bench.tasks.common import decode, eval_conditions, summarize_motion, write_videos
from aad_bench.video.io import Mp4Writer, to_uint8
from aad_bench.video.sets import VideoSetWriter, video_name


def sample_student_set(cfg: DictConfig, student: VideoDiT, folder: Path, split: str, n: int, frames: int,
                       stream: bool = False) -> tuple[list[np.ndarray], float]:
    """Roll the causal student out from the images of ``split``; returns clips and seconds per video.

    With ``stream`` every chunk goes straight to the mp4 writers as it is generated (long rollouts).
    """
    stems, cond, metas = eval_conditions(cfg, split, n)
    ck = student.cfg.chunk
    chunks = -(-frames // ck)
    g = torch.Generator().manual_seed(cfg.sample.seed)
    noise = torch.randn((n, chunks * ck, *cond.shape[1:]), generator=g)
    meta = {"method": cfg.method.name, "seed": cfg.sample.seed,
            "sampling": {"nfe_per_chunk": len(cfg.method.student.steps), "steps": list(cfg.method.student.steps),
                         "chunk": ck, "sink_chunks": student.cfg.sink_chunks,
                         "window_frames": student.cfg.window_frames}}
    # one untimed chunk first: the first call pays for allocator and kernel warm-up
    causal_rollout(student, cond[:1], 1, noise=noise[:1, :ck], steps=tuple(cfg.method.student.steps))
    if not stream:
        t0 = time.perf_counter()
        gen = causal_rollout(student, cond, chunks, noise=noise, steps=tuple(cfg.method.student.steps))
        dt = (time.perf_counter() - t0) / n
        return write_videos(cfg, folder, stems, cond, gen[:, :frames], metas, cfg.world.fps, meta), dt
    writer = VideoSetWriter(folder, cfg.world.fps, meta=meta)
    mp4s = [Mp4Writer(folder / video_name(s), cfg.world.fps) for s in stems]
    for w, c in zip(mp4s, cond):
        w.write(to_uint8(decode(cfg, c[None, None])[0]))
    t0 = time.perf_counter()
    gen = causal_rollout(student, cond, chunks, noise=noise, steps=tuple(cfg.method.student.steps),
                         on_chunk=lambda x: [w.write(to_uint8(px)) for px, w in zip(decode(cfg, x), mp4s)])
    dt = (time.perf_counter() - t0) / n
    clips = []
    for i, (w, stem) in enumerate(zip(mp4s, stems)):
        w.close()
        clip = to_uint8(decode(cfg, torch.cat([cond[i:i + 1], gen[i]])[None])[0])
        clips.append(clip)
        writer.add(video_name(stem), None, {"seed": cfg.sample.seed + i, "frames": len(clip),
                                            "method": cfg.method.name, "gt": metas[i].get("gt")}, image=clip[0])
    return clips, dt


def sample_run(cfg: DictConfig, run: RunFolder, model: VideoDiT, data_speed: float, teacher: VideoDiT,
               ) -> dict[str, Any]:
    """Write ``videos/train_len`` (+ ``videos/long`` for causal students) and return the motion summary."""
    gen_frames = cfg.world.frames - 1
    if cfg.method.name == "teacher":
        from aad_bench.tasks.teacher_task import sample_teacher

        clips, timing = sample_teacher(cfg, teacher, run.videos("train_len"), cfg.sample.n_videos)
        summary = summarize_motion(clips, data_speed, run.path / "contact_sheet.png")
        return {**summary, "seconds_per_video": timing["seconds_per_video"], "nfe": timing["nfe"]}
    clips, dt = sample_student_set(cfg, model, run.videos("train_len"), "eval", cfg.sample.n_videos, gen_frames)
    summary = summarize_motion(clips, data_speed, run.path / "contact_sheet.png")
    long_frames = cfg.sample.long_factor * gen_frames
    long_clips, dt_long = sample_student_set(cfg, model, run.videos("long"), "long", cfg.sample.n_long,
                                             long_frames, stream=True)
    long = summarize_motion(long_clips, data_speed, run.path / "contact_sheet_long.png")
    return {**summary, "seconds_per_video": dt, "nfe": gen_frames // model.cfg.chunk,
            "long": {"frames": long_frames + 1, "speed_ratio": long["speed_ratio"],
                     "frozen_share": long["frozen_share"], "seconds_per_video": dt_long}}

"""Video sets of samples from a run.

Training-length clips and long (>= 4x) streamed rollouts of the causal student, or the teacher's multi-step
samples, written with their index (conditioning image, seed, sampling settings, the data clip's ground truth)
and a motion summary + contact sheet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from aad_bench.data.sources import eval_conditions, latent_frames, video_fps
from aad_bench.models.codec import codec_for
from aad_bench.models.dit import VideoDiT
from aad_bench.runfolder import RunFolder
from aad_bench.sampling.samplers import causal_rollout, teacher_sample
from aad_bench.sampling.text import caption_context
from aad_bench.video.io import Mp4Writer, contact_sheet, read_video, to_uint8
from aad_bench.video.sets import VideoSetWriter, video_name
from aad_bench.world.motion import FROZEN_SPEED, motion_summary
from aad_bench.world.tracking import mean_speed


def decode_clips(cfg: DictConfig, cond: torch.Tensor, gen: torch.Tensor) -> list[np.ndarray]:
    """The uint8 clips (cond frame + generated frames) of a batch of generated latents."""
    pixels = codec_for(cfg).decode(torch.cat([cond[:, None], gen], 1))
    return [to_uint8(p) for p in pixels]


def write_videos(cfg: DictConfig, folder: Path, stems: list[str], cond: torch.Tensor, gen: torch.Tensor,
                 metas: list[dict], extra: dict[str, Any]) -> list[np.ndarray]:
    """Write generated clips (cond frame + generated frames) as a video set; returns the uint8 clips."""
    writer = VideoSetWriter(folder, video_fps(cfg), meta=extra)
    clips = decode_clips(cfg, cond, gen)
    for i, (stem, clip) in enumerate(zip(stems, clips)):
        entry = {"seed": extra.get("seed", 0) + i, "frames": len(clip), "method": extra.get("method"),
                 "sampling": extra.get("sampling"), "gt": metas[i].get("gt")}
        entry.update({k: metas[i][k] for k in ("clip", "caption") if k in metas[i]})
        writer.add(video_name(stem), clip, entry, image=clip[0])
    return clips


def summarize_motion(clips: list[np.ndarray], metas: list[dict], sheet: Path) -> dict[str, Any]:
    """Motion of generated clips vs the data clips sharing their first frames, plus a contact sheet.

    See :func:`aad_bench.world.motion.motion_summary`; the sheet shows the first clips, each below its data clip
    when the data has one on disk (the toy world), enlarged so that a frame is about 96 px wide.
    """
    rows, labels = [], []
    for i, (clip, meta) in enumerate(list(zip(clips, metas))[:6]):
        if meta.get("data_video") and Path(meta["data_video"]).exists():
            rows.append(read_video(meta["data_video"])[0][:len(clip)])
            labels.append(f"data {i}")
        rows.append(clip)
        labels.append(f"generated {i}")
    contact_sheet(rows, sheet, labels=labels, scale=max(2, 96 // clips[0].shape[2]))
    return clip_motion(clips, metas) | {"contact_sheet": str(sheet)}


def clip_motion(clips: list[np.ndarray], metas: list[dict]) -> dict[str, Any]:
    """Speed ratio, frozen share and speeds of generated clips against the data clips sharing their first frames."""
    if any(m.get("gt") is None for m in metas):  # real data: tracked speeds against the data clips' own
        s = tracked_summary(clips, [m.get("data_speed") for m in metas])
    else:
        s = motion_summary(clips, [m["gt"] for m in metas])
    return {k: s[k] for k in ("speed_ratio", "frozen_share", "speed", "data_speed")}


DRAW_STRIDE = 100_003  # far from seed + i, the per-video numbers of the written index


def draw_seed(seed: int, k: int) -> int:
    """The noise seed of draw ``k`` of a set sampled with ``sample.seed=seed`` (draw 0: the written videos)."""
    return seed + DRAW_STRIDE * k


def motion_over_draws(cfg: DictConfig, first: dict[str, Any], draw: Callable[[int], list[np.ndarray]],
                      metas: list[dict]) -> dict[str, Any] | None:
    """Training-length motion over ``sample.draws`` noise draws of the same conditioning images.

    One draw of 16-32 clips is noisy (the default teacher reads 0.23-0.41 over 8 draws of its 32 eval clips), so a
    number to compare models by wants several. Draw 0 is the written set (``first``, its summary); ``draw(seed)``
    samples the clips of one more draw in memory, scored by the same measure and not written. None for one draw,
    and for real data (no ground-truth motion, and sampling a large model is the expensive part of a run).
    """
    n = int(cfg.sample.get("draws", 1))
    if n <= 1 or any(m.get("gt") is None for m in metas):
        return None
    runs = [first] + [clip_motion(draw(draw_seed(int(cfg.sample.seed), k)), metas) for k in range(1, n)]
    out: dict[str, Any] = {"n": n, "seeds": [draw_seed(int(cfg.sample.seed), k) for k in range(n)]}
    for key in ("speed_ratio", "frozen_share"):
        v = np.array([r[key] for r in runs], dtype=np.float64)
        out[key], out[f"{key}_se"] = float(v.mean()), float(v.std(ddof=1) / np.sqrt(n))
        out[f"{key}_per_draw"] = [float(x) for x in v]
    return out


def draws_line(draws: dict[str, Any] | None) -> str:
    """``over 8 noise draws: speed ratio 0.40 ± 0.03, frozen 32 ± 3 %`` (empty for one draw)."""
    if not draws:
        return ""
    return (f"over {draws['n']} noise draws: speed ratio {draws['speed_ratio']:.2f} ± {draws['speed_ratio_se']:.2f}, "
            f"frozen {100 * draws['frozen_share']:.0f} ± {100 * draws['frozen_share_se']:.0f} %")


def motion_line(summary: dict[str, Any]) -> str:
    """One line for a summary's motion: against the data clips, or the tracked speed alone (data=prompts)."""
    if summary.get("speed_ratio") is None:  # no data clips to compare with
        return f"tracked speed {summary['speed']:.3f} px/frame, frozen clips {summary['frozen_share']:.0%}"
    line = f"sprite speed generated/data {summary['speed_ratio']:.2f}, frozen clips {summary['frozen_share']:.0%}"
    return line + (f" ({draws_line(summary['draws'])})" if summary.get("draws") else "")


def tracked_summary(clips: list[np.ndarray], data_speeds: list[float | None]) -> dict[str, Any]:
    """:func:`motion_summary`'s numbers without ground truth: tracked speeds of generated and data clips.

    Without data clips (``data=prompts``: a speed is None) there is nothing to compare with: ``speed_ratio`` and
    ``data_speed`` are None and ``frozen_share`` is the share of generated clips that do not move.
    """
    speeds = np.array([mean_speed(c) for c in clips])
    if any(d is None for d in data_speeds):
        return {"speed_ratio": None, "frozen_share": float((speeds < FROZEN_SPEED).mean()),
                "speed": float(speeds.mean()), "data_speed": None}
    data = np.array(data_speeds, dtype=np.float64)
    moving = data >= FROZEN_SPEED
    return {"speed_ratio": float(speeds.mean() / max(data.mean(), 1e-9)),
            "frozen_share": float((speeds[moving] < FROZEN_SPEED).mean()) if moving.any() else 0.0,
            "speed": float(speeds.mean()), "data_speed": float(data.mean())}


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":  # time the work, not its launch
        torch.cuda.synchronize(dev)


def _student_meta(cfg: DictConfig, student: VideoDiT) -> dict[str, Any]:
    return {"method": cfg.method.name, "seed": cfg.sample.seed,
            "sampling": {"nfe_per_chunk": len(cfg.method.student.steps), "steps": list(cfg.method.student.steps),
                         "chunk": student.cfg.chunk, "sink_chunks": student.cfg.sink_chunks,
                         "window_frames": student.cfg.window_frames}}


def sample_student_set(cfg: DictConfig, student: VideoDiT, folder: Path, split: str, n: int, frames: int,
                       stream: bool = False
                       ) -> tuple[list[np.ndarray], list[dict], float, Callable[[int], list[np.ndarray]]]:
    """Roll the causal student out from the images of ``split``.

    Returns clips, their data metas, s/video and ``redraw(seed)``: the same images rolled out with other noise, in
    memory. With ``stream`` every chunk goes straight to the mp4 writers as it is generated (long rollouts).
    """
    stems, cond, metas = eval_conditions(cfg, split, n)
    ck, steps = student.cfg.chunk, tuple(cfg.method.student.steps)
    chunks = -(-frames // ck)
    dev = _device(student)
    noise = _noise((n, chunks * ck, *cond.shape[1:]), cfg.sample.seed, dev)
    cond_d = cond.to(dev)
    ctx, prompts = caption_context(cfg, student, [m.get("caption") for m in metas], dev)
    meta = _student_meta(cfg, student)
    meta["sampling"].update(prompts)

    def redraw(seed: int) -> list[np.ndarray]:
        gen = causal_rollout(student, cond_d, chunks, noise=_noise(noise.shape, seed, dev), steps=steps, context=ctx)
        return decode_clips(cfg, cond, gen.cpu()[:, :frames])

    # one untimed chunk first: the first call pays for allocator and kernel warm-up
    causal_rollout(student, cond_d[:1], 1, noise=noise[:1, :ck], steps=steps,
                   context=None if ctx is None else ctx[:1])
    codec = codec_for(cfg)
    if not stream or codec.temporal_ratio > 1:  # a temporal VAE decodes whole clips, not chunk by chunk
        _sync(dev)
        t0 = time.perf_counter()
        gen = causal_rollout(student, cond_d, chunks, noise=noise, steps=steps, context=ctx).cpu()
        dt = (time.perf_counter() - t0) / n
        return write_videos(cfg, folder, stems, cond, gen[:, :frames], metas, meta), metas, dt, redraw
    writer = VideoSetWriter(folder, video_fps(cfg), meta=meta)
    mp4s = [Mp4Writer(folder / video_name(s), video_fps(cfg)) for s in stems]
    for w, c in zip(mp4s, cond):
        w.write(to_uint8(codec.decode(c[None, None])[0]))
    _sync(dev)
    t0 = time.perf_counter()
    gen = causal_rollout(student, cond_d, chunks, noise=noise, steps=steps, context=ctx,
                         on_chunk=lambda x: [w.write(to_uint8(px)) for px, w in zip(codec.decode(x.cpu()), mp4s)])
    gen = gen.cpu()
    dt = (time.perf_counter() - t0) / n
    clips = []
    for i, (w, stem) in enumerate(zip(mp4s, stems)):
        w.close()
        clip = to_uint8(codec.decode(torch.cat([cond[i:i + 1], gen[i]])[None])[0])
        clips.append(clip)
        writer.add(video_name(stem), None, {"seed": cfg.sample.seed + i, "frames": len(clip),
                                            "method": cfg.method.name, "gt": metas[i].get("gt")}, image=clip[0])
    return clips, metas, dt, redraw


def sample_teacher(cfg: DictConfig, teacher: VideoDiT, out_dir: Path, n: int
                   ) -> tuple[list[np.ndarray], list[dict], dict[str, Any], Callable[[int], list[np.ndarray]]]:
    """Sample ``n`` teacher videos from the eval split's images into ``out_dir``.

    Returns clips, metas, timing and ``redraw(seed)``: the same images sampled with other noise, in memory.
    """
    stems, cond, metas = eval_conditions(cfg, "eval", n)
    s = cfg.teacher.sample
    dev, frames = _device(teacher), latent_frames(cfg) - 1
    cond_d = cond.to(dev)
    ctx, prompts = caption_context(cfg, teacher, [m.get("caption") for m in metas], dev)

    def generate(seed: int, steps: int = s.steps, k: int = n) -> torch.Tensor:
        noise = _noise((k, frames, *cond.shape[1:]), seed, dev)
        return teacher_sample(teacher, cond_d[:k], frames, steps, s.cfg, s.shift, noise=noise,
                              context=None if ctx is None else ctx[:k]).cpu()

    generate(cfg.sample.seed, steps=1, k=1)  # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    gen = generate(cfg.sample.seed)
    dt = time.perf_counter() - t0
    sampling = {"steps": s.steps, "cfg": s.cfg, "shift": s.shift, "nfe": s.steps * (2 if s.cfg != 1 else 1),
                **prompts}
    clips = write_videos(cfg, out_dir, stems, cond, gen, metas,
                         {"method": "teacher", "seed": cfg.sample.seed, "sampling": sampling})
    return clips, metas, {"seconds_per_video": dt / n, **sampling}, lambda seed: decode_clips(cfg, cond,
                                                                                             generate(seed))


def _noise(shape: tuple[int, ...], seed: int, dev: torch.device) -> torch.Tensor:
    """Noise drawn on the CPU from ``seed`` (the same videos on every device), moved to the model's device."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dev)


def teacher_set(cfg: DictConfig, teacher: VideoDiT, run: RunFolder) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sample the teacher's training-length set into ``run``.

    Returns its motion summary (with the noise draws) and the sampling settings and timing.
    """
    clips, metas, timing, redraw = sample_teacher(cfg, teacher, run.videos("train_len"), cfg.sample.n_videos)
    motion = summarize_motion(clips, metas, run.path / "contact_sheet.png")
    return {**motion, "draws": motion_over_draws(cfg, motion, redraw, metas)}, timing


def sample_run(cfg: DictConfig, run: RunFolder, model: VideoDiT) -> dict[str, Any]:
    """Write ``videos/train_len`` (+ ``videos/long`` for causal students) and return the motion summary.

    ``model`` is the teacher for ``method=teacher`` (multi-step sampler), else the trained causal student.
    """
    gen_frames = latent_frames(cfg) - 1
    if not cfg.method.stages:
        summary, timing = teacher_set(cfg, model, run)
        return {**summary, "seconds_per_video": timing["seconds_per_video"], "nfe": timing["nfe"]}
    clips, metas, dt, redraw = sample_student_set(cfg, model, run.videos("train_len"), "eval", cfg.sample.n_videos,
                                                  gen_frames)
    summary = summarize_motion(clips, metas, run.path / "contact_sheet.png")
    summary["draws"] = motion_over_draws(cfg, summary, redraw, metas)
    long_frames = cfg.sample.long_factor * gen_frames
    long_clips, long_metas, dt_long, _ = sample_student_set(cfg, model, run.videos("long"), "long",
                                                            cfg.sample.n_long, long_frames, stream=True)
    long = summarize_motion(long_clips, long_metas, run.path / "contact_sheet_long.png")
    return {**summary, "seconds_per_video": dt, "nfe": gen_frames // model.cfg.chunk * len(cfg.method.student.steps),
            "long": {"frames": long_frames + 1, "speed_ratio": long["speed_ratio"],
                     "frozen_share": long["frozen_share"], "seconds_per_video": dt_long}}

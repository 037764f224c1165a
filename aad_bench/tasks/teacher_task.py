"""``task=teacher``: build the toy data, train or reuse the cached teacher, sample teacher videos."""

from __future__ import annotations

import time
from typing import Any

import torch
from omegaconf import DictConfig

from aad_bench.sampling import teacher_sample
from aad_bench.tasks.common import (
    data_speed,
    eval_conditions,
    summarize_motion,
    training_data,
    world_config,
    write_videos,
)
from aad_bench.training.common import Diverged
from aad_bench.training.teacher import get_teacher
from aad_bench.world.dataset import build_toy_dataset


def run_toy_data(cfg: DictConfig) -> dict[str, Any]:
    """Only build (or find) the cached toy data set and print where it is."""
    root = build_toy_dataset(world_config(cfg), cfg.paths.cache, progress=cfg.progress)
    print(f"toy data set: {root}")
    return {"status": "finished", "path": str(root)}


def sample_teacher(cfg: DictConfig, teacher, out_dir, n: int) -> tuple[list, dict[str, Any]]:
    """Sample ``n`` teacher videos from the eval split's images into ``out_dir``; returns clips + timing."""
    stems, cond, metas = eval_conditions(cfg, "eval", n)
    s = cfg.teacher.sample
    g = torch.Generator().manual_seed(cfg.sample.seed)
    teacher_sample(teacher, cond[:1], cfg.world.frames - 1, 1, s.cfg, s.shift, generator=g)  # untimed warm-up
    g.manual_seed(cfg.sample.seed)
    t0 = time.perf_counter()
    gen = teacher_sample(teacher, cond, cfg.world.frames - 1, s.steps, s.cfg, s.shift, generator=g)
    dt = time.perf_counter() - t0
    sampling = {"steps": s.steps, "cfg": s.cfg, "shift": s.shift, "nfe": s.steps * (2 if s.cfg != 1 else 1)}
    clips = write_videos(cfg, out_dir, stems, cond, gen, metas, cfg.world.fps,
                         {"method": "teacher", "seed": cfg.sample.seed, "sampling": sampling})
    return clips, {"seconds_per_video": dt / n, **sampling}


def run(cfg: DictConfig) -> dict[str, Any]:
    """Teacher task: data → teacher (cached, shared) → samples + motion check in this job's run folder."""
    from omegaconf import OmegaConf

    from aad_bench.app import hydra_overrides, run_dir
    from aad_bench.runfolder import RunFolder

    run = RunFolder(run_dir(cfg))
    if run.is_finished():
        print(f"teacher task already finished: {run.path} (not overwritten)")
        return run.results()
    run.start(OmegaConf.to_yaml(cfg), {"task": "teacher", "method": "teacher", "seed": cfg.seed,
                                       "run_name": run.path.name, "overrides": hydra_overrides()})
    try:
        data = training_data(cfg)
        teacher, tdir = get_teacher(cfg, data, progress=cfg.progress)
        clips, timing = sample_teacher(cfg, teacher, run.videos("train_len"), cfg.sample.n_videos)
        motion = summarize_motion(clips, data_speed(cfg), run.path / "contact_sheet.png")
    except Diverged as d:
        return run.finish("diverged", d.reason, stage=d.stage, step=d.step)
    except Exception as e:
        run.finish("failed", f"{type(e).__name__}: {e}")
        raise
    summary = {**motion, "sampling": timing, "teacher_dir": str(tdir.path)}
    res = run.finish("finished", stage="teacher", step=cfg.teacher.steps, summary=summary)
    print(f"teacher run folder: {run.path}")
    print(f"  videos:        {run.videos('train_len')}")
    print(f"  contact sheet: {motion['contact_sheet']}")
    print(f"  mean tracked speed generated/data = {motion['speed_ratio']:.2f} "
          f"(data {motion['data_speed']:.2f} px/frame), frozen clips {motion['frozen_share']:.0%}")
    return res

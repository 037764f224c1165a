"""``task=teacher``: build the toy data, train or reuse the cached teacher, sample teacher videos."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from aad_bench.config import hydra_overrides, run_dir
from aad_bench.data.toy import training_data
from aad_bench.runfolder import RunFolder
from aad_bench.sampling.videos import sample_teacher, summarize_motion
from aad_bench.training.divergence import Diverged
from aad_bench.training.teacher import get_teacher


def run(cfg: DictConfig) -> dict[str, Any]:
    """Teacher task: data → teacher (cached, shared) → samples + motion check in this job's run folder."""
    run = RunFolder(run_dir(cfg))
    if run.is_finished():
        print(f"teacher task already finished: {run.path} (not overwritten)")
        return run.results()
    run.start(OmegaConf.to_yaml(cfg), {"task": "teacher", "method": "teacher", "seed": cfg.seed,
                                       "run_name": run.path.name, "overrides": hydra_overrides()})
    try:
        teacher, tdir = get_teacher(cfg, training_data(cfg), progress=cfg.progress)
        clips, metas, timing = sample_teacher(cfg, teacher, run.videos("train_len"), cfg.sample.n_videos)
        motion = summarize_motion(clips, metas, run.path / "contact_sheet.png")
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
    print(f"  sprite speed generated/data = {motion['speed_ratio']:.2f} "
          f"(data {motion['data_speed']:.2f} px/frame), frozen clips {motion['frozen_share']:.0%}")
    return res

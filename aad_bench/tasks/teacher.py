"""``task=teacher``: build the toy data, train or reuse the cached teacher, sample teacher videos."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from aad_bench.config import hydra_overrides, run_dir
from aad_bench.data.sources import check_source, latent_frames
from aad_bench.data.toy import training_data
from aad_bench.engine import Engine, setup
from aad_bench.engine.settings import check_run
from aad_bench.models.backbones import backbone_config
from aad_bench.runfolder import RunFolder
from aad_bench.sampling.videos import draws_line, teacher_set
from aad_bench.training.divergence import Diverged
from aad_bench.training.teacher import get_teacher


def run(cfg: DictConfig) -> dict[str, Any]:
    """Teacher task: data → teacher (cached, shared) → samples + motion check in this job's run folder.

    Under a distributed engine every rank trains the teacher; rank 0 alone writes the run folder and samples.
    """
    check_source(cfg, None)  # data=prompts has no clips to train a teacher on
    engine = setup(cfg.get("trainer"))
    try:
        return _run(cfg, engine)
    finally:
        engine.rt.close()


def _run(cfg: DictConfig, engine: Engine) -> dict[str, Any]:
    rt, mcfg = engine.rt, backbone_config(cfg.model)
    check_run(rt.settings, rt.dp_size, {"teacher.batch": cfg.teacher.batch}, mcfg.heads,
              latent_frames(cfg) * mcfg.tokens_per_frame, cfg.model.get("arch", "dit"))
    run = RunFolder(run_dir(cfg))
    if rt.main_decides(run.is_finished):
        print(f"teacher task already finished: {run.path} (not overwritten)")
        return run.results()
    run.start(OmegaConf.to_yaml(cfg), {"task": "teacher", "method": "teacher", "seed": cfg.seed,
                                       "run_name": run.path.name, "overrides": hydra_overrides()},
              extra_provenance={"distributed": rt.describe()})
    try:
        teacher, tdir = get_teacher(cfg, training_data(cfg), progress=cfg.progress and rt.is_main, engine=engine)
        if not rt.is_main:
            return {"status": "finished", "rank": rt.rank}
        motion, timing = teacher_set(cfg, teacher.to(rt.device), run)
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
    if motion["draws"]:
        print(f"  {draws_line(motion['draws'])}")
    return res

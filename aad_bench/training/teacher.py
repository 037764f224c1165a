"""The teacher: a bidirectional flow-matching I2V DiT trained on the toy world, cached by a hash of its config.

Every later run (ODE pairs, DMD's real score, discriminator initialisation) reuses the cached teacher.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from filelock import FileLock
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from aad_bench.models.backbones import build_backbone
from aad_bench.models.dit import ARCH_VERSION, VideoDiT
from aad_bench.models.rectified_flow import add_noise, frame_times, sample_times
from aad_bench.runfolder import RunFolder
from aad_bench.training.checkpoint import load_final, load_latest, save_checkpoint
from aad_bench.training.divergence import Diverged, check_finite, clip_grad
from aad_bench.training.optim import EMA, make_optimizer, set_lr
from aad_bench.training.rng import batch, step_generator
from aad_bench.training.steplog import StepLogger
from aad_bench.utils.provenance import config_hash

STAGE = "teacher"


def teacher_key(world: dict, model: dict, train: dict, codec: str = "identity") -> dict[str, Any]:
    """What determines the teacher's weights (sampling settings excluded)."""
    train = {k: v for k, v in train.items() if k not in ("sample", "eval_videos", "log_every", "ckpt_every")}
    key = {"world": world, "model": model, "train": train, "arch": ARCH_VERSION}
    return key if codec == "identity" else {**key, "codec": codec}  # identity keeps existing cache keys


def teacher_key_for(cfg: DictConfig) -> dict[str, Any]:
    """:func:`teacher_key` of a full run config (plus the real-data settings when a ``data`` source is set)."""
    key = teacher_key(OmegaConf.to_container(cfg.world), OmegaConf.to_container(cfg.model),
                      OmegaConf.to_container(cfg.teacher), cfg.get("codec", "identity"))
    return {**key, "data": OmegaConf.to_container(cfg.data)} if cfg.get("data") else key


def teacher_dir(cache_root: str | Path, key: dict[str, Any]) -> Path:
    """The cache folder of the teacher with this key."""
    return Path(cache_root) / "teacher" / config_hash(key)


def teacher_loss(model: VideoDiT, x0: torch.Tensor, g: torch.Generator, tc: DictConfig) -> torch.Tensor:
    """Flow-matching loss on the generated frames; one time per clip; image dropped with ``p_uncond``."""
    b, f = x0.shape[:2]
    t = sample_times(b, g, tc.time_dist)
    noise = torch.randn(x0.shape, generator=g)
    x_t = add_noise(x0, noise, frame_times(b, f - 1, t))
    drop = torch.rand(b, generator=g) < tc.p_uncond
    v = model(x_t, frame_times(b, f - 1, t), cond_drop=drop)
    return F.mse_loss(v[:, 1:], (noise - x0)[:, 1:])


def train_teacher(run: RunFolder, mcfg: DictConfig, data: torch.Tensor, tc: DictConfig, seed: int,
                  progress: bool = True) -> VideoDiT:
    """Train (or resume) the teacher (backbone settings ``mcfg`` = ``cfg.model``) in ``run``; returns the EMA model."""
    torch.manual_seed(seed)
    model = build_backbone(mcfg)
    ema = EMA(model, tc.ema)
    opt = make_optimizer(model.parameters(), tc.lr, weight_decay=tc.weight_decay)
    start = 0
    state = load_latest(run.checkpoints)
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
    run.rewind_metrics(state)  # one metrics row per step after a resume
    bar = tqdm(total=tc.steps, initial=start, desc="teacher", disable=not progress, leave=False)
    log = StepLogger(run, STAGE, tc.log_every, bar)
    for step in range(start, tc.steps):
        g = step_generator(seed, STAGE, step)
        lr = set_lr(opt, step, tc.warmup, tc.steps)
        loss = teacher_loss(model, batch(data, tc.batch, g), g, tc)
        check_finite(STAGE, step, loss=loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = clip_grad(model.parameters(), tc.grad_clip, STAGE, step, tc.explode_grad)
        opt.step()
        ema.update(model)
        log(step + 1, {"loss/flow": loss.item(), "grad_norm": gnorm, "lr": lr}, force=step + 1 == tc.steps)
        if (step + 1) % tc.ckpt_every == 0 or step + 1 == tc.steps:
            save_checkpoint(run.checkpoints, STAGE, step + 1, {"model": model.state_dict(), "ema": ema.state_dict(),
                                                               "opt": opt.state_dict()})
            run.update(stage=STAGE, step=step + 1)
    bar.close()
    model.load_state_dict(ema.state_dict())
    return model.eval().requires_grad_(False)


def get_teacher(cfg: DictConfig, data: torch.Tensor, progress: bool = True) -> tuple[VideoDiT, RunFolder]:
    """The cached teacher for ``cfg`` (trained now if the cache has no finished one)."""
    run = RunFolder(teacher_dir(cfg.paths.cache, teacher_key_for(cfg)))
    run.path.mkdir(parents=True, exist_ok=True)
    # concurrent jobs (a campaign) share one teacher: the first trains it, the others wait and reuse it
    with FileLock(str(run.path) + ".lock"):
        return _load_or_train(cfg, run, data, progress)


def _load_or_train(cfg: DictConfig, run: RunFolder, data: torch.Tensor, progress: bool) -> tuple[VideoDiT, RunFolder]:
    mcfg = cfg.model
    if run.is_finished():
        state = load_final(run.checkpoints, step=cfg.teacher.steps)  # corrupt: an error naming it, never older weights
        model = build_backbone(mcfg)
        model.load_state_dict(state["ema"])
        print(f"teacher: reusing cached {run.path}")
        return model.eval().requires_grad_(False), run
    run.start(OmegaConf.to_yaml(cfg), {"task": "teacher", "method": "teacher", "seed": cfg.teacher.seed,
                                       "config_hash": run.path.name})
    try:
        model = train_teacher(run, mcfg, data, cfg.teacher, cfg.teacher.seed, progress)
    except Diverged as d:
        run.finish("diverged", d.reason, stage=d.stage, step=d.step)
        raise
    finally:
        run.release()  # never left owned after a crash (the file lock above still guards the folder)
    run.finish("finished", stage=STAGE, step=cfg.teacher.steps)
    return model, run

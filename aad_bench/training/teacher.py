"""The teacher: a bidirectional flow-matching I2V DiT trained on the toy world, cached by a hash of its config.

Every later run (ODE pairs, DMD's real score, discriminator initialisation) reuses the cached teacher.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from filelock import FileLock
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from aad_bench.data.loader import TrainingSet, context_part, uses_text
from aad_bench.data.prompts import NEEDS_TEACHER, teacher_folder
from aad_bench.engine import Engine, EngineError
from aad_bench.engine.checkpoint import load_sharded, save_sharded
from aad_bench.engine.ema import ShardedEMA
from aad_bench.engine.engines import default_engine
from aad_bench.models.backbones import build_backbone
from aad_bench.models.dit import ARCH_VERSION, VideoDiT
from aad_bench.models.rectified_flow import add_noise, frame_times, sample_times
from aad_bench.runfolder import RunFolder
from aad_bench.sampling.samplers import context_kwargs
from aad_bench.training.checkpoint import load_final, load_latest, next_name, prune, save_checkpoint
from aad_bench.training.divergence import Diverged, check_finite, grad_guard
from aad_bench.training.optim import make_optimizer, set_lr
from aad_bench.training.rng import step_generator
from aad_bench.training.steplog import StepLogger
from aad_bench.utils.provenance import config_hash

STAGE = "teacher"


def teacher_key(world: dict, model: dict, train: dict, codec: str = "identity") -> dict[str, Any]:
    """What determines the teacher's weights (sampling settings excluded)."""
    train = {k: v for k, v in train.items() if k not in ("sample", "eval_videos", "log_every", "ckpt_every")}
    key = {"world": world, "model": model, "train": train, "arch": ARCH_VERSION}
    return key if codec == "identity" else {**key, "codec": codec}  # identity keeps existing cache keys


def teacher_key_for(cfg: DictConfig) -> dict[str, Any]:
    """:func:`teacher_key` of a full run config.

    Plus the real-data settings when a ``data`` source is set, and whether its captions reach the backbone.
    """
    key = teacher_key(OmegaConf.to_container(cfg.world), OmegaConf.to_container(cfg.model),
                      OmegaConf.to_container(cfg.teacher), cfg.get("codec", "identity"))
    if not cfg.get("data"):
        return key
    text = {"text": "captions"} if uses_text(cfg, captions=cfg.data.source in ("folder", "prompts")) else {}
    return {**key, "data": OmegaConf.to_container(cfg.data), **text}


def teacher_dir(cache_root: str | Path, key: dict[str, Any]) -> Path:
    """The cache folder of the teacher with this key."""
    return Path(cache_root) / "teacher" / config_hash(key)


def teacher_times(b: int, g: torch.Generator, tc: DictConfig) -> torch.Tensor:
    """Training flow times drawn from ``tc.time_dist`` (``uniform`` | ``logit_normal``).

    The logit-normal is centred at ``tc.time_mean``: > 0 puts more weight on high noise, where a sample's layout
    and motion are decided (the sampler starts at t = 1, which logit-normal(0, 1) almost never trains).
    """
    mean = float(tc.get("time_mean", 0.0))
    if tc.time_dist == "logit_normal" and mean:
        return torch.sigmoid(torch.randn(b, generator=g) + mean)
    return sample_times(b, g, tc.time_dist)


def teacher_loss(model: VideoDiT, x0: torch.Tensor, g: torch.Generator, tc: DictConfig,
                 context: torch.Tensor | None = None) -> torch.Tensor:
    """Flow-matching loss on the generated frames; one time per clip; condition dropped with ``p_uncond``.

    ``context``: the clips' text embeddings ``[B, L, D]`` (None without text); what a drop removes is the
    backbone's choice (toy DiT: the image; Wan: ``model.cfg_drop``).
    """
    b, f = x0.shape[:2]
    t = teacher_times(b, g, tc)
    noise = torch.randn(x0.shape, generator=g)
    x_t = add_noise(x0, noise, frame_times(b, f - 1, t))
    drop = torch.rand(b, generator=g) < tc.p_uncond
    v = model(x_t, frame_times(b, f - 1, t), cond_drop=drop, **context_kwargs(context))
    return F.mse_loss(v[:, 1:], (noise - x0)[:, 1:])


def train_teacher(run: RunFolder, mcfg: DictConfig, data: TrainingSet | torch.Tensor, tc: DictConfig, seed: int,
                  progress: bool = True, engine: Engine | None = None) -> VideoDiT:
    """Train (or resume) the teacher (backbone settings ``mcfg`` = ``cfg.model``) in ``run``; returns the EMA model.

    ``data``: the training set (or a tensor of clips). ``engine`` (default: one process on the CPU) runs it:
    distributed, sharded, on the device, in bf16.
    """
    engine, data = engine or default_engine(), TrainingSet.of(data)
    data.require_clips("training a teacher")
    state = load_latest(run.checkpoints)
    if state is not None and "ema" in state and state["step"] >= tc.steps:  # finished, not yet marked so
        return _eval_model(mcfg, state["ema"])
    torch.manual_seed(seed)
    opt = lambda m: make_optimizer(m.parameters(), tc.lr, weight_decay=tc.weight_decay)  # noqa: E731
    model = engine.prepare(build_backbone(mcfg), opt, name="teacher", batch=tc.batch, batch_setting="teacher.batch",
                           grad_clip=tc.grad_clip)
    ema = ShardedEMA(model, tc.ema)
    start = _restore(state, engine, model, ema, run)
    run.rewind_metrics(state)  # one metrics row per step after a resume
    bar = tqdm(total=tc.steps, initial=start, desc="teacher", disable=not progress, leave=False)
    log = StepLogger(run, STAGE, tc.log_every, bar)
    for step in range(start, tc.steps):
        g = step_generator(seed, STAGE, step)
        lr = set_lr(model.optimizer, step, tc.warmup, tc.steps)
        clips, text = data.batch(tc.batch, g)
        for part in model.parts(tc.batch):  # gradient accumulation (one part unless trainer.micro_batch is set)
            loss = teacher_loss(model, clips[part], g, tc, context_part(text, part))
            check_finite(STAGE, step, loss=loss.item())
            model.backward(loss)
        gnorm = model.step(check=grad_guard(STAGE, step, tc.explode_grad))
        ema.update()
        log(step + 1, {"loss/flow": loss.item(), "grad_norm": gnorm, "lr": lr}, force=step + 1 == tc.steps)
        if (step + 1) % tc.ckpt_every == 0 or step + 1 == tc.steps:
            _save(run, engine, model, ema, step + 1, final=step + 1 == tc.steps)
    bar.close()
    return _eval_model(mcfg, ema.full_state_dict())


def _eval_model(mcfg: DictConfig, weights: dict[str, torch.Tensor]) -> VideoDiT:
    model = build_backbone(mcfg)
    model.load_state_dict(weights)
    return model.eval().requires_grad_(False)


def _save(run: RunFolder, engine: Engine, model: Any, ema: ShardedEMA, step: int, final: bool) -> None:
    """Sharded mid-training under a distributed engine; a full file (what the cache reads) otherwise and at the end."""
    rt = engine.rt
    if engine.name != "single" and not final:
        name = rt.main_decides(lambda: next_name(run.checkpoints, STAGE, step))
        save_sharded(run.checkpoints, name, rt, {"teacher": model}, {"ema": ema}, {"stage": STAGE, "step": step})
        if rt.is_main:
            prune(run.checkpoints, 2)
    else:
        state = {"model": model.full_state_dict(), "ema": ema.full_state_dict()}
        if engine.name == "single":
            state["opt"] = model.optimizer.state_dict()
        if rt.is_main:
            save_checkpoint(run.checkpoints, STAGE, step, state)
        rt.barrier()
    run.update(stage=STAGE, step=step)


def _restore(state: dict[str, Any] | None, engine: Engine, model: Any, ema: ShardedEMA, run: RunFolder) -> int:
    if state is None:
        return 0
    if "sharded" in state:
        load_sharded(Path(state["sharded"]), engine.rt, {"teacher": model}, {"ema": ema})
    elif engine.name != "single":
        raise EngineError(f"{run.checkpoints}: the latest checkpoint was written by one process; resume it with "
                          f"trainer.engine=single (or delete {run.path} to retrain under {engine.name})")
    else:
        model.module.load_state_dict(state["model"])
        ema.shadow = {n: t.clone() for n, t in state["ema"].items()}
        model.optimizer.load_state_dict(state["opt"])
    return int(state["step"])


def get_teacher(cfg: DictConfig, data: TrainingSet | torch.Tensor, progress: bool = True,
                engine: Engine | None = None) -> tuple[VideoDiT, RunFolder | None]:
    """The cached teacher for ``cfg`` (trained now, under ``engine``, if the cache has no finished one).

    ``data=prompts`` cannot train one: the teacher is given (:func:`given_teacher`).
    """
    if cfg.get("data") and cfg.data.source == "prompts":
        return given_teacher(cfg)
    engine = engine or default_engine()
    run = RunFolder(teacher_dir(cfg.paths.cache, teacher_key_for(cfg)))
    if engine.rt.is_main:
        run.path.mkdir(parents=True, exist_ok=True)
    # concurrent jobs (a campaign) share one teacher: the first trains it, the others wait and reuse it; in a
    # distributed job rank 0 holds the lock for all its ranks
    with FileLock(str(run.path) + ".lock") if engine.rt.is_main else contextlib.nullcontext():
        return _load_or_train(cfg, run, data, progress, engine)


def _load_or_train(cfg: DictConfig, run: RunFolder, data: TrainingSet | torch.Tensor, progress: bool,
                   engine: Engine) -> tuple[VideoDiT, RunFolder]:
    mcfg = cfg.model
    if engine.rt.main_decides(run.is_finished):
        state = load_final(run.checkpoints, step=cfg.teacher.steps)  # corrupt: an error naming it, never older weights
        model = build_backbone(mcfg)
        model.load_state_dict(state["ema"])
        print(f"teacher: reusing cached {run.path}")
        return model.eval().requires_grad_(False), run
    run.start(OmegaConf.to_yaml(cfg), {"task": "teacher", "method": "teacher", "seed": cfg.teacher.seed,
                                       "config_hash": run.path.name})
    try:
        model = train_teacher(run, mcfg, data, cfg.teacher, cfg.teacher.seed, progress, engine)
    except Diverged as d:
        run.finish("diverged", d.reason, stage=d.stage, step=d.step)
        raise
    finally:
        run.release()  # never left owned after a crash (the file lock above still guards the folder)
    run.finish("finished", stage=STAGE, step=cfg.teacher.steps)
    return model, run


def given_teacher(cfg: DictConfig) -> tuple[VideoDiT, RunFolder | None]:
    """The teacher of a run without clips: ``model.checkpoint.path`` as it is, else ``data.teacher``'s final EMA.

    ``data.teacher`` is a finished teacher folder (``<paths.cache>/teacher/<hash>``, e.g. of a ``data=folder`` run
    with the same model settings). Neither set: one line naming them.
    """
    if (cfg.model.get("checkpoint") or {}).get("path"):
        return build_backbone(cfg.model).eval().requires_grad_(False), None
    folder = cfg.data.get("teacher")
    if not folder:
        raise ValueError(NEEDS_TEACHER)
    run = RunFolder(teacher_folder(folder))
    model = build_backbone(cfg.model)
    try:
        model.load_state_dict(load_final(run.checkpoints)["ema"])
    except (KeyError, RuntimeError) as e:
        raise ValueError(f"data.teacher={folder}: its weights do not fit this model's settings "
                         f"({str(e).splitlines()[0][:200]})") from None
    print(f"teacher: {run.path} (data.teacher)")
    return model.eval().requires_grad_(False), run

"""Stage I — ODE initialisation: the causal student regresses cached teacher ODE trajectories.

Only the student's own target times are supervised (for a one-step student: noise at t=1 → the teacher's final
clean clip). Diffusion forcing: every chunk gets its own noise level, drawn from the target times, and with
probability ``p_clean`` a chunk is clean context instead (loss-masked) — at inference the KV cache holds clean
chunks, so the student must learn to continue from them.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from aad_bench.data.loader import TrainingSet
from aad_bench.engine.runtime import Runtime
from aad_bench.models.dit import VideoDiT
from aad_bench.models.rectified_flow import frame_times, shift_time
from aad_bench.sampling.samplers import context_kwargs, velocity
from aad_bench.training.checkpoint import CheckpointError, load_file
from aad_bench.training.context import DistillContext
from aad_bench.training.divergence import check_finite, grad_guard
from aad_bench.training.optim import make_optimizer, set_lr
from aad_bench.training.rng import step_generator
from aad_bench.training.steplog import StepLogger
from aad_bench.utils.io import atomic_write_bytes
from aad_bench.utils.provenance import config_hash

STAGE = "ode"

#################################################################################
#                        Teacher ODE pairs and the loss                         #
#################################################################################


@torch.no_grad()
def teacher_trajectories(teacher: VideoDiT, cond: torch.Tensor, frames: int, steps: int, cfg_scale: float,
                         shift: float, targets: list[float], g: torch.Generator, batch: int = 32,
                         text_of: Callable[[torch.Tensor], torch.Tensor | None] | None = None
                         ) -> dict[str, torch.Tensor]:
    """Euler ODE solves from noise; keeps the states at the student's target times and the final clip.

    ``text_of`` maps rows of ``cond`` to their text embeddings (None: no text), fetched one solve batch at a time.
    """
    grid = [float(shift_time(1 - i / steps, shift)) for i in range(steps + 1)]
    keep = {t: min(range(len(grid)), key=lambda i: abs(grid[i] - t)) for t in targets}
    states: dict[float, list] = {t: [] for t in targets}
    finals = []
    for s in range(0, len(cond), batch):
        c = cond[s:s + batch]
        text = text_of(torch.arange(s, s + len(c))) if text_of is not None else None
        x = torch.randn((len(c), frames, *c.shape[1:]), generator=g)
        for i in range(steps + 1):
            for t, idx in keep.items():
                if idx == i:
                    states[t].append(x.clone())
            if i == steps:
                break
            tt = frame_times(len(c), frames, torch.full((len(c),), grid[i]))
            x = x + (grid[i + 1] - grid[i]) * velocity(teacher, torch.cat([c[:, None], x], 1), tt, cfg_scale,
                                                     context=text)[:, 1:]
        finals.append(x)
    return {"cond": cond, "x0": torch.cat(finals), "targets": torch.tensor(targets),
            "states": torch.stack([torch.cat(states[t]) for t in targets])}


def load_or_make_pairs(path: Path, teacher: VideoDiT, data: TrainingSet | torch.Tensor, oc: DictConfig,
                       tsample: DictConfig, targets: list[float], seed: int, progress: bool,
                       rt: Runtime | None = None) -> dict[str, torch.Tensor]:
    """ODE pairs from the cache file, generated once (atomic write by rank 0) if absent.

    Rank 0 decides whether the file is usable, so every rank of a distributed run takes the same branch. The
    pairs keep their clips' indices (``idx``): Stage I conditions the student on those clips' captions.
    """
    data = TrainingSet.of(data)
    if rt is None or rt.main_decides(lambda: _usable(path, data.has_text)):
        try:
            return load_file(path)
        except CheckpointError as e:
            print(f"warning: {e}; regenerating the ODE pairs")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(data), (oc.pairs,), generator=g)
    cond = torch.cat([data.latents(idx[s:s + 32])[:, 0] for s in range(0, len(idx), 32)])
    desc = f"ODE pairs ({oc.pairs} teacher solves, {oc.teacher_steps} steps)"
    with tqdm(total=1, desc=desc, disable=not progress, leave=False):
        pairs = teacher_trajectories(teacher, cond, data.shape[1] - 1, oc.teacher_steps, tsample.cfg,
                                     tsample.shift, targets, g,
                                     text_of=(lambda rows: data.context(idx[rows])) if data.has_text else None)
    pairs["idx"] = idx
    if rt is None or rt.is_main:
        buf = io.BytesIO()
        torch.save(pairs, buf)
        atomic_write_bytes(path, buf.getvalue())
    return pairs


def _usable(path: Path, need_idx: bool = False) -> bool:
    if not path.exists():
        return False
    try:
        pairs = load_file(path)
    except CheckpointError as e:
        print(f"warning: {e}; regenerating the ODE pairs")
        return False
    return not need_idx or "idx" in pairs  # older files lack the clip indices that pick the captions


def ode_loss(student: VideoDiT, pairs: dict[str, torch.Tensor], g: torch.Generator, batch: int,
             p_clean: float, data: TrainingSet | None = None) -> torch.Tensor:
    """L2 between the student's clean prediction and the teacher's final clip, on noisy chunks.

    ``data``: the training set the pairs were drawn from; with text, the student sees the pairs' captions.
    """
    n, ck = len(pairs["x0"]), student.cfg.chunk
    idx = torch.randint(n, (batch,), generator=g)
    x0, cond, states = pairs["x0"][idx], pairs["cond"][idx], pairs["states"][:, idx]
    frames = x0.shape[1]
    chunks = frames // ck
    level = torch.randint(len(pairs["targets"]), (batch, chunks), generator=g)
    clean = torch.rand(batch, chunks, generator=g) < p_clean
    clean[:, -1] = False  # at least one supervised chunk per clip
    t_chunk = torch.where(clean, torch.zeros(()), pairs["targets"][level])
    t = t_chunk.repeat_interleave(ck, dim=1)
    lev = level.repeat_interleave(ck, dim=1)  # [B, F]: which stored ODE state each frame starts from
    x_t = states[lev, torch.arange(batch)[:, None], torch.arange(frames)[None, :]]
    x_in = torch.where(clean.repeat_interleave(ck, 1)[..., None, None, None], x0, x_t)
    text = data.context(pairs["idx"][idx]) if data is not None and data.has_text else None
    v = student(torch.cat([cond[:, None], x_in], 1), frame_times(batch, frames, t), causal=True,
                **context_kwargs(text))[:, 1:]
    x0_pred = x_in - t[..., None, None, None] * v
    w = (~clean).repeat_interleave(ck, 1).float()[..., None, None, None]
    return ((x0_pred - x0) ** 2 * w).sum() / (w.sum() * x0[0, 0].numel())


#################################################################################
#                                 The stage loop                                #
#################################################################################

def ode_stage(ctx: DistillContext, state: dict[str, Any] | None, cache_key: dict[str, Any]) -> None:
    """Stage I: regress cached teacher ODE trajectories at the student's target times.

    ``state`` is this stage's latest checkpoint (resume) or None; ``cache_key`` names the ODE-pair cache file.
    """
    oc, dz = ctx.cfg.method.ode, ctx.cfg.distill
    path = Path(ctx.cfg.paths.cache) / "ode" / f"{config_hash(cache_key)}.pt"
    pairs = load_or_make_pairs(path, ctx.frozen_teacher, ctx.data, oc, ctx.cfg.teacher.sample, ctx.student_steps,
                               ctx.seed, ctx.progress, ctx.engine.rt)
    student = ctx.prepare(ctx.student, lambda m: make_optimizer(m.parameters(), oc.lr, weight_decay=oc.weight_decay),
                          "student", oc.batch, "method.ode.batch", oc.grad_clip)
    start = ctx.restore(state, {"student": student})
    student.train()
    bar = tqdm(total=oc.steps, initial=start, desc="stage I (ODE)", disable=not ctx.progress, leave=False)
    log = StepLogger(ctx.run, STAGE, dz.log_every, bar, ctx.tracker)
    for step in range(start, oc.steps):
        g = step_generator(ctx.seed, STAGE, step)
        lr = set_lr(student.optimizer, step, oc.warmup, oc.steps)
        for part in student.parts(oc.batch):  # gradient accumulation: one part unless trainer.micro_batch is set
            loss = ode_loss(student, pairs, g, part.stop - part.start, oc.p_clean, ctx.data)
            check_finite(STAGE, step, loss=loss.item())
            student.backward(loss)
        gn = student.step(check=grad_guard(STAGE, step, dz.explode_grad))

        # -- logging and checkpoints --
        log(step + 1, {"loss/ode": loss.item(), "grad_norm": gn, "lr": lr}, force=step + 1 == oc.steps)
        if (step + 1) % dz.ckpt_every == 0 and step + 1 < oc.steps:
            ctx.save(STAGE, step + 1, {"student": student})
    bar.close()
    ctx.end_stage(student)
    ctx.stage_info[STAGE] = {"steps": oc.steps}

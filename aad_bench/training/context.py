"""What the stage loops share: configs, frozen teacher, data, the student, the engine, checkpoint + logging plumbing.

``student`` and ``teacher`` are plain modules holding the full weights between stages. A stage prepares the
models it trains with :meth:`DistillContext.prepare` (the engine's handles: sharded, on the device, split over the
data-parallel ranks) and hands the student's weights back with :meth:`DistillContext.end_stage`. Under the
``single`` engine the handles wrap these very modules, so a one-process run is exactly the plain loop.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from aad_bench.data.loader import TrainingSet
from aad_bench.engine import Engine, Trained
from aad_bench.engine.base import OptimizerFactory
from aad_bench.engine.checkpoint import load_sharded, save_sharded
from aad_bench.engine.ema import ShardedEMA
from aad_bench.engine.engines import default_engine
from aad_bench.engine.tracking import Tracker
from aad_bench.models.codec import codec_for
from aad_bench.models.dit import VideoDiT
from aad_bench.runfolder import RunFolder
from aad_bench.training.checkpoint import next_name, prune, save_checkpoint


@dataclass
class DistillContext:
    """One distillation run: ``cfg`` (full config), ``run`` (its folder), models and data."""

    cfg: DictConfig
    run: RunFolder
    teacher: VideoDiT
    data: TrainingSet  # clips [N, F, c, h, w] in latent space (+ their captions' text embeddings), drawn by batch
    student: VideoDiT
    data_speed: float | None  # tracked mean speed of data clips (px/frame); None without clips (data=prompts)
    probe_cond: torch.Tensor  # fixed conditioning images for motion checks (the world's val split, never scored)
    engine: Engine = field(default_factory=default_engine)
    tracker: Tracker | None = None  # TensorBoard / W&B beside metrics.jsonl (rank 0)
    stages_done: list[str] = field(default_factory=list)
    stage_info: dict[str, Any] = field(default_factory=dict)  # per stage: steps run, early stop, ...
    probe_gts: list[dict[str, Any]] = field(default_factory=list)  # ground truth of the probes' data clips
    probe_context: torch.Tensor | None = None  # text embeddings of the probes' captions (None without text)

    def __post_init__(self) -> None:
        self.data = TrainingSet.of(self.data)
        # the teacher as the stages run it (real score, ODE pairs): prepared once, frozen, sharded / bf16 per engine
        self.frozen_teacher = self.prepare(self.teacher, None, "teacher", context_parallel=True)

    @property
    def seed(self) -> int:
        """The run's seed."""
        return int(self.cfg.seed)

    @property
    def progress(self) -> bool:
        """Whether to show progress bars (rank 0 only)."""
        return bool(self.cfg.progress) and self.engine.rt.is_main

    @property
    def frames(self) -> int:
        """Generated frames per training clip."""
        return self.data.shape[1] - 1

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latent clips to pixels through the configured codec."""
        return codec_for(self.cfg).decode(latents)

    @property
    def student_steps(self) -> list[float]:
        """Flow times the student visits per chunk."""
        return list(self.cfg.method.student.steps)

    # -- models under the engine ---------------------------------------------------------------
    def prepare(self, module: nn.Module, optimizer: OptimizerFactory | None, name: str, batch: int | None = None,
                setting: str | None = None, grad_clip: float | None = None,
                context_parallel: bool = False) -> Trained:
        """``module`` prepared by the engine (trained when ``optimizer`` is given, else frozen).

        The engine works on a copy unless it leaves modules untouched (``single``): ``module`` keeps the full
        weights. ``setting`` names the config key of ``batch`` for errors; ``context_parallel`` splits the
        module's full-clip forwards over ``trainer.cp`` ranks.
        """
        st = self.engine.rt.settings
        untouched = self.engine.name == "single" and (optimizer is not None or st.precision == "fp32"
                                                      or not st.frozen_bf16)
        return self.engine.prepare(module if untouched else copy.deepcopy(module), optimizer, name=name,
                                   batch=batch, batch_setting=setting, grad_clip=grad_clip,
                                   context_parallel=context_parallel)

    def end_stage(self, student: Trained) -> None:
        """The stage's student weights become ``ctx.student`` (on every rank)."""
        if student.module is not self.student:
            full = student.full_state_dict()
            device = next(self.student.parameters()).device
            self.student.load_state_dict({k: v.to(device) for k, v in full.items()})

    # -- checkpoints -------------------------------------------------------------------------------
    def save(self, stage: str, step: int, modules: dict[str, Trained | ShardedEMA] | None = None,
             weights: dict[str, dict[str, torch.Tensor]] | None = None) -> None:
        """Checkpoint the stage's models (with optimizers), EMAs and the stage bookkeeping.

        One process: one file. Distributed engines: a sharded folder mid-stage; at a stage end (``modules``
        empty) the full student as a file from rank 0, which sampling and the shared-prefix cache read.
        ``weights`` are whole state dicts kept beside them (read back with :meth:`saved_weights`).
        """
        rt, folder, keep = self.engine.rt, self.run.checkpoints, self.cfg.distill.keep_checkpoints
        info = {"stages_done": list(self.stages_done), "stage_info": self.stage_info}
        if modules and self.engine.name != "single":
            name = rt.main_decides(lambda: next_name(folder, stage, step))
            save_sharded(folder, name, rt, {k: v for k, v in modules.items() if isinstance(v, Trained)},
                         {k: v for k, v in modules.items() if isinstance(v, ShardedEMA)},
                         extra={**info, "stage": stage, "step": step}, files=weights)
            if rt.is_main:
                prune(folder, keep)
        else:
            state = {"student": self.student.state_dict(), **info, "weights": dict(weights or {})}
            for k, v in (modules or {}).items():
                if isinstance(v, ShardedEMA):
                    state[k] = dict(v.shadow)
                else:
                    state[k], state[f"opt_{k}"] = v.module.state_dict(), v.optimizer.state_dict()
            if rt.is_main:
                save_checkpoint(folder, stage, step, state, keep=keep)
            rt.barrier()
        self.run.update(stage=stage, step=step)

    def restore(self, state: dict[str, Any] | None, modules: dict[str, Trained | ShardedEMA]) -> int:
        """Load ``modules`` from this stage's checkpoint ``state`` (None = fresh start); returns the step."""
        if state is None:
            return 0
        if "sharded" in state:
            load_sharded(Path(state["sharded"]), self.engine.rt,
                         {k: v for k, v in modules.items() if isinstance(v, Trained)},
                         {k: v for k, v in modules.items() if isinstance(v, ShardedEMA)})
            return int(state["step"])
        for k, v in modules.items():
            if isinstance(v, ShardedEMA):
                v.shadow = {n: t.clone() for n, t in state[k].items()}
            else:
                v.module.load_state_dict(state[k])
                v.optimizer.load_state_dict(state[f"opt_{k}"])
        return int(state["step"])

    @staticmethod
    def saved_weights(state: dict[str, Any] | None, name: str) -> dict[str, torch.Tensor] | None:
        """The state dict ``name`` that :meth:`save` kept beside checkpoint ``state`` (None if it has none)."""
        if state is None:
            return None
        if "sharded" in state:
            path = Path(state["sharded"]) / f"{name}.pt"
            return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None
        return state.get("weights", {}).get(name)

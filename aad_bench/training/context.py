"""What the stage loops share: configs, frozen teacher, data, the student, checkpoint + logging plumbing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig

from aad_bench.models.codec import codec_for
from aad_bench.models.dit import VideoDiT
from aad_bench.runfolder import RunFolder
from aad_bench.training.checkpoint import save_checkpoint


@dataclass
class DistillContext:
    """One distillation run: ``cfg`` (full config), ``run`` (its folder), models and data."""

    cfg: DictConfig
    run: RunFolder
    teacher: VideoDiT
    data: torch.Tensor  # [N, F, 3, H, W] real clips in [-1, 1]
    student: VideoDiT
    data_speed: float  # tracked mean speed of data clips (px/frame)
    probe_cond: torch.Tensor  # fixed conditioning images for motion checks
    stages_done: list[str] = field(default_factory=list)
    stage_info: dict[str, Any] = field(default_factory=dict)  # per stage: steps run, early stop, ...

    @property
    def seed(self) -> int:
        """The run's seed."""
        return int(self.cfg.seed)

    @property
    def progress(self) -> bool:
        """Whether to show progress bars."""
        return bool(self.cfg.progress)

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

    def save(self, stage: str, step: int, modules: dict[str, Any]) -> None:
        """Checkpoint the student, the stage's own modules/optimisers and the stage bookkeeping."""
        state = {"student": self.student.state_dict(), "stages_done": list(self.stages_done),
                 "stage_info": self.stage_info}
        for k, v in modules.items():
            state[k] = v.state_dict() if hasattr(v, "state_dict") else v
        save_checkpoint(self.run.checkpoints, stage, step, state, keep=self.cfg.distill.keep_checkpoints)
        self.run.update(stage=stage, step=step)

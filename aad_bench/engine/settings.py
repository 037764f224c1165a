"""``trainer.*``: where and how a run trains (device, precision, engine, context parallelism, batching).

Every setting is checked here, before any process group or model exists, and a bad one fails with one line that
names it. ``conf/trainer/default.yaml`` documents the fields; presets (``trainer=fsdp`` ...) override them.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")
BACKENDS = ("auto", "gloo", "nccl")
DEEPSPEED_DIR = Path(__file__).resolve().parents[1] / "conf" / "deepspeed"


class EngineError(ValueError):
    """Bad trainer input; the message is one line naming the setting."""


def _choice(setting: str, value: Any, options: tuple[str, ...]) -> str:
    if value in options:
        return str(value)
    close = difflib.get_close_matches(str(value), options, n=2, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise EngineError(f"unknown {setting} {value!r}.{hint} Options: {', '.join(options)}")


@dataclass
class TrackingSettings:
    """Experiment trackers beside ``metrics.jsonl`` (rank 0 only)."""

    tensorboard: bool = True
    wandb: bool = False  # used when enabled *and* installed; always offline (no network on compute nodes)
    wandb_project: str = "aad_bench"


@dataclass
class TrainerSettings:
    """The ``trainer`` config group as a checked dataclass (see ``conf/trainer/default.yaml``)."""

    engine: str = "single"
    device: str = "auto"
    precision: str = "fp32"
    frozen_bf16: bool = True
    tf32: bool = True
    micro_batch: int | None = None
    cp: int = 1
    activation_checkpointing: bool = False
    compile: bool = False
    backend: str = "auto"
    dist_timeout_min: float = 10.0
    deepspeed_config: str = "zero2"
    offload_optimizer: bool = False
    reshard_after_forward: bool = True
    fsdp_bf16_params: bool = False
    tracking: TrackingSettings = field(default_factory=TrackingSettings)

    def __post_init__(self) -> None:
        if isinstance(self.tracking, dict):
            self.tracking = TrackingSettings(**self.tracking)
        # the engine name is checked against the registry (aad_bench.engine.base.ENGINES) by build_engine
        self.device = _choice("trainer.device", self.device, DEVICES)
        self.precision = _choice("trainer.precision", self.precision, PRECISIONS)
        self.backend = _choice("trainer.backend", self.backend, BACKENDS)
        if not isinstance(self.cp, int) or self.cp < 1:
            raise EngineError(f"trainer.cp must be a positive integer, got {self.cp!r}")
        if self.micro_batch is not None and (not isinstance(self.micro_batch, int) or self.micro_batch < 1):
            raise EngineError(f"trainer.micro_batch must be a positive integer or null, got {self.micro_batch!r}")
        if self.engine == "single" and self.cp > 1:
            raise EngineError(f"trainer.cp={self.cp} needs a distributed engine (trainer.engine=ddp|fsdp|deepspeed)")
        if self.engine == "deepspeed":
            self.deepspeed_json()  # a missing or broken JSON fails now, not after the process group is up

    @classmethod
    def from_cfg(cls, trainer: Any | None) -> TrainerSettings:
        """From the ``trainer`` config node (a DictConfig, a dict or None = all defaults)."""
        if trainer is None:
            return cls()
        if not isinstance(trainer, dict):
            from omegaconf import OmegaConf

            trainer = OmegaConf.to_container(trainer, resolve=True)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(trainer) - known)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(known), n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise EngineError(f"unknown setting trainer.{unknown[0]}.{hint} Known: {', '.join(sorted(known))}")
        return cls(**trainer)

    def deepspeed_json(self) -> dict[str, Any]:
        """The DeepSpeed config named by ``trainer.deepspeed_config`` (a name under conf/deepspeed/ or a path)."""
        path = Path(self.deepspeed_config)
        if not path.suffix:
            path = DEEPSPEED_DIR / f"{self.deepspeed_config}.json"
        if not path.is_file():
            names = sorted(p.stem for p in DEEPSPEED_DIR.glob("*.json"))
            close = difflib.get_close_matches(self.deepspeed_config, names, n=2, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise EngineError(f"trainer.deepspeed_config={self.deepspeed_config!r}: no file {path}.{hint} "
                              f"Shipped: {', '.join(names)}")
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise EngineError(f"trainer.deepspeed_config: {path} is not valid JSON ({e})") from None
        stage = cfg.get("zero_optimization", {}).get("stage", 0)
        if stage not in (0, 1, 2, 3):
            raise EngineError(f"trainer.deepspeed_config: {path}: zero_optimization.stage must be 0-3, got {stage!r}")
        return cfg

    @property
    def zero_stage(self) -> int:
        """The ZeRO stage of the DeepSpeed config (0 for other engines)."""
        return int(self.deepspeed_json().get("zero_optimization", {}).get("stage", 0)) \
            if self.engine == "deepspeed" else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (provenance)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["tracking"] = dict(vars(self.tracking))
        return out


def split_batch(setting: str, global_batch: int, micro_batch: int | None, dp: int) -> tuple[int, int]:
    """``(micro, accumulation)`` with ``global = micro x accumulation x dp``; raises naming ``setting``.

    ``micro_batch`` None = no accumulation (micro = global / dp).
    """
    micro = micro_batch if micro_batch is not None else global_batch // max(dp, 1)
    if micro < 1 or global_batch % (micro * dp):
        if micro_batch is None:
            raise EngineError(f"{setting}={global_batch} (global batch) does not split over the data-parallel size "
                              f"{dp}: global batch = trainer.micro_batch x accumulation x {dp}")
        raise EngineError(f"{setting}={global_batch} (global batch) is not divisible by trainer.micro_batch "
                          f"({micro_batch}) x data-parallel size ({dp}): it must equal micro_batch x accumulation x "
                          f"{dp}")
    return micro, global_batch // (micro * dp)


def check_run(settings: TrainerSettings, dp: int, batches: dict[str, int], heads: int, tokens: int,
              arch: str = "dit") -> None:
    """Everything a run's config must satisfy under these settings, checked before any work.

    Args:
        settings: the trainer settings.
        dp: data-parallel size (world size / cp).
        batches: config key -> global batch of every stage that will train.
        heads: attention heads of the model (Ulysses gives each CP rank heads / cp).
        tokens: tokens of one training clip (frames x tokens per frame), split over the CP ranks.
        arch: ``model.arch`` (context parallelism is implemented for the toy DiT).
    """
    for key, n in batches.items():
        split_batch(key, n, settings.micro_batch, dp)
    if settings.cp > 1 and arch != "dit":
        raise EngineError(f"trainer.cp={settings.cp}: context parallelism runs the toy DiT (model.arch=dit), not "
                          f"model.arch={arch}; use trainer.cp=1")
    if heads % settings.cp:
        raise EngineError(f"trainer.cp={settings.cp} must divide model.heads={heads} (Ulysses gives each rank "
                          "heads / cp heads)")
    if tokens % settings.cp:
        raise EngineError(f"trainer.cp={settings.cp} must divide the token count {tokens} of a training clip "
                          "(frames x tokens per frame)")

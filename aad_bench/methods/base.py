"""The method contract: which stages run, and which discriminator Stage III uses.

A method is one file that registers a :class:`MethodSpec` plus one YAML in ``conf/method/``. Everything else (the
stage loops, sampling, evaluation) is shared, so methods differ only in what the paper's ablations vary.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from aad_bench.registry import Registry

STAGES = ("ode", "dmd", "gan")

METHODS: Registry = Registry("method", lazy={
    name: f"aad_bench.methods.{name}:SPEC"
    for name in ("aad1", "symmetric", "causal_video", "bidir_frame", "patch", "dmd", "teacher")
})


@dataclass(frozen=True)
class MethodSpec:
    """What a method is.

    Args:
        name: registry key.
        stages: subset of ``("ode", "dmd", "gan")`` in order; empty = nothing trained (the teacher reference).
        disc_backbone: ``bidirectional`` | ``causal`` (Stage III only).
        disc_head: ``video`` | ``frame`` | ``patch`` (Stage III only).
        summary: one line for tables and ``--help``.
    """

    name: str
    stages: tuple[str, ...]
    disc_backbone: str | None = None
    disc_head: str | None = None
    summary: str = ""

    def validate(self, method_cfg: DictConfig, model_depth: int | None = None) -> None:
        """Reject impossible combinations before any training starts (messages name the setting)."""
        stages = tuple(method_cfg.get("stages", self.stages))
        bad = [s for s in stages if s not in STAGES]
        if bad:
            raise ValueError(f"method.stages: unknown stage(s) {bad}; stages are {STAGES}")
        if list(stages) != sorted(stages, key=STAGES.index):
            raise ValueError(f"method.stages {list(stages)} must keep the order {STAGES}")
        if "dmd" in stages and method_cfg.dmd.ratio < 1:
            raise ValueError(f"method.dmd.ratio must be >= 1 (critic updates per generator update), "
                             f"got {method_cfg.dmd.ratio}")
        if "gan" in stages:
            disc = method_cfg.gan.disc
            if disc.backbone == "causal" and "dmd" not in stages:
                raise ValueError("method.gan.disc.backbone=causal is initialised from the Stage II generator, "
                                 "but method.stages has no 'dmd' stage (missing Stage II checkpoint)")
            if disc.backbone not in ("bidirectional", "causal"):
                raise ValueError(f"method.gan.disc.backbone must be bidirectional|causal, got {disc.backbone!r}")
            from aad_bench.models.discriminator import HEADS

            if disc.head not in HEADS:
                raise ValueError(HEADS.unknown_message(disc.head).replace("unknown", "method.gan.disc.head: unknown"))
            bad = [d for d in disc.depths if model_depth is not None and not 0 <= d < model_depth]
            if bad or not disc.depths:
                raise ValueError(f"method.gan.disc.depths {list(disc.depths)}: head depth beyond the backbone "
                                 f"(blocks 0..{(model_depth or 1) - 1})")


def get_method(name: str) -> MethodSpec:
    """The registered spec for ``name`` (did-you-mean on a typo)."""
    return METHODS.get(name)

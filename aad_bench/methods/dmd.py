"""``dmd``: Self-Forcing-style baseline: ODE init + DMD with self-rollout, no adversarial stage."""

from aad_bench.methods.base import METHODS, MethodSpec

SPEC = METHODS.register("dmd", MethodSpec(
    name="dmd",
    stages=("ode", "dmd"),
    disc_backbone=None,
    disc_head=None,
    summary="Self-Forcing-style baseline: ODE init + DMD with self-rollout, no adversarial stage",
))

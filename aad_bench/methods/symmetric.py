"""``symmetric``: Symmetric (APT2-like): causal discriminator with frame-wise logits."""

from aad_bench.methods.base import METHODS, MethodSpec

SPEC = METHODS.register("symmetric", MethodSpec(
    name="symmetric",
    stages=("ode", "dmd", "gan"),
    disc_backbone="causal",
    disc_head="frame",
    summary="Symmetric (APT2-like): causal discriminator with frame-wise logits",
))

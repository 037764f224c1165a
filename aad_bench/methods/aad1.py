"""``aad1``: AAD-1: causal one-step generator vs a bidirectional video-level discriminator, after DMD warm-up."""

from aad_bench.methods.base import METHODS, MethodSpec

SPEC = METHODS.register("aad1", MethodSpec(
    name="aad1",
    stages=("ode", "dmd", "gan"),
    disc_backbone="bidirectional",
    disc_head="video",
    summary="AAD-1: causal one-step generator vs a bidirectional video-level discriminator, after DMD warm-up",
))

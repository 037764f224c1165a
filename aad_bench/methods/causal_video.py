"""``causal_video``: Causal discriminator backbone with one video-level logit (late fusion)."""

from aad_bench.methods.base import METHODS, MethodSpec

SPEC = METHODS.register("causal_video", MethodSpec(
    name="causal_video",
    stages=("ode", "dmd", "gan"),
    disc_backbone="causal",
    disc_head="video",
    summary="Causal discriminator backbone with one video-level logit (late fusion)",
))

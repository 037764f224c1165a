"""``bidir_frame``: Bidirectional discriminator backbone with frame-wise logits."""

from aad_bench.methods.base import METHODS, MethodSpec

SPEC = METHODS.register("bidir_frame", MethodSpec(
    name="bidir_frame",
    stages=("ode", "dmd", "gan"),
    disc_backbone="bidirectional",
    disc_head="frame",
    summary="Bidirectional discriminator backbone with frame-wise logits",
))

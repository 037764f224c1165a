"""``patch``: Bidirectional backbone with PatchGAN-style per-patch logits."""

from aad_bench.methods.base import METHODS, MethodSpec

SPEC = METHODS.register("patch", MethodSpec(
    name="patch",
    stages=("ode", "dmd", "gan"),
    disc_backbone="bidirectional",
    disc_head="patch",
    summary="Bidirectional backbone with PatchGAN-style per-patch logits",
))

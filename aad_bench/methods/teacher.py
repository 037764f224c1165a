"""``teacher``: The multi-step bidirectional teacher itself (reference; nothing trained)."""

from aad_bench.methods.base import METHODS, MethodSpec

SPEC = METHODS.register("teacher", MethodSpec(
    name="teacher",
    stages=(),
    disc_backbone=None,
    disc_head=None,
    summary="The multi-step bidirectional teacher itself (reference; nothing trained)",
))

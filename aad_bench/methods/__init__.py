"""Distillation methods, one file each, registered by name (the name is also ``conf/method/<name>.yaml``)."""

from aad_bench.methods.base import METHODS, MethodSpec, get_method

__all__ = ["METHODS", "MethodSpec", "get_method"]

"""The torch device of the weight-based evaluation backends (``aad-bench eval --device auto|cpu|cuda``).

``auto`` = CUDA when torch sees a GPU, else the CPU; ``cuda`` without a GPU is one clear line before any work.
The device is set for the duration of an evaluation (:func:`eval_device`) and read by the backend getters
(RAFT, DINO, CLIP, DreamSim, MUSIQ); weight-free backends (DIS, pixel, sharpness, native) ignore it. Official
VBench resolves ``auto`` in its own interpreter (its environment has its own torch).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

DEVICES = ("auto", "cpu", "cuda")
_CURRENT: ContextVar[str] = ContextVar("aad_bench_eval_device", default="cpu")


def resolve_eval_device(spec: str | None, option: str = "--device") -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` → the device string the backends use."""
    import torch

    spec = str(spec or "auto")
    kind, _, idx = spec.partition(":")
    if kind not in DEVICES or (idx and (kind != "cuda" or not idx.isdigit())):
        raise ValueError(f"{option} {spec!r}: one of auto, cpu, cuda (or cuda:N)")
    has_cuda = torch.cuda.is_available()
    if kind == "cuda" and not has_cuda:
        raise ValueError(
            f"{option} {spec}: no CUDA device is visible (torch.cuda.is_available() is False); use {option} auto or cpu"
        )
    if idx and int(idx) >= torch.cuda.device_count():
        raise ValueError(f"{option} {spec}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    if kind == "auto":
        return "cuda" if has_cuda else "cpu"
    return spec


def current_device() -> str:
    """The device weight-based backends are built on in this evaluation (``cpu`` outside one)."""
    return _CURRENT.get()


@contextmanager
def eval_device(device: str | None) -> Iterator[str]:
    """Build weight-based backends on ``device`` inside the block (``None`` keeps the current one)."""
    token = _CURRENT.set(device or _CURRENT.get())
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def build_on_device(cache: dict, kind: Any, name: str, device: str | None = None) -> Any:
    """Backend ``name`` of the registry ``kind`` built once per process and device (default: ``eval --device``)."""
    device = device or current_device()
    key = name if device == "cpu" else f"{name}@{device}"
    if key not in cache:
        cache[key] = kind.get(name).build(device=device)
    return cache[key]

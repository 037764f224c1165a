"""The metric registry: every metric has a name, version, direction, backend kind and a per-video function.

A metric function scores one video and returns a :class:`VideoScore`; the set aggregate is the
``weight``-weighted mean of the per-video values (weights = 1 except VBench's frame-weighted consistency
scores). Bump ``version`` whenever a metric's numbers change: results with another version are recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aad_bench.registry import Registry


class MissingInputError(ValueError):
    """A video lacks what a metric needs (conditioning image, toy ground truth): recorded under ``errors``."""


@dataclass
class VideoItem:
    """One video of a set with its index entry."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    set_dir: Path | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def image_path(self) -> Path:
        """The conditioning image (index ``image`` or ``images/<stem>.png``); a clear error when absent."""
        base = self.set_dir or self.path.parent
        rel = self.meta.get("image") or f"images/{self.path.stem.rsplit('-', 1)[0]}.png"
        p = base / rel
        if not p.is_file():
            raise MissingInputError(f"{self.path}: conditioning image {p} not found (needed by i2v metrics)")
        return p


@dataclass
class VideoScore:
    """A per-video value; ``curve`` is an optional time series, ``weight`` its share of the aggregate."""

    value: float
    weight: float = 1.0
    curve: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Args:
        name: column name.
        version: bump when numbers change.
        direction: ``"up"`` (higher is better), ``"down"`` or ``None`` (target value, e.g. a ratio of 1).
        backend_kind: which registry picks the backend (``flow``, ``features``, ``quality``, ``interp``) or
            ``None`` for backend-free metrics (backend ``native``).
        default_backend: backend used when none is given.
        fn: ``fn(item, backend, cfg) -> VideoScore``.
        needs: ``"image"`` or ``"gt"`` when the metric only applies to sets that have them.
        curve_label: x-axis label of ``curve``.
        aggregate: optional set-level reducer ``f(list[VideoScore]) -> float`` replacing the weighted mean.
    """

    name: str
    version: str
    direction: str | None
    backend_kind: str | None
    default_backend: str
    fn: Callable[[VideoItem, str, dict], VideoScore]
    needs: str | None = None
    curve_label: str | None = None
    aggregate: Callable[[list[VideoScore]], float] | None = None
    doc: str = ""

    def reduce(self, scores: list[VideoScore]) -> float | None:
        """The set aggregate (``None`` when no video could be scored)."""
        if not scores:
            return None
        if self.aggregate is not None:
            return float(self.aggregate(scores))
        w = np.array([s.weight for s in scores], dtype=np.float64)
        v = np.array([s.value for s in scores], dtype=np.float64)
        return float((w * v).sum() / w.sum()) if w.sum() > 0 else None


METRICS: Registry[Metric] = Registry("metric")

# Modules that register metrics on import; imported by :func:`all_metrics` so start-up stays cheap.
_MODULES = ("motion", "consistency", "quality", "drift", "toy_metrics")


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS`."""
    METRICS.register(metric.name, metric)
    return metric


def load_all() -> Registry[Metric]:
    """Import every metric module and return the filled registry."""
    import importlib

    for m in _MODULES:
        importlib.import_module(f"aad_bench.evaluation.{m}")
    return METRICS


def get_metric(name: str) -> Metric:
    """Look up a metric by name (did-you-mean on typos)."""
    return load_all().get(name)


def backend_choices(kind: str | None) -> list[str]:
    """Registered backend names of one kind (for ``--help`` and errors)."""
    if kind is None:
        return ["native"]
    reg = backend_registry(kind)
    return reg.names()


def backend_registry(kind: str) -> Registry:
    """The registry that holds backends of ``kind``."""
    if kind == "flow":
        from aad_bench.evaluation.flow import FLOW

        return FLOW
    if kind == "features":
        from aad_bench.evaluation.features import FEATURES

        return FEATURES
    if kind == "quality":
        from aad_bench.evaluation.quality import QUALITY

        return QUALITY
    if kind == "interp":
        from aad_bench.evaluation.consistency import INTERP

        return INTERP
    raise ValueError(f"unknown backend kind {kind!r}")

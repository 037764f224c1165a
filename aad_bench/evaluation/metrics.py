"""The metric and backend registries, and the types every metric module shares.

A metric function scores one video and returns a :class:`VideoScore`; the set aggregate is the
``weight``-weighted mean of the per-video values (weights = 1 except VBench's frame-weighted consistency
scores). Bump ``version`` whenever a metric's numbers change: results with another version are recomputed.

Nothing here lists metrics or backends by hand: every module of this package registers its own on import, and
the first lookup in :data:`METRICS` or :data:`BACKEND_KINDS` imports every module of the package
(:func:`discover`). This module imports no other module of the package, so it sits at the bottom of it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from aad_bench.registry import Registry, UnknownNameError

T = TypeVar("T")
PACKAGE = "aad_bench.evaluation"
_DISCOVERED: set[str] = set()


def discover(package: str = PACKAGE) -> None:
    """Import every module of ``package`` once, so that each registers its metrics and backends."""
    if package in _DISCOVERED:
        return
    _DISCOVERED.add(package)
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{package}.{info.name}")


class PackageRegistry(Registry[T]):
    """A :class:`Registry` filled by the modules of one package: the first lookup imports them all."""

    def __init__(self, kind: str, package: str = PACKAGE) -> None:
        super().__init__(kind)
        self._package = package

    def names(self) -> list[str]:
        """All registered names, sorted (after importing the package's modules)."""
        discover(self._package)
        return super().names()

    def get(self, name: str) -> T:
        """The entry for ``name``; unknown names raise :class:`UnknownNameError` with suggestions."""
        discover(self._package)
        return super().get(name)

    def __contains__(self, name: object) -> bool:
        discover(self._package)
        return super().__contains__(name)


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
        """The file name (the key of ``per_video``)."""
        return self.path.name

    def image_path(self) -> Path:
        """The conditioning image (index ``image`` or ``images/<stem>.png``); a clear error when absent."""
        base = self.set_dir or self.path.parent
        rel = self.meta.get("image") or f"images/{self.path.stem.rsplit('-', 1)[0]}.png"
        p = base / str(rel)
        if not p.is_file():
            raise MissingInputError(f"{self.path}: conditioning image {p} not found (needed by i2v metrics)")
        return p


@dataclass
class VideoScore:
    """A per-video value with an optional time series.

    Attributes:
        value: the video's score; ``None`` when the metric does not apply to this video (``skip`` says why),
            which is not an error.
        weight: its share of the weighted-mean aggregate.
        curve: optional time series (plotted by reports).
        extra: per-video details (stored under ``details`` when the metric asks for it).
        skip: why the metric does not apply (only with ``value=None``).
    """

    value: float | None
    weight: float = 1.0
    curve: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    skip: str | None = None


@dataclass(frozen=True)
class Backend:
    """A registered backend: how to build it and, for weight-free stand-ins, what it stands in for.

    Attributes:
        name: the name people type (``--flow dis``) and the ``@backend`` part of result files.
        build: ``build(**kw)`` returns the backend object (weights are loaded here, never at registration).
        proxy_for: what the backend approximates when it is a weight-free stand-in (``None`` = the real one).
        available: ``available()`` returns ``None`` when the backend can be built here, else the reason.
    """

    name: str
    build: Callable[..., Any]
    proxy_for: str | None = None
    available: Callable[[], str | None] = lambda: None


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: column name.
        version: bump when numbers change.
        direction: ``"up"`` (higher is better), ``"down"`` or ``None`` (target value, e.g. a ratio of 1).
        backend_kind: the :data:`BACKEND_KINDS` entry that picks the backend, or ``None`` for a metric with a
            single built-in method (its ``default_backend`` names it).
        default_backend: backend used when none is given.
        fn: ``fn(item, backend, cfg) -> VideoScore``.
        needs: ``"image"`` or ``"gt"`` when the metric only applies to sets that have them.
        curve_label: x-axis label of ``curve``.
        curve_unit: y-axis label of ``curve`` (what is plotted, with its unit).
        aggregate: optional set-level reducer ``f(list[VideoScore]) -> float`` replacing the weighted mean.
        also: backends computed in addition to the chosen one whenever they are available (e.g. the paper's
            MUSIQ drift next to the weight-free one).
        details: store each video's ``extra`` under ``details`` in the result file.
        doc: one line for ``--list``.
    """

    name: str
    version: str
    direction: str | None
    backend_kind: str | None
    default_backend: str
    fn: Callable[[VideoItem, str, dict], VideoScore]
    needs: str | None = None
    curve_label: str | None = None
    curve_unit: str | None = None
    aggregate: Callable[[list[VideoScore]], float | None] | None = None
    also: tuple[str, ...] = ()
    details: bool = False
    doc: str = ""

    def reduce(self, scores: list[VideoScore]) -> float | None:
        """The set aggregate (``None`` when no video could be scored)."""
        if self.aggregate is not None:
            return self.aggregate(scores) if scores else None
        scored = [s for s in scores if s.value is not None]
        w = np.array([s.weight for s in scored], dtype=np.float64)
        v = np.array([s.value for s in scored], dtype=np.float64)
        return float((w * v).sum() / w.sum()) if w.sum() > 0 else None


METRICS: PackageRegistry[Metric] = PackageRegistry("metric")
BACKEND_KINDS: PackageRegistry[Registry[Backend]] = PackageRegistry("backend kind")


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS`."""
    METRICS.register(metric.name, metric)
    return metric


def backend_kind(kind: str, what: str) -> Registry[Backend]:
    """Create and register the backend registry of ``kind`` (``what`` names its entries in errors)."""
    reg: Registry[Backend] = Registry(what)
    BACKEND_KINDS.register(kind, reg)
    return reg


def get_metric(name: str) -> Metric:
    """Look up a metric by name (did-you-mean on typos)."""
    return METRICS.get(name)


def backend_registry(kind: str) -> Registry[Backend]:
    """The registry that holds backends of ``kind``."""
    return BACKEND_KINDS.get(kind)


def backend_choices(metric: Metric) -> list[str]:
    """Backend names a metric accepts (for ``--list`` and errors)."""
    if metric.backend_kind is None:
        return [metric.default_backend]
    return backend_registry(metric.backend_kind).names()


def get_backend(metric: Metric, name: str) -> Backend:
    """The :class:`Backend` ``name`` of ``metric``'s kind; a clear error for names it does not accept."""
    if metric.backend_kind is None:
        if name != metric.default_backend:
            raise UnknownNameError(
                f"{metric.name} has a single method {metric.default_backend!r}; got backend {name!r}"
            )
        return Backend(name, lambda **kw: None)
    return backend_registry(metric.backend_kind).get(name)


def proxy_note(metric: Metric, backend: str) -> str | None:
    """What a weight-free backend stands in for (``None`` for the real thing)."""
    try:
        return get_backend(metric, backend).proxy_for
    except UnknownNameError:
        return None

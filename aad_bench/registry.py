"""Name → object registries for the names people type (methods, discriminator heads, metrics, backends).

Unknown names fail with a "did you mean" list, so a typo in a config never silently picks a default.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the close matches and all options."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of objects with decorator registration and lazy ``"module:attr"`` entries.

    Args:
        kind: what the entries are ("method", "metric", ...), used in error messages.
        lazy: name → ``"module:attr"`` strings imported on first lookup (keeps start-up cheap).
    """

    def __init__(self, kind: str, lazy: dict[str, str] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = dict(lazy or {})

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as ``@registry.register("name")``."""

        def _add(o: T) -> T:
            if name in self._items and self._items[name] is not o:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = o
            return o

        return _add(obj) if obj is not None else _add

    def add_lazy(self, name: str, target: str) -> None:
        """Register ``"module:attr"`` to be imported when ``name`` is first looked up."""
        self._lazy[name] = target

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(set(self._items) | set(self._lazy))

    def get(self, name: str) -> T:
        """Return the entry for ``name`` or raise :class:`UnknownNameError` with suggestions."""
        if name in self._items:
            return self._items[name]
        if name in self._lazy:
            module, _, attr = self._lazy[name].partition(":")
            mod = importlib.import_module(module)
            if name not in self._items:  # the import may have registered it via the decorator
                self._items[name] = getattr(mod, attr)
            return self._items[name]
        raise UnknownNameError(self.unknown_message(name))

    def unknown_message(self, name: Any) -> str:
        """The one-line error for an unknown name."""
        options = self.names()
        close = difflib.get_close_matches(str(name), options, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(options)}"

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

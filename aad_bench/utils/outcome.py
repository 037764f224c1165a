"""How many jobs of this command failed, so a sweep that goes on past a bad job still exits non-zero.

A bad job in a multirun (basic, aad_local or aad_slurm launcher) is recorded as ``failed`` and the sweep
continues; the app and the campaign launchers note each failure here, and ``aad-bench`` exits 1 at the end
when any job failed.
"""

from __future__ import annotations

_failed: list[str] = []


def note_failure(what: str) -> None:
    """Count one failed job (``what``: a one-line description)."""
    _failed.append(what)


def failures() -> list[str]:
    """The failures noted so far in this process."""
    return list(_failed)


def reset() -> None:
    """Forget noted failures (a new command in the same process)."""
    _failed.clear()

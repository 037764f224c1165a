"""The run folder: one per job, self-documenting, written atomically, never overwritten once finished.

Layout (see docs/contracts.md)::

    <run>/config.yaml  provenance.json  metrics.jsonl  results.json  owner.lock (while a process owns it)
          checkpoints/  videos/<set>/  eval/<metric>.json

One live process owns a run folder at a time: :meth:`RunFolder.start` claims ``owner.lock`` (host, pid, SLURM job;
a dead owner's lock is taken over) and :meth:`RunFolder.finish` releases it. On start the owner also removes the
temp files a killed writer left behind (``.<name>.*.tmp``, ``.<stem>.partial.mp4``). In a distributed run rank 0 is
that process: the other ranks only read (every write and claim below is a no-op for them).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aad_bench.utils.io import (
    MalformedFileError,
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    read_json,
    read_jsonl,
    scan_jsonl,
    write_jsonl,
)
from aad_bench.utils.ownership import FolderBusyError, OwnerLock, describe
from aad_bench.utils.provenance import provenance

# leftovers of interrupted atomic writes: atomic_write_* temp files, streamed mp4s, temp images/arrays
PARTIAL_PATTERNS = (".*.tmp", ".*.tmp.*", ".*.partial.*")

STATUSES = ("running", "finished", "diverged", "failed")


def _follower() -> bool:
    """A rank other than 0 of a distributed run: only rank 0 writes run-folder files."""
    d = sys.modules.get("torch.distributed")
    return d is not None and d.is_available() and d.is_initialized() and d.get_rank() != 0


class RunFolder:
    """Read/write access to one run folder.

    Args:
        path: the folder (created on :meth:`start`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- locations -------------------------------------------------------------------------------
    @property
    def results_path(self) -> Path:
        """``results.json``."""
        return self.path / "results.json"

    @property
    def metrics_path(self) -> Path:
        """``metrics.jsonl``."""
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        """The checkpoint folder."""
        return self.path / "checkpoints"

    def videos(self, set_name: str) -> Path:
        """Folder of one video set (e.g. ``train_len``, ``long``)."""
        return self.path / "videos" / set_name

    @property
    def eval_dir(self) -> Path:
        """Where evaluation writes ``<set>/<metric>@<backend>.json``."""
        return self.path / "eval"

    # -- state -----------------------------------------------------------------------------------
    @property
    def lock(self) -> OwnerLock:
        """The folder's owner lock (``owner.lock``)."""
        return OwnerLock(self.path / "owner.lock")

    def results(self) -> dict[str, Any]:
        """The current ``results.json`` (empty dict when absent).

        Raises:
            MalformedFileError: the file is not JSON, or not a JSON object (the message names it).
        """
        if not self.results_path.exists():
            return {}
        res = read_json(self.results_path)
        if not isinstance(res, dict):
            raise MalformedFileError(f"{self.results_path}: expected a JSON object, got {type(res).__name__}")
        return res

    @property
    def status(self) -> str | None:
        """``running`` | ``finished`` | ``diverged`` | ``failed`` (None before the run started)."""
        return self.results().get("status")

    def is_finished(self) -> bool:
        """Whether the run ended with status ``finished``."""
        return self.status == "finished"

    def claim(self) -> None:
        """Become the folder's one live owner and clean what a killed earlier owner left half-written.

        Raises:
            FolderBusyError: another live process owns the folder (or it finished meanwhile).
        """
        if _follower():
            return
        stale = self.lock.claim()
        if stale:
            print(f"note: {self.path}: taking over from {describe(stale)}, which is no longer running")
        try:
            if self.is_finished():
                raise FolderBusyError(f"{self.path} is already finished (not overwritten)")
        except BaseException:
            self.lock.release()
            raise
        self.clean_partials()

    def release(self) -> None:
        """Give up ownership (a no-op when this process does not own the folder)."""
        if not _follower():
            self.lock.release()

    @contextmanager
    def owned(self) -> Iterator[RunFolder]:
        """Own the folder for the block (e.g. resampling a finished run): claim, then release."""
        if _follower():
            yield self
            return
        stale = self.lock.claim()
        if stale:
            print(f"note: {self.path}: taking over from {describe(stale)}, which is no longer running")
        try:
            yield self
        finally:
            self.lock.release()

    def clean_partials(self) -> list[Path]:
        """Remove temp files of interrupted writes anywhere in the folder; returns what was removed."""
        gone = sorted({p for pat in PARTIAL_PATTERNS for p in self.path.rglob(pat) if p.is_file()})
        for p in gone:
            p.unlink(missing_ok=True)
        return gone

    def start(self, config_yaml: str, info: dict[str, Any], extra_provenance: dict[str, Any] | None = None) -> None:
        """Claim the folder, write config + provenance, set status ``running`` (keeps earlier fields).

        ``extra_provenance`` adds fields to ``provenance.json`` (e.g. ``distributed``: world size, engine, devices).
        """
        if _follower():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self.claim()
        atomic_write_text(self.path / "config.yaml", config_yaml)
        prov = {**provenance(), **(extra_provenance or {})}
        prov["started_at"] = time.time()
        atomic_write_json(self.path / "provenance.json", prov)
        self.update(status="running", reason=None, **info)

    def update(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into ``results.json`` atomically and return the new content."""
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {fields['status']!r}")
        res = self.results()
        res.update(fields)
        res["updated_at"] = time.time()
        if not _follower():
            atomic_write_json(self.results_path, res)
        return res

    def finish(self, status: str, reason: str | None = None, **fields: Any) -> dict[str, Any]:
        """Record the end state (``finished`` / ``diverged`` / ``failed`` with a reason) and release the folder."""
        res = self.update(status=status, reason=reason, **fields)
        self.release()
        return res

    def log(self, record: dict[str, Any]) -> None:
        """Append one line to ``metrics.jsonl`` (adds a wall-clock timestamp)."""
        if _follower():
            return
        append_jsonl(self.metrics_path, {**record, "time": round(time.time(), 3)})

    def metrics(self) -> list[dict[str, Any]]:
        """All rows of ``metrics.jsonl``."""
        return read_jsonl(self.metrics_path)

    def rewind_metrics(self, state: dict[str, Any] | None) -> int:
        """Drop the ``metrics.jsonl`` rows logged after the checkpoint a run resumes from; returns how many.

        ``state`` is that checkpoint (``stage``, ``step``, optional ``stages_done``), None when the run starts
        over. Kept: rows of a stage in ``stages_done`` and rows of ``stage`` up to ``step``; torn lines go too.
        The rerun logs the dropped steps again, so the file holds one row per (stage, step).
        """
        if _follower():
            return 0
        numbered, bad = scan_jsonl(self.metrics_path)
        rows = [r for _, r in numbered]
        if not rows and not bad:
            return 0
        done = set(state.get("stages_done") or []) if state else set()

        def kept(r: Any) -> bool:
            if not isinstance(r, dict) or state is None:
                return False
            if r.get("stage") in done:
                return True
            step = r.get("step")
            return r.get("stage") == state.get("stage") and isinstance(step, int) and step <= int(state["step"])

        keep = [r for r in rows if kept(r)]
        if len(keep) != len(rows) or bad:
            write_jsonl(self.metrics_path, keep)
        return len(rows) + len(bad) - len(keep)

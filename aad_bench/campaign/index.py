"""The campaign index: ``<campaign>/index.jsonl``, one JSON object per job event (latest line wins)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aad_bench.utils.io import append_jsonl, read_jsonl

# index statuses: the run-folder statuses plus the two a queue adds
TERMINAL = ("finished", "diverged", "failed")
STATUSES = ("pending", "running", *TERMINAL)


class CampaignIndex:
    """Append-only job index of one campaign folder.

    Args:
        root: the campaign folder (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.path = self.root / "index.jsonl"

    def records(self) -> list[dict[str, Any]]:
        """Every line, oldest first (a torn last line from a crash is skipped)."""
        return read_jsonl(self.path)

    def latest(self) -> dict[int, dict[str, Any]]:
        """The merged state of each job: later lines update earlier fields (``None`` does not erase)."""
        out: dict[int, dict[str, Any]] = {}
        for rec in self.records():
            cur = out.setdefault(int(rec["job"]), {})
            cur.update({k: v for k, v in rec.items() if v is not None or k in ("error",)})
        return dict(sorted(out.items()))

    def job_number(self, run_dir: str, taken: set[int] | None = None) -> int:
        """The campaign job number of a run folder (its identity: derived from the semantic config)."""
        jobs = self.latest()
        for num, rec in jobs.items():
            if rec.get("run_dir") == run_dir:
                return num
        used = set(jobs) | (taken or set())
        return next(i for i in range(len(used) + 1) if i not in used)

    def record(self, job: int, status: str, **fields: Any) -> dict[str, Any]:
        """Append one event for ``job`` (single-write line: safe with concurrent writers on one host)."""
        if status not in STATUSES:
            raise ValueError(f"index status must be one of {STATUSES}, got {status!r}")
        rec = {"job": int(job), "status": status, **fields, "time": round(time.time(), 3)}
        append_jsonl(self.path, rec)
        return rec

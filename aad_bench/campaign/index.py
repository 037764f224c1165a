"""The campaign index: ``<campaign>/index.jsonl``, one JSON object per job event (latest line wins).

Readers survive damage anywhere in the file: a torn line (a crash mid-append, followed by more appends) or a
line of the wrong shape (not an object, no integer ``job``, an unknown ``status``, ``run_dir`` not a string,
``overrides`` not a list of strings) is skipped and counted in :attr:`CampaignIndex.skipped`, which
``campaign status`` reports.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aad_bench.utils.io import append_jsonl, scan_jsonl

# index statuses: the run-folder statuses plus the two a queue adds
TERMINAL = ("finished", "diverged", "failed")
STATUSES = ("pending", "running", *TERMINAL)


def shape_problem(rec: Any) -> str | None:
    """Why an index line cannot be used (None: it can)."""
    if not isinstance(rec, dict):
        return f"not an object but {type(rec).__name__}"
    job = rec.get("job")
    if not isinstance(job, int) or isinstance(job, bool) or job < 0:
        return f"job is {job!r}, not a job number"
    if rec.get("run_dir") is not None and not isinstance(rec["run_dir"], str):
        return f"run_dir is {rec['run_dir']!r}, not a path"
    if rec.get("status") not in STATUSES:
        return f"status {rec.get('status')!r} is not one of {', '.join(STATUSES)}"
    ov = rec.get("overrides")
    if ov is not None and not (isinstance(ov, list) and all(isinstance(o, str) for o in ov)):
        return "overrides is not a list of strings"
    for key in ("slurm_job_id", "error", "log_out", "backend", "host"):
        if rec.get(key) is not None and not isinstance(rec[key], str | int):
            return f"{key} is {type(rec[key]).__name__}, not text"
    return None


class CampaignIndex:
    """Append-only job index of one campaign folder.

    Args:
        root: the campaign folder (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.path = self.root / "index.jsonl"
        self.skipped: list[tuple[int, str]] = []  # (line number, why) of the lines the last read skipped

    def records(self) -> list[dict[str, Any]]:
        """Every usable line, oldest first; torn or wrong-shaped lines are skipped into :attr:`skipped`."""
        values, torn = scan_jsonl(self.path)
        self.skipped = [(n, "torn (not JSON)") for n in torn]
        good = []
        for n, rec in values:
            why = shape_problem(rec)
            if why:
                self.skipped.append((n, why))
            else:
                good.append(rec)
        self.skipped.sort()
        return good

    def skipped_summary(self) -> str | None:
        """One line about skipped index lines (None when there were none)."""
        if not self.skipped:
            return None
        shown = "; ".join(f"line {n}: {why}" for n, why in self.skipped[:5])
        more = f"; ... {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
        return f"{self.path}: skipped {len(self.skipped)} unreadable line(s) ({shown}{more})"

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

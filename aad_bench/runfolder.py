"""The run folder: one per job, self-documenting, written atomically, never overwritten once finished.

Layout (see DESIGN.md)::

    <run>/config.yaml  provenance.json  metrics.jsonl  results.json
          checkpoints/  videos/<set>/  eval/<metric>.json
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aad_bench.utils.io import append_jsonl, atomic_write_json, atomic_write_text, read_json, read_jsonl
from aad_bench.utils.provenance import provenance

STATUSES = ("running", "finished", "diverged", "failed")


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
    def results(self) -> dict[str, Any]:
        """The current ``results.json`` (empty dict when absent)."""
        return read_json(self.results_path) if self.results_path.exists() else {}

    @property
    def status(self) -> str | None:
        """``running`` | ``finished`` | ``diverged`` | ``failed`` (None before the run started)."""
        return self.results().get("status")

    def is_finished(self) -> bool:
        """Whether the run ended with status ``finished``."""
        return self.status == "finished"

    def start(self, config_yaml: str, info: dict[str, Any]) -> None:
        """Create the folder, write config + provenance, set status ``running`` (keeps earlier fields)."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / "config.yaml", config_yaml)
        prov = provenance()
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
        atomic_write_json(self.results_path, res)
        return res

    def finish(self, status: str, reason: str | None = None, **fields: Any) -> dict[str, Any]:
        """Record the end state: ``finished`` / ``diverged`` / ``failed`` with a reason."""
        return self.update(status=status, reason=reason, **fields)

    def log(self, record: dict[str, Any]) -> None:
        """Append one line to ``metrics.jsonl`` (adds a wall-clock timestamp)."""
        append_jsonl(self.metrics_path, {**record, "time": round(time.time(), 3)})

    def metrics(self) -> list[dict[str, Any]]:
        """All rows of ``metrics.jsonl``."""
        return read_jsonl(self.metrics_path)

"""``aad-bench campaign status``: each job's state from the index, its run folder and SLURM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aad_bench.campaign.index import CampaignIndex
from aad_bench.campaign.jobstate import ACTIVE, local_alive, slurm_state
from aad_bench.runfolder import RunFolder
from aad_bench.utils.io import MalformedFileError

SHOWN = ("finished", "running", "pending", "failed", "diverged", "malformed")
# overrides `campaign launch` adds to every job: noise in the table
PLUMBING = ("slurm=", "campaign=", "paths.runs=", "hydra.")


def job_status(rec: dict[str, Any]) -> tuple[str, str | None]:
    """(status, error) of one job. The run folder is authoritative for results; SLURM for queued jobs.

    A ``results.json`` that is not a JSON object is status ``malformed`` with an error naming the file.
    """
    try:
        res = RunFolder(rec["run_dir"]).results() if rec.get("run_dir") else {}
    except (MalformedFileError, UnicodeDecodeError, OSError) as e:
        return "malformed", str(e)
    rs, st = res.get("status"), rec.get("status")
    if rs in ("finished", "diverged"):
        return rs, res.get("reason") if rs == "diverged" else None
    if st == "failed" or rs == "failed":
        return "failed", rec.get("error") or res.get("reason")
    if st in ("pending", "running") and rec.get("backend", "slurm") == "slurm":
        state = slurm_state(rec.get("slurm_job_id"))
        if state is not None:
            base = state.split()[0].rstrip("+")
            if base not in ACTIVE:  # SLURM is done with it but no result: killed, cancelled, node failure
                return "failed", rec.get("error") or f"job ended without a result (SLURM state {base})"
            return ("running" if base in ("RUNNING", "COMPLETING") else "pending"), None
    if st in ("pending", "running") and rec.get("backend") == "local" and local_alive(rec) is False:
        gone = f"job ended without a result (local process {rec.get('slurm_job_id')} is gone)"
        return "failed", rec.get("error") or gone
    return str(st), rec.get("error")


def campaign_status(root: str | Path, index: CampaignIndex | None = None) -> list[dict[str, Any]]:
    """One row per job: job, status, slurm_job_id, run_dir, overrides, error, log_out.

    Unreadable index lines are skipped; pass ``index`` to read :attr:`CampaignIndex.skipped` afterwards.
    """
    index = index or CampaignIndex(root)
    if not index.path.exists():
        raise FileNotFoundError(f"no campaign index at {index.path}")
    rows = []
    for num, rec in index.latest().items():
        status, error = job_status(rec)
        rows.append({"job": num, "status": status, "slurm_job_id": rec.get("slurm_job_id"),
                     "run_dir": rec.get("run_dir"), "overrides": rec.get("overrides", []), "error": error,
                     "log_out": rec.get("log_out"), "restarts": rec.get("restarts", 0)})
    return rows


def format_status(rows: list[dict[str, Any]], hide: set[str] = frozenset()) -> str:
    """A table for the terminal plus a count line; ``hide`` drops overrides shared by every job."""
    lines = [f"{'job':>4}  {'status':<9} {'slurm id':<12} {'run folder':<34} overrides"]
    for r in rows:
        ov = " ".join(o for o in r["overrides"] if o not in hide and not o.startswith(PLUMBING))
        lines.append(f"{r['job']:>4}  {r['status']:<9} {str(r['slurm_job_id'] or '-'):<12} "
                     f"{Path(r['run_dir'] or '-').name:<34} {ov}")
        if r["status"] in ("failed", "malformed"):
            lines.append(f"{'':>6}error: {r['error']}")
            if r.get("log_out"):
                lines.append(f"{'':>6}log:   {r['log_out']}")
    counts = {s: sum(r["status"] == s for r in rows) for s in SHOWN}
    lines.append(f"{len(rows)} job(s): " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(lines)

"""Per-job decisions and bookkeeping shared by the launcher (submitter side) and the job itself."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus

from aad_bench.campaign.index import TERMINAL, CampaignIndex
from aad_bench.runfolder import RunFolder
from aad_bench.utils.io import MalformedFileError
from aad_bench.utils.ownership import FolderBusyError, describe, pid_alive
from aad_bench.utils.slurm import ACTIVE, slurm_active, slurm_state  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


def _active(job_id: str | None) -> bool:
    return bool(slurm_active(job_id))


def local_alive(rec: dict[str, Any]) -> bool | None:
    """Whether a local-backend job's process (its ``slurm_job_id`` is the submitit pid) still runs.

    None when this host cannot tell (the job ran on another host).
    """
    pid, host = rec.get("slurm_job_id"), rec.get("host")
    if host and host != socket.gethostname():
        return None
    if not str(pid or "").isdigit() or not pid_alive(int(pid)):
        return False
    try:  # a recycled pid is some other program: the submitit job runs `python -m submitit.core._submit`
        return b"submitit" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def job_alive(rec: dict[str, Any]) -> bool:
    """Whether the queue (SLURM, or the local process) still holds an indexed pending/running job."""
    if rec.get("status") not in ("pending", "running"):
        return False
    if rec.get("backend", "slurm") == "local":
        return local_alive(rec) is not False
    return _active(rec.get("slurm_job_id"))


def decide(prev: dict[str, Any], run_dir: Path, retry_failed: bool) -> tuple[str, dict[str, Any]]:
    """What to do with one job on (re)launch: ``submit`` or a skip reason, plus the value to report.

    Never submitted: finished or diverged runs, a run folder owned by a live process (any backend), a job the
    queue still holds (SLURM job active, or local process alive), failed jobs unless ``retry_failed``.
    """
    run = RunFolder(run_dir)
    try:
        res = run.results()
    except MalformedFileError as e:
        return "malformed results.json, not rerun", {"status": "failed", "error": str(e)}
    status = res.get("status")
    if status in ("finished", "diverged"):
        return f"already {status}", res  # results are never overwritten (and a rerun would not change them)
    owner = run.lock.live_owner()
    if owner is not None:
        return "still running", {"status": "running", "owner": describe(owner)}
    if job_alive(prev):
        return "still queued or running", {"status": prev["status"], "slurm_job_id": prev.get("slurm_job_id")}
    failed = status == "failed" or prev.get("status") == "failed"
    if failed and not retry_failed:
        return "failed, not retried (use --retry-failed)", {"status": "failed", "error": prev.get("error")
                                                            or res.get("reason")}
    return "submit", {}


def _error_text(exc: BaseException) -> str:
    """One line for the index: the last non-empty line of the error (submitit errors embed the log tail)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:500]


def record_return(index: CampaignIndex, job: int, ret: JobReturn) -> None:
    """Index the outcome of a finished Hydra job (status from the task's results, error if it raised).

    A job that found its run folder owned by another live process records nothing: that process records its own.
    """
    value = ret._return_value
    if isinstance(value, FolderBusyError) or (isinstance(value, dict) and value.get("status") == "busy"):
        log.warning("campaign job %s not run: %s", job, value.get("reason") if isinstance(value, dict) else value)
        return
    if ret.status == JobStatus.FAILED:
        index.record(job, "failed", error=_error_text(ret._return_value))
        return
    value = ret._return_value
    status = value.get("status") if isinstance(value, dict) else None
    index.record(job, status if status in TERMINAL else "finished",
                 error=value.get("reason") if status in ("diverged", "failed") else None)


def wait(index: CampaignIndex, p: dict[str, Any], job: Any) -> JobReturn:
    """Wait for one submitted job (across requeues) and index its end; never raises."""
    try:
        ret = job.results()[0]
    except Exception as e:  # the job died: SLURM killed it, too many timeouts, cancelled, ...
        log.error("campaign job %s (%s) failed; log: %s", p["num"], job.job_id, job.paths.stdout)
        index.record(p["num"], "failed", error=_error_text(e), log_out=str(job.paths.stdout))
        return JobReturn(overrides=p["overrides"], status=JobStatus.FAILED, _return_value=e)
    record_return(index, p["num"], ret)
    return ret


def use_snapshot_configs(hydra_context: Any, code_root: str) -> None:
    """Inside a job: read the config tree from the code snapshot, not from the live checkout.

    The pickled config loader searches absolute ``file://<checkout>/...`` paths; point them at the snapshot
    so a YAML edited after submission cannot change a queued job.
    """
    snap = os.environ.get("AAD_BENCH_SNAPSHOT")
    if not snap or hydra_context is None:
        return
    try:
        from hydra._internal.config_repository import ConfigRepository

        loader = hydra_context.config_loader
        prefix = f"file://{code_root.rstrip('/')}/"
        for el in loader.config_search_path.config_search_path:
            if el.path and el.path.startswith(prefix):
                el.path = f"file://{snap.rstrip('/')}/" + el.path[len(prefix):]
        loader.repository = ConfigRepository(config_search_path=loader.config_search_path)
    except Exception as e:  # private Hydra API: fall back to the checkout's configs rather than fail the job
        log.warning("could not switch configs to the code snapshot: %s", e)

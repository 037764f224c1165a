"""What SLURM says about a job: its state, whether it is still active, and this process's own job ids."""

from __future__ import annotations

import os
import shutil
import subprocess

# states in which a job may still run (or run again): a run it owns must not be started a second time
ACTIVE = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED",
          "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT")


def slurm_state(job_id: str | None) -> str | None:
    """SLURM state of a job (``squeue``, then ``sacct``); None when unknown or SLURM is not here."""
    if not job_id or shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True,
                             text=True, timeout=15)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.split()[0]
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", str(job_id), "-o", "State"],
                             capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    states = out.stdout.split() if out.returncode == 0 else []
    return states[0] if states else None


def slurm_active(job_id: str | None) -> bool | None:
    """True/False when SLURM knows the job (active or done), None when it cannot tell."""
    state = slurm_state(job_id)
    if state is None:
        return None
    return state.split()[0].rstrip("+") in ACTIVE


def own_job_id() -> str | None:
    """This process's SLURM job id (``SLURM_JOB_ID``; unique per array task), None outside SLURM."""
    return os.environ.get("SLURM_JOB_ID") or None

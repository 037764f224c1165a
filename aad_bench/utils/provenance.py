"""Who/what/where produced a run: git SHA + dirty flag, package versions, host, SLURM ids."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("aad_bench", "torch", "numpy", "hydra-core", "omegaconf", "submitit", "decord",
            "opencv-python-headless", "pandas", "scipy", "deepspeed", "vbench")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str, cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(root: Path = REPO_ROOT) -> dict[str, Any]:
    """SHA and dirty flag of the code that runs (a submitit snapshot is its own git-less copy)."""
    snapshot = os.environ.get("AAD_BENCH_SNAPSHOT")
    sha = _git("rev-parse", "HEAD", cwd=root)
    dirty = None
    if sha is not None:
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no", cwd=root))
    return {"sha": sha or os.environ.get("AAD_BENCH_GIT_SHA"), "dirty": dirty, "snapshot": snapshot,
            "code_root": str(root)}


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that change results."""
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def slurm_ids() -> dict[str, str]:
    """SLURM job / array ids from the environment (empty outside SLURM)."""
    keys = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT",
            "SLURM_JOB_PARTITION", "SLURM_JOB_NODELIST")
    return {k: os.environ[k] for k in keys if k in os.environ}


def provenance() -> dict[str, Any]:
    """Everything needed to say which code, libraries and machine produced a run."""
    import torch

    return {
        "git": git_info(),
        "versions": versions(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "slurm": slurm_ids(),
        "argv": sys.argv,
    }


def config_hash(obj: Any, n: int = 10) -> str:
    """A short stable hash of a JSON-able object (dict key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]

"""Code snapshot at submission: jobs import the code as it was when the campaign was launched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from aad_bench.utils.provenance import REPO_ROOT, git_info


def _files(root: Path) -> list[str]:
    """Tracked + untracked-but-not-ignored files (uncommitted edits are what the researcher launched)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"cannot list files of {root} for the code snapshot: "
                           f"{out.stderr.decode().strip()}")
    return [f for f in out.stdout.decode().split("\0") if f]


def make_snapshot(dest: str | Path, root: Path = REPO_ROOT) -> dict[str, str | bool | None]:
    """Copy the working tree's source files under ``dest``; returns ``{"snapshot", "sha", "dirty"}``.

    Symlinks are kept as links (the config groups ``conf/slurm`` etc. are relative links).
    """
    dest = Path(dest).resolve()
    if dest.exists():
        raise FileExistsError(f"code snapshot folder already exists: {dest}")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel in _files(root):
        src, dst = root / rel, tmp / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted but still in the index
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    tmp.rename(dest)
    info = git_info(root)
    return {"snapshot": str(dest), "sha": info["sha"], "dirty": info["dirty"]}


def snapshot_env(snap: dict[str, str | bool | None]) -> dict[str, str]:
    """Environment that makes a job import from the snapshot and record it in its provenance.

    ``PYTHONSAFEPATH`` stops ``python -m`` from putting the submit folder (maybe the live checkout) first on
    ``sys.path``; ``PYTHONPATH`` puts the snapshot before the editable install.
    """
    path = [str(snap["snapshot"]), os.environ.get("PYTHONPATH")]
    env = {"AAD_BENCH_SNAPSHOT": str(snap["snapshot"]), "PYTHONSAFEPATH": "1",
           "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    if snap.get("sha"):
        env["AAD_BENCH_GIT_SHA"] = str(snap["sha"]) + ("-dirty" if snap.get("dirty") else "")
    return env

"""One live owner per folder: a lock file naming the owning process (host, pid, SLURM job), stale-lock recovery.

The lock file holds JSON ``{"host", "pid", "pid_start", "slurm_job_id", "since"}``. Claiming it is a short
critical section under ``flock`` on the lock file itself (re-checked against the path's inode, so a concurrent
release that unlinks it cannot hand the same lock to two processes). An existing owner is *stale* when

* it ran on this host and its pid is gone (or the pid now belongs to a younger process), or
* it ran under a SLURM job that SLURM reports as no longer active (killed, cancelled, node failure).

A live owner on another host without SLURM cannot be checked from here: it counts as alive, and the error names
the lock file to delete once that process is known to be gone. The same process, or another process of the
same SLURM job (a requeued incarnation, another rank), owns the folder already: claiming again is allowed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from aad_bench.utils.slurm import own_job_id, slurm_active

log = logging.getLogger(__name__)


class FolderBusyError(RuntimeError):
    """The folder is owned by another live process; the message names it and the lock file."""


def pid_start(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (``/proc/<pid>/stat`` field 22), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # fields after "(comm)" start at field 3


def pid_alive(pid: int, start: int | None = None) -> bool:
    """Whether ``pid`` runs on this host (and, when ``start`` is given, is still the same process)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    now = pid_start(int(pid))
    return start is None or now is None or now == start


def me() -> dict[str, Any]:
    """This process as an owner record."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": pid_start(os.getpid()),
            "slurm_job_id": own_job_id(), "since": round(time.time(), 3)}


def describe(owner: dict[str, Any]) -> str:
    """``pid 123 on host h (SLURM job 45)``."""
    job = f" (SLURM job {owner['slurm_job_id']})" if owner.get("slurm_job_id") else ""
    return f"pid {owner.get('pid')} on host {owner.get('host')}{job}"


def is_self(owner: dict[str, Any]) -> bool:
    """The owner is this process, or another process of this SLURM job (a requeue or another rank)."""
    if owner.get("slurm_job_id") and owner.get("slurm_job_id") == own_job_id():
        return True
    return owner.get("host") == socket.gethostname() and owner.get("pid") == os.getpid()


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the recorded owner may still be running (see the module docstring)."""
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        return pid_alive(owner["pid"], owner.get("pid_start"))
    if owner.get("slurm_job_id"):
        active = slurm_active(str(owner["slurm_job_id"]))
        return active is not False  # unknown (SLURM unreachable from here) counts as alive
    return True


class OwnerLock:
    """The owner lock of one folder.

    Args:
        path: the lock file (its folder is created on :meth:`claim`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _locked(self, create: bool = True) -> int:
        """An fd of the lock file under ``flock``, re-opened until it is the file the path names.

        Raises ``FileNotFoundError`` when the file is absent and ``create`` is False.
        """
        while True:
            fd = os.open(self.path, os.O_RDWR | (os.O_CREAT if create else 0), 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as e:  # a file system without locks: the owner record still works, unserialised
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    os.close(fd)
                    raise
                log.warning("%s: file locks are not supported here; claiming without them", self.path)
            try:
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    return fd
            except FileNotFoundError:
                pass  # released (unlinked) while we waited: take the new file
            os.close(fd)

    @staticmethod
    def _read(fd: int) -> dict[str, Any] | None:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        try:
            owner = json.loads(raw.decode() or "null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None  # torn by a writer that died mid-claim: no owner
        return owner if isinstance(owner, dict) else None

    def owner(self) -> dict[str, Any] | None:
        """The recorded owner (None when unowned), whether alive or not."""
        try:
            fd = self._locked(create=False)
        except FileNotFoundError:
            return None
        try:
            return self._read(fd)
        finally:
            os.close(fd)

    def live_owner(self) -> dict[str, Any] | None:
        """The owner when it is another process that may still be running, else None."""
        owner = self.owner()
        return owner if owner and not is_self(owner) and owner_alive(owner) else None

    def claim(self) -> dict[str, Any] | None:
        """Become the owner; returns the stale owner taken over (None if there was none).

        Raises:
            FolderBusyError: another live process owns the folder.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = self._locked()
        try:
            prev = self._read(fd)
            if prev and not is_self(prev) and owner_alive(prev):
                raise FolderBusyError(f"{self.path.parent} is in use by {describe(prev)} since "
                                      f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(prev.get('since', 0)))}; "
                                      f"if that process is gone, delete {self.path}")
            data = json.dumps(me()).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
            return prev if prev and not is_self(prev) else None
        finally:
            os.close(fd)

    def release(self) -> None:
        """Remove the lock if this process owns it (a lock taken over by someone else is left alone)."""
        try:
            fd = self._locked(create=False)
        except FileNotFoundError:
            return
        try:
            owner = self._read(fd)
            if owner is None or is_self(owner):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)

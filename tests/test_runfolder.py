"""A run folder has one live owner, cleans what a killed writer left, and keeps one metrics row per step."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from aad_bench.runfolder import RunFolder
from aad_bench.utils.io import append_jsonl
from aad_bench.utils.ownership import FolderBusyError, OwnerLock, pid_start


def _owner_file(run: RunFolder, pid: int, **extra) -> None:
    run.path.mkdir(parents=True, exist_ok=True)
    owner = {"host": socket.gethostname(), "pid": pid, "pid_start": pid_start(pid), "slurm_job_id": None,
             "since": 0, **extra}
    run.lock.path.write_text(json.dumps(owner))


@pytest.fixture
def other_process():
    """A live process that is not this one (the 'other owner')."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_live_owner_blocks_start_with_a_clear_error(tmp_path, other_process):
    run = RunFolder(tmp_path / "r")
    _owner_file(run, other_process.pid)
    with pytest.raises(FolderBusyError, match=rf"in use by pid {other_process.pid} on host .*delete .*owner.lock"):
        run.start("a: 1\n", {})
    assert not run.results_path.exists()  # nothing written by the second process
    assert run.lock.live_owner()["pid"] == other_process.pid


def test_dead_owner_is_taken_over_and_lock_released_on_finish(tmp_path, other_process, capsys):
    run = RunFolder(tmp_path / "r")
    _owner_file(run, other_process.pid)
    other_process.kill()
    other_process.wait()
    run.start("a: 1\n", {})
    assert "taking over from pid" in capsys.readouterr().out
    assert json.loads(run.lock.path.read_text())["pid"] == os.getpid()
    run.start("a: 1\n", {})  # the owner itself may start again (resume in the same process)
    run.finish("finished")
    assert not run.lock.path.exists()
    with pytest.raises(FolderBusyError, match="already finished"):
        run.start("a: 1\n", {})


def test_recycled_pid_is_not_a_live_owner(tmp_path, other_process):
    run = RunFolder(tmp_path / "r")
    _owner_file(run, other_process.pid)
    data = json.loads(run.lock.path.read_text())
    data["pid_start"] -= 1  # same pid, but a process that started at another time
    run.lock.path.write_text(json.dumps(data))
    assert run.lock.live_owner() is None


def test_owner_on_another_host_counts_as_alive_unless_slurm_says_done(tmp_path):
    lock = OwnerLock(tmp_path / "owner.lock")
    lock.path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "slurm_job_id": None}))
    assert lock.live_owner() is not None  # cannot be checked from here: assume alive
    with pytest.raises(FolderBusyError, match="on host elsewhere"):
        lock.claim()


def test_torn_lock_content_is_no_owner(tmp_path):
    lock = OwnerLock(tmp_path / "owner.lock")
    lock.path.write_text('{"host": "x", "pi')
    assert lock.claim() is None and json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_start_cleans_leftovers_of_interrupted_writes(tmp_path):
    run = RunFolder(tmp_path / "r")
    (run.path / "videos" / "long").mkdir(parents=True)
    (run.checkpoints).mkdir()
    left = [run.path / ".results.json.abc123.tmp", run.checkpoints / ".0003-gan-0000002.pt.x1y2.tmp",
            run.path / "videos" / "long" / ".toy_000.partial.mp4", run.path / ".contact_sheet.tmp.png"]
    keep = [run.path / "videos" / "long" / "toy_000.mp4", run.checkpoints / "0002-gan-0000001.pt"]
    for p in left + keep:
        p.write_bytes(b"x")
    run.start("a: 1\n", {})
    assert not any(p.exists() for p in left) and all(p.exists() for p in keep)


def test_rewind_metrics_keeps_one_row_per_stage_step(tmp_path):
    run = RunFolder(tmp_path / "r")
    for stage, step in [("ode", 1), ("ode", 2), ("dmd", 1), ("dmd", 2), ("dmd", 3), ("gan", 1)]:
        run.log({"stage": stage, "step": step})
    with open(run.metrics_path, "a") as f:
        f.write('{"stage": "gan", "st')  # killed mid-append
    dropped = run.rewind_metrics({"stage": "dmd", "step": 2, "stages_done": ["ode"]})
    assert dropped == 3
    assert [(r["stage"], r["step"]) for r in run.metrics()] == [("ode", 1), ("ode", 2), ("dmd", 1), ("dmd", 2)]
    run.rewind_metrics({"stage": "teacher", "step": 0})  # a restart from scratch drops the rest
    assert run.metrics() == []


def test_append_after_a_torn_line_is_not_lost(tmp_path):
    path = tmp_path / "x.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as f:
        f.write('{"a": 2, "b')
    append_jsonl(path, {"a": 3})
    assert [json.loads(ln) for ln in path.read_text().splitlines() if ln.endswith("}")] == [{"a": 1}, {"a": 3}]


def test_concurrent_claims_have_exactly_one_winner(tmp_path):
    code = ("import os, sys, time\nfrom aad_bench.utils.ownership import OwnerLock, FolderBusyError\n"
            "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
            "try:\n    OwnerLock(sys.argv[1]).claim()\nexcept FolderBusyError:\n    print('busy'); sys.exit()\n"
            "print('won', flush=True)\nwhile not os.path.exists(sys.argv[3]):\n    time.sleep(0.05)\n")
    stop = tmp_path / "stop"
    start = str(time.time() + 4)  # all claim at the same moment, after their imports
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "owner.lock"), start, str(stop)],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    t0 = time.time()
    while sum(p.poll() is not None for p in procs) < 3 and time.time() - t0 < 120:
        time.sleep(0.1)  # the winner holds the lock until every other claimant has given up
    stop.touch()
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs == ["busy", "busy", "busy", "won"]

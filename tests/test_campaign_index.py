"""Campaign bookkeeping without SLURM: index, status, relaunch decisions, presets, preflight parsing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from aad_bench.campaign import jobstate
from aad_bench.campaign.cli import campaign_main, check_preset, hydra_path
from aad_bench.campaign.index import CampaignIndex
from aad_bench.campaign.preflight import CampaignError, _gpus
from aad_bench.campaign.status import campaign_status, format_status, job_status
from aad_bench.runfolder import RunFolder
from aad_bench.utils.ownership import pid_start


def test_index_latest_line_wins_and_job_numbers_are_stable(tmp_path):
    idx = CampaignIndex(tmp_path)
    idx.record(0, "pending", run_dir="/r/a", overrides=["x=1"], slurm_job_id="5_0", backend="local")
    idx.record(1, "pending", run_dir="/r/b", overrides=["x=2"])
    idx.record(0, "failed", error="boom")
    latest = idx.latest()
    assert latest[0]["status"] == "failed" and latest[0]["slurm_job_id"] == "5_0"
    assert latest[0]["error"] == "boom"
    assert idx.job_number("/r/b") == 1 and idx.job_number("/r/new") == 2
    assert idx.job_number("/r/new", taken={2}) == 3
    with pytest.raises(ValueError):
        idx.record(0, "weird")


def test_relaunch_decisions(tmp_path):
    done, failed, fresh = (RunFolder(tmp_path / n) for n in ("done", "failed", "fresh"))
    done.start("a: 1\n", {}), done.finish("finished")
    failed.start("a: 1\n", {}), failed.finish("failed", "RuntimeError: x")
    assert jobstate.decide({}, done.path, True)[0] == "already finished"  # never rerun / overwritten
    assert jobstate.decide({}, failed.path, False)[0].startswith("failed, not retried")
    assert jobstate.decide({}, failed.path, True)[0] == "submit"
    assert jobstate.decide({"status": "failed"}, fresh.path, False)[0].startswith("failed")
    assert jobstate.decide({"status": "running", "backend": "local"}, fresh.path, False)[0] == "submit"


def test_status_table_and_cli(tmp_path, capsys):
    run = RunFolder(tmp_path / "runs" / "r0")
    run.start("a: 1\n", {}), run.finish("diverged", "loss is nan")
    idx = CampaignIndex(tmp_path)
    idx.record(0, "running", run_dir=str(run.path), overrides=["seed=1", "slurm=ci"], backend="local")
    idx.record(1, "failed", run_dir=str(tmp_path / "runs" / "r1"), overrides=["seed=2"],
               error="ValueError: bad", log_out="/x/log.out", backend="local")
    rows = campaign_status(tmp_path)
    assert [r["status"] for r in rows] == ["diverged", "failed"]
    text = format_status(rows)
    assert "error: ValueError: bad" in text and "log:   /x/log.out" in text and "slurm=ci" not in text
    assert text.splitlines()[-1] == "2 job(s): 1 failed, 1 diverged"
    assert campaign_main(["status", str(tmp_path), "--json"]) == 0
    assert '"status": "diverged"' in capsys.readouterr().out


def test_unknown_preset_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(CampaignError, match="unknown slurm preset 'nope'"):
        check_preset("nope")
    check_preset("ci"), check_preset("local"), check_preset("cluster")
    assert campaign_main(["launch", str(tmp_path / "c"), "--preset", "nope", "--", "+ablation=smoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown slurm preset 'nope'" in err[0]


def test_gres_parsing():
    assert _gpus("(null)") == 0 and _gpus("gpu:8") == 8 and _gpus("gpu:a100:4(S:0-1),shard:8") == 4


def test_presets_compose_to_campaign_launchers():
    code = ("from hydra import compose, initialize_config_dir\nfrom aad_bench.config import CONF_DIR\n"
            "for p in ('ci', 'local', 'cluster'):\n"
            "    with initialize_config_dir(CONF_DIR, version_base='1.3'):\n"
            "        c = compose('config', overrides=[f'slurm={p}', '+ablation=smoke'],\n"
            "                    return_hydra_config=True)\n"
            "        print(p, c.hydra.launcher._target_, c.hydra.sweeper.params['teacher.seed'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ci hydra_plugins.aad_bench_campaign.CampaignSlurmLauncher 1,2,3" in out.stdout
    assert "local hydra_plugins.aad_bench_campaign.CampaignLocalLauncher" in out.stdout


def test_torn_and_wrong_shaped_index_lines_are_skipped_counted_and_reported(tmp_path, capsys):
    idx = CampaignIndex(tmp_path)
    idx.record(0, "pending", run_dir=str(tmp_path / "runs" / "r0"), overrides=["seed=1"], backend="local")
    with open(idx.path, "a") as f:
        f.write('{"job": 0, "status": "runn')  # torn mid-append ...
    idx.record(1, "failed", run_dir=str(tmp_path / "runs" / "r1"), error="x")  # ... then more appends
    with open(idx.path, "a") as f:
        for bad in ([1, 2], None, {"job": "a", "status": "failed"}, {"job": 2, "status": "weird"},
                    {"job": 3, "status": "failed", "run_dir": 5}, {"job": 4, "status": "failed", "overrides": "x"}):
            f.write(json.dumps(bad) + "\n")
    latest = idx.latest()
    assert sorted(latest) == [0, 1] and latest[1]["status"] == "failed"
    assert [n for n, _ in idx.skipped] == [2, 4, 5, 6, 7, 8, 9]
    assert campaign_main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "2 job(s)" in out.out and "skipped 7 unreadable line(s)" in out.err and "line 2: torn" in out.err
    assert jobstate.decide(latest[0], tmp_path / "runs" / "r0", False)[0] == "submit"  # relaunch still works


def test_wrong_shaped_results_and_campaign_files_are_named_not_crashes(tmp_path, capsys):
    run = tmp_path / "runs" / "r0"
    run.mkdir(parents=True)
    (run / "results.json").write_text("[1, 2]")
    idx = CampaignIndex(tmp_path)
    idx.record(0, "running", run_dir=str(run), backend="local")
    (row,) = campaign_status(tmp_path)
    assert row["status"] == "malformed" and str(run / "results.json") in row["error"]
    decision, value = jobstate.decide({}, run, True)
    assert decision.startswith("malformed") and value["status"] == "failed"  # never silently rerun over it
    (tmp_path / "campaign.json").write_text('{"preset": "ci"}')
    assert campaign_main(["relaunch", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "campaign.json: malformed campaign file" in err[0]


def test_relaunch_skips_a_run_owned_by_a_live_process_on_any_backend(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = RunFolder(tmp_path / "r")
        run.path.mkdir()
        run.lock.path.write_text(json.dumps({"host": socket.gethostname(), "pid": proc.pid,
                                             "pid_start": pid_start(proc.pid)}))
        for prev in ({}, {"status": "running", "backend": "local"}, {"status": "failed"}):
            assert jobstate.decide(prev, run.path, True)[0] == "still running", prev
    finally:
        proc.kill()
        proc.wait()
    assert jobstate.decide({"status": "running", "backend": "local"}, run.path, False)[0] == "submit"  # stale


def test_relaunch_skips_a_local_job_whose_process_still_runs(tmp_path):
    # a local submitit job that has not claimed its run folder yet: its process is what is alive
    code = "import time; time.sleep(60)  # submitit"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        prev = {"status": "pending", "backend": "local", "slurm_job_id": str(proc.pid), "host": socket.gethostname()}
        assert jobstate.decide(prev, tmp_path / "fresh", False)[0] == "still queued or running"
    finally:
        proc.kill()
        proc.wait()
    assert jobstate.decide(prev, tmp_path / "fresh", False)[0] == "submit"
    rows = [{"status": "running", "backend": "local", "slurm_job_id": str(proc.pid), "host": socket.gethostname()}]
    assert job_status(rows[0]) == ("failed", f"job ended without a result (local process {proc.pid} is gone)")


@pytest.mark.parametrize("name", ["a,b", "x$(id)", "it's (1)", "é"])
def test_campaign_paths_round_trip_through_hydra(tmp_path, name):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    path = tmp_path / name / "runs"
    override = OverridesParser.create().parse_override(f"paths.runs={hydra_path(path)}")
    assert not override.is_sweep_override() and override.value() == str(path)


def test_campaign_path_with_interpolation_is_refused_before_anything_is_created(tmp_path, capsys):
    root = tmp_path / "c${oc.env:HOME}"
    assert campaign_main(["launch", str(root), "--preset", "local", "--", "task=teacher"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'${'" in err[0] and "interpolation" in err[0]
    assert not root.exists()

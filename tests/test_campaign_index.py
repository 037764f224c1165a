"""Campaign bookkeeping without SLURM: index, status, relaunch decisions, presets, preflight parsing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aad_bench.campaign import jobstate
from aad_bench.campaign.cli import campaign_main, check_preset
from aad_bench.campaign.index import CampaignIndex
from aad_bench.campaign.preflight import CampaignError, _gpus
from aad_bench.campaign.status import campaign_status, format_status
from aad_bench.runfolder import RunFolder


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

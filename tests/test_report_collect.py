"""Collecting run folders: statuses, campaign index, ablation axes, backends, official VBench files."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from aad_bench.reporting.collect import collect, collect_per_video, find_runs, parse_overrides

FIXTURE = Path(__file__).parent / "fixtures" / "runs" / "demo"


@pytest.fixture(scope="module")
def df():
    return collect(FIXTURE)


def test_every_run_appears_with_its_status(df):
    runs = df.drop_duplicates("run_dir").set_index("run")
    assert len(runs) == 19  # 17 runs + the teacher + a job that failed before its folder existed
    assert runs.loc["005-symmetric-s2", "status"] == "diverged"
    assert runs.loc["005-symmetric-s2", "reason"].startswith("loss/d is NaN")
    failed = runs[runs["job"] == 18].iloc[0]
    assert failed["status"] == "failed" and failed["reason"] == "CUDA out of memory"  # latest index line wins
    assert math.isnan(df[df["run"] == "005-symmetric-s2"]["value"].iloc[0])


def test_arms_axes_and_method_attributes(df):
    runs = df.drop_duplicates("run_dir").set_index("run")
    assert runs.loc["015-aad1-s0-nowarm", "arm"] == "aad1 [train.dmd_warmup=false]"
    assert runs.loc["015-aad1-s0-nowarm", "train.dmd_warmup"] == "false"
    assert runs.loc["015-aad1-s0-nowarm", "warmup"] is False or runs.loc["015-aad1-s0-nowarm", "warmup"] == 0
    assert tuple(runs.loc["000-aad1-s0", ["backbone", "logit", "nfe"]]) == ("bidirectional", "video", 1)
    assert tuple(runs.loc["003-symmetric-s0", ["backbone", "logit"]]) == ("causal", "frame")
    assert runs.loc["017-teacher-s0", "nfe"] == 100
    assert "train.dmd_warmup" in df.attrs["axes"]


def test_mixed_backends_are_distinct_rows(df):
    dyn = df[(df["run"] == "000-aad1-s0") & (df["metric"] == "dynamic_degree")]
    assert sorted(dyn["backend"]) == ["dis", "raft"]
    assert set(df[(df["method"] == "dmd") & (df["metric"] == "dynamic_degree")]["backend"]) == {"raft"}


def test_missing_metric_is_absent_not_zero(df):
    assert df[(df["method"] == "patch") & (df["metric"] == "drift_score")].empty


def test_official_vbench_json_feeds_in(df, tmp_path):
    t = df[df["run"] == "017-teacher-s0"].set_index("metric")
    assert t.loc["imaging_quality", "value"] == pytest.approx(0.703)  # aggregate already on 0-1
    assert t.loc["dynamic_degree", "backend"] == "vbench" and t.loc["dynamic_degree", "value"] == 0.5
    assert t.loc["subject_consistency", "n_videos"] == 4
    # a converted ``<dim>@vbench.json`` next to the raw file wins; the raw one is not counted twice
    camp = tmp_path / "c"
    shutil.copytree(FIXTURE / "runs" / "017-teacher-s0", camp / "runs" / "t")
    conv = {"metric": "imaging_quality", "backend": "vbench", "aggregate": 0.5, "direction": "up"}
    (camp / "runs" / "t" / "eval" / "train_len" / "imaging_quality@vbench.json").write_text(json.dumps(conv))
    iq = collect(camp).query("metric == 'imaging_quality'")
    assert len(iq) == 1 and iq["value"].iloc[0] == 0.5
    pv = collect_per_video(df[df["run"] == "017-teacher-s0"], "imaging_quality")
    assert pv["value"].between(0, 1).all() and len(pv) == 4  # per-video MUSIQ 0-100 rescaled


def test_parse_overrides():
    assert parse_overrides(["method=aad1", "+a.b=3", "~c=", "junk"]) == {
        "method": "aad1",
        "a.b": "3",
        "c": "",
    }


def test_malformed_and_single_run(tmp_path):
    camp = tmp_path / "c"
    shutil.copytree(FIXTURE / "runs" / "000-aad1-s0", camp / "runs" / "r1")
    shutil.copytree(FIXTURE / "runs" / "001-aad1-s1", camp / "runs" / "r2")
    (camp / "runs" / "r2" / "results.json").write_text("{not json")
    (camp / "runs" / "r1" / "eval" / "train_len" / "aesthetic_quality@laion.json").write_text("[")
    d = collect(camp)
    runs = d.drop_duplicates("run_dir").set_index("run")
    assert runs.loc["r2", "status"] == "malformed" and "malformed JSON" in runs.loc["r2", "reason"]
    bad = d[(d["run"] == "000-aad1-s0") & (d["metric"] == "aesthetic_quality")]
    assert math.isnan(bad["value"].iloc[0])
    assert len(find_runs(camp / "runs" / "r1")) == 1
    assert json.loads((camp / "runs" / "r1" / "results.json").read_text())["status"] == "finished"

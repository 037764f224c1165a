"""Collecting run folders: statuses, campaign index, arms from method_info, backends, official VBench files,
reported numbers, and wrong-shaped files recorded as problems while the rest goes on."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from aad_bench.reporting.collect import collect, collect_per_video
from aad_bench.reporting.runs import find_runs, parse_overrides, read_index

FIXTURE = Path(__file__).parent / "fixtures" / "runs" / "demo"


@pytest.fixture(scope="module")
def df():
    return collect(FIXTURE)


def test_every_run_appears_with_its_status(df):
    runs = df.drop_duplicates("run_dir").set_index("run")
    # 17 runs + the teacher + a job that failed before its folder existed + an evaluated and a reported folder
    assert len(runs) == 21
    assert runs.loc["005-symmetric-s2", "status"] == "diverged"
    assert runs.loc["005-symmetric-s2", "reason"].startswith("loss/d is NaN")
    failed = runs[runs["job"] == 18].iloc[0]
    assert failed["status"] == "failed" and failed["reason"] == "CUDA out of memory"  # latest index line wins
    assert failed["title"] == "Patch"  # borrowed from another run of its method
    assert math.isnan(df[df["run"] == "005-symmetric-s2"]["value"].iloc[0])
    assert runs.loc["CausVid", "status"] == "evaluated" and runs.loc["self_forcing-paper", "status"] == "reported"
    assert runs.loc["self_forcing-paper", "source"] == "as reported"
    assert runs.loc["CausVid", "source"] == "re-evaluated"


def test_arms_come_from_method_info_and_plumbing_never_splits_them(df):
    runs = df.drop_duplicates("run_dir").set_index("run")
    assert runs.loc["015-aad1-s0-nowarm", "arm"] == "aad1 [train.dmd_warmup=false]"
    assert runs.loc["015-aad1-s0-nowarm", "title"] == "AAD-1 [train.dmd_warmup=false]"
    assert runs.loc["015-aad1-s0-nowarm", "train.dmd_warmup"] == "false"
    assert runs.loc["015-aad1-s0-nowarm", "warmup"] is False or runs.loc["015-aad1-s0-nowarm", "warmup"] == 0
    # paths.runs / slurm everywhere and progress=False on one seed: one arm, not named by them
    assert set(runs.loc[["000-aad1-s0", "001-aad1-s1", "002-aad1-s2"], "arm"]) == {"aad1"}
    assert df.attrs["axes"] == ["train.dmd_warmup"]
    assert tuple(runs.loc["000-aad1-s0", ["backbone", "logit", "nfe", "nfe_clip"]]) == ("bidirectional", "video", 1, 4)
    assert tuple(runs.loc["003-symmetric-s0", ["backbone", "logit", "display"]]) == ("causal", "frame", "Symmetric")
    assert runs.loc["017-teacher-s0", "nfe"] == 100 and runs.loc["017-teacher-s0", "order"] == 0


def test_mixed_backends_are_distinct_rows_and_proxies_say_so(df):
    dyn = df[(df["run"] == "000-aad1-s0") & (df["metric"] == "dynamic_degree")]
    assert sorted(dyn["backend"]) == ["dis", "raft"]
    assert set(df[(df["method"] == "dmd") & (df["metric"] == "dynamic_degree")]["backend"]) == {"raft"}
    pixel = df[(df["backend"] == "pixel")]
    assert len(pixel) and pixel["proxy_for"].str.contains("DINO").all()
    assert df[df["backend"] == "dino"]["proxy_for"].isna().all()


def test_missing_metric_is_absent_not_zero(df):
    assert df[(df["method"] == "patch") & (df["metric"] == "drift_score")].empty


def test_official_vbench_json_feeds_in(df, tmp_path):
    t = df[df["run"] == "017-teacher-s0"].set_index("metric")
    assert t.loc["imaging_quality", "value"] == pytest.approx(0.703)  # aggregate already on 0-1
    assert t.loc["dynamic_degree", "backend"] == "vbench" and t.loc["dynamic_degree", "value"] == 0.5
    assert t.loc["subject_consistency", "n_videos"] == 4
    ext = df[df["run"] == "CausVid"].set_index("metric")  # a results file with no results.json around it
    assert (
        ext.loc["temporal_flickering", "value"] == pytest.approx(0.973)
        and ext.loc["temporal_flickering", "set"] == "vbench"
    )
    # a converted ``<dim>@vbench.json`` next to the raw file wins; the raw one is not counted twice
    camp = tmp_path / "c"
    shutil.copytree(FIXTURE / "runs" / "017-teacher-s0", camp / "runs" / "t")
    conv = {"metric": "imaging_quality", "backend": "vbench", "aggregate": 0.5, "direction": "up"}
    (camp / "runs" / "t" / "eval" / "train_len" / "imaging_quality@vbench.json").write_text(json.dumps(conv))
    iq = collect(camp).query("metric == 'imaging_quality'")
    assert len(iq) == 1 and iq["value"].iloc[0] == 0.5
    pv = collect_per_video(df[df["run"] == "017-teacher-s0"], "imaging_quality")
    assert pv["value"].between(0, 1).all() and len(pv) == 4  # per-video MUSIQ 0-100 rescaled


def test_reported_numbers(df):
    rep = df[df["run"] == "self_forcing-paper"].set_index("metric")
    assert (
        rep.loc["dynamic_degree", "value"] == pytest.approx(0.3493)
        and rep.loc["dynamic_degree", "version"] == "reported"
    )
    assert set(rep["backend"]) == {"vbench"} and set(rep["set"]) == {"train_len"}


def test_parse_overrides():
    assert parse_overrides(["method=aad1", "+a.b=3", "~c=", "junk"]) == {"method": "aad1", "a.b": "3", "c": ""}


def test_torn_and_wrong_shaped_index_lines_are_skipped_and_reported(df):
    problems = []
    rows = read_index(FIXTURE, problems)
    assert len(rows) == 19 and len(problems) == 1
    assert "3 line(s) skipped" in problems[0].problem and "4 (torn)" in problems[0].problem
    assert "run_dir is 5, not a path" in problems[0].problem
    assert df.attrs["problems"][0]["path"].endswith("index.jsonl")


@pytest.mark.parametrize(
    "content,why",
    [
        ("[1, 2]", "expected an object, got a JSON list"),
        ("null", "expected an object, got a JSON NoneType"),
        ('{"status": "finished", "run_dir": 5}', "'run_dir' should be a str"),
        ('{"status": "finished", "summary": 5}', "'summary' should be a dict"),
        ("{not json", "malformed JSON"),
    ],
)
def test_wrong_shaped_results_json_is_a_malformed_run(tmp_path, content, why):
    camp = tmp_path / "c"
    shutil.copytree(FIXTURE / "runs" / "000-aad1-s0", camp / "runs" / "r1")
    shutil.copytree(FIXTURE / "runs" / "001-aad1-s1", camp / "runs" / "r2")
    (camp / "runs" / "r2" / "results.json").write_text(content)
    d = collect(camp)
    runs = d.drop_duplicates("run_dir").set_index("run")
    assert runs.loc["r2", "status"] == "malformed" and why in runs.loc["r2", "reason"]
    assert "r2" in runs.loc["r2", "reason"]  # the reason names the file
    assert runs.loc["000-aad1-s0", "status"] == "finished"  # the rest goes on
    assert any(p["path"].endswith("r2/results.json") for p in d.attrs["problems"])


@pytest.mark.parametrize(
    "name,content,why",
    [
        ("aesthetic_quality@laion.json", "[]", "expected a metric result object"),
        ("aesthetic_quality@laion.json", "[", "malformed JSON"),
        ("aesthetic_quality@laion.json", '{"aggregate": 0.5, "curves": "x"}', "'curves' should be an object"),
        ("aesthetic_quality@laion.json", '{"aggregate": "high"}', "'aggregate' should be a number"),
        ("x_eval_results.json", '{"temporal_flickering": 0.9}', "is not [aggregate"),
        ("x_eval_results.json", "[]", "expected an object mapping"),
    ],
)
def test_wrong_shaped_eval_files_are_recorded(tmp_path, name, content, why):
    camp = tmp_path / "c"
    shutil.copytree(FIXTURE / "runs" / "000-aad1-s0", camp / "runs" / "r1")
    (camp / "runs" / "r1" / "eval" / "train_len" / name).write_text(content)
    d = collect(camp)
    assert any(why in p["problem"] and p["path"].endswith(name) for p in d.attrs["problems"]), d.attrs["problems"]
    assert (d["metric"] == "dynamic_degree").any()  # the other files still count
    bad = d[(d["metric"] == "aesthetic_quality")]
    if name.startswith("aesthetic"):
        assert len(bad) == 1 and math.isnan(bad["value"].iloc[0])


def test_single_run_and_results_folder(tmp_path):
    assert len(find_runs(FIXTURE / "runs" / "000-aad1-s0")) == 1
    assert find_runs(FIXTURE / "runs" / "CausVid") == [(str(FIXTURE / "runs" / "CausVid"), None)]


def test_method_info_falls_back_to_config_yaml(tmp_path):
    run = tmp_path / "c" / "runs" / "r"
    shutil.copytree(FIXTURE / "runs" / "000-aad1-s0", run)
    res = json.loads((run / "results.json").read_text())
    del res["method_info"], res["warmup"], res["stages"]
    res["method"] = "foo"
    (run / "results.json").write_text(json.dumps(res))
    (run / "config.yaml").write_text(
        "method:\n  name: foo\n  display: Foo\n  order: 70\n  stages: [ode, gan]\n"
        "  gan:\n    disc: {backbone: causal, head: patch}\nseed: 0\n"
    )
    info = collect(tmp_path / "c").drop_duplicates("run_dir").iloc[0]
    assert (info["display"], info["order"], info["backbone"], info["logit"]) == ("Foo", 70, "causal", "patch")
    assert info["warmup"] == False  # noqa: E712 — a GAN method without a dmd stage has no warm-up

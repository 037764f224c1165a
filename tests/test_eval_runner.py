"""`aad-bench eval` / `diagnose` end to end on small synthetic sets: contract, errors, skipping."""

from __future__ import annotations

import pandas as pd
import pytest

from aad_bench.evaluation.calibration import pan_video
from aad_bench.evaluation.cli import diagnose_main, eval_main
from aad_bench.evaluation.runner import evaluate_path
from aad_bench.registry import UnknownNameError
from aad_bench.utils.io import MalformedFileError, read_json
from aad_bench.video.io import write_mp4
from aad_bench.video.sets import VideoSetWriter

FAST = "dynamic_degree,temporal_flickering,subject_consistency,i2v_subject,imaging_quality,drift_score"


@pytest.fixture
def run(tmp_path):
    w = VideoSetWriter(tmp_path / "run" / "videos" / "train_len", fps=8, meta={"method": "test"})
    for i, (speed, freeze) in enumerate([(0.0, None), (4.0, None), (4.0, 2)]):
        v = pan_video(speed, 13, (96, 96), freeze_at=freeze, seed=i)
        w.add(f"toy_{i:03d}-0.mp4", v, {"seed": i}, image=v[0])
    good = tmp_path / "run" / "videos" / "train_len" / "toy_000-0.mp4"
    bad = good.with_name("toy_009-0.mp4")
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # truncated mp4
    return tmp_path / "run"


def test_eval_writes_contract_and_records_corrupt_video(run, capsys):
    assert eval_main([str(run), "--metrics", FAST]) == 1  # one video failed
    out = capsys.readouterr()
    assert "wrote" in out.out and "toy_009-0.mp4" in out.err
    res = read_json(run / "eval" / "train_len" / "dynamic_degree@dis.json")
    assert {
        "metric",
        "version",
        "backend",
        "direction",
        "video_set",
        "n_videos",
        "aggregate",
        "per_video",
    } <= set(res)
    assert res["backend"] == "dis" and res["direction"] == "up" and res["n_videos"] == 3
    assert "RAFT" in res["proxy_for"] and "proxy for RAFT" in out.out  # a stand-in says so
    assert res["per_video"] == {"toy_000-0.mp4": 0.0, "toy_001-0.mp4": 1.0, "toy_002-0.mp4": 0.0}
    assert res["aggregate"] == pytest.approx(1 / 3)
    assert "toy_009-0.mp4" in res["errors"] and "toy_009-0.mp4" in res["errors"]["toy_009-0.mp4"]
    assert (run / "eval" / "train_len" / "temporal_flickering@native.json").is_file()
    assert (run / "eval" / "train_len" / "imaging_quality@sharpness.json").is_file()
    drift = read_json(run / "eval" / "train_len" / "drift_score@sharpness-mc.json")
    assert "MUSIQ" in drift["proxy_for"] and drift["curves"]["y_label"].startswith("per-segment imaging quality")


def test_rerun_skips_finished_and_force_recomputes(run, capsys):
    evaluate_path(run, ["temporal_flickering"])
    capsys.readouterr()
    written, _ = evaluate_path(run, ["temporal_flickering"])
    assert written == [] and "skip" in capsys.readouterr().out
    written, _ = evaluate_path(run, ["temporal_flickering"], force=True)
    assert len(written) == 1


def test_backend_is_part_of_the_file_name(run):
    evaluate_path(run, ["dynamic_degree"], {"flow": "dis-ultrafast"})
    evaluate_path(run, ["dynamic_degree"])
    names = sorted(p.name for p in (run / "eval" / "train_len").glob("dynamic_degree@*.json"))
    assert names == ["dynamic_degree@dis-ultrafast.json", "dynamic_degree@dis.json"]


def test_folder_of_runs_and_bare_folder(tmp_path):
    for r in ("a", "b"):
        write_mp4(tmp_path / "campaign" / r / "videos" / "long" / "x-0.mp4", pan_video(2.0, 9, (64, 64)), 8)
    written, n_err = evaluate_path(tmp_path / "campaign", ["temporal_flickering"])
    assert n_err == 0 and {p.parent.parent.parent.name for p in written} == {"a", "b"}
    bare = tmp_path / "bare"
    write_mp4(bare / "clip-0.mp4", pan_video(1.0, 9, (64, 64)), 8)
    written, _ = evaluate_path(bare, ["temporal_flickering"])
    assert written == [bare / "eval" / "bare" / "temporal_flickering@native.json"]


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        evaluate_path(tmp_path / "empty")
    (tmp_path / "run" / "videos" / "train_len").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no video sets"):
        evaluate_path(tmp_path / "run")


def test_malformed_index_is_a_clear_error(tmp_path):
    d = tmp_path / "set"
    write_mp4(d / "x-0.mp4", pan_video(1.0, 5, (32, 32)), 8)
    (d / "index.json").write_text("{not json")
    with pytest.raises(MalformedFileError, match="index.json"):
        evaluate_path(d, ["temporal_flickering"])


def test_unknown_metric_and_backend(run):
    with pytest.raises(UnknownNameError, match="dynamic_degree"):
        evaluate_path(run, ["dynamic_degre"])
    with pytest.raises(UnknownNameError, match="pixel"):
        evaluate_path(run, ["subject_consistency"], {"features": "pixle"})


def test_missing_weights_are_a_clear_error(run, monkeypatch, tmp_path):
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="--features pixel"):
        evaluate_path(run, ["subject_consistency"], {"features": "dino"})
    with pytest.raises(FileNotFoundError, match="AAD_MUSIQ_WEIGHTS"):
        evaluate_path(run, ["imaging_quality"], {"quality": "musiq"})


def test_diagnose_run_folder(run, capsys):
    assert diagnose_main([str(run)]) == 1  # the truncated mp4 could not be read
    df = pd.read_csv(run / "diagnosis.csv", keep_default_na=False, dtype=str)
    assert {"video", "error", "dynamic_degree", "freeze_frame", "collapsed", "reasons"} <= set(df.columns)
    rows = df.set_index("video")
    assert rows.loc["toy_000-0.mp4", "freeze_frame"] == "0" and rows.loc["toy_000-0.mp4", "copy_of_first"] == "True"
    assert rows.loc["toy_001-0.mp4", "freeze_frame"] == "" and rows.loc["toy_001-0.mp4", "collapsed"] == "False"
    assert rows.loc["toy_002-0.mp4", "freeze_frame"] == "2" and rows.loc["toy_002-0.mp4", "collapsed"] == "True"
    assert "toy_009-0.mp4" in rows.loc["toy_009-0.mp4", "error"]  # the unreadable file is a row with its error
    for f in ("verdict.md", "motion_over_time.png", "chunk_motion.png", "contact_sheet.png", "curves.json"):
        assert (run / "diagnosis" / f).is_file(), f
    out = capsys.readouterr()
    assert "2 of 3 videos" in out.out and "toy_009-0.mp4" in out.out and "toy_009-0.mp4" in out.err


def test_missing_indexed_video_is_an_error_row_and_eval_goes_on(tmp_path, capsys):
    runs = []
    for r in ("a", "b"):
        w = VideoSetWriter(tmp_path / "c" / r / "videos" / "train_len", fps=8)
        for i in range(2):
            w.add(f"x_{i}-0.mp4", pan_video(2.0, 9, (64, 64), seed=i), {"seed": i})
        runs.append(tmp_path / "c" / r)
    (runs[0] / "videos" / "train_len" / "x_0-0.mp4").unlink()  # indexed, but gone
    assert eval_main([str(tmp_path / "c"), "--metrics", "temporal_flickering,imaging_quality"]) == 1
    for run in runs:  # later metrics and later runs were still scored
        for m in ("temporal_flickering@native", "imaging_quality@sharpness"):
            res = read_json(run / "eval" / "train_len" / f"{m}.json")
            assert res["n_videos"] == (1 if run == runs[0] else 2)
    err = read_json(runs[0] / "eval" / "train_len" / "imaging_quality@sharpness.json")["errors"]
    assert "x_0-0.mp4" in err["x_0-0.mp4"] and "no such video file" in err["x_0-0.mp4"]


def test_wrong_shaped_old_result_is_recomputed(run, capsys):
    out = run / "eval" / "train_len" / "temporal_flickering@native.json"
    out.parent.mkdir(parents=True)
    out.write_text("[]")
    written, _ = evaluate_path(run, ["temporal_flickering"])
    assert written == [out] and isinstance(read_json(out), dict)
    assert "not a metric result object" in capsys.readouterr().err


def test_too_few_frames_is_a_recorded_error_naming_the_file(tmp_path):
    d = tmp_path / "set"
    write_mp4(d / "short-0.mp4", pan_video(8.0, 2, (64, 64)), 8)  # 2 frames: no dynamic verdict, no smoothness
    write_mp4(d / "ok-0.mp4", pan_video(8.0, 9, (64, 64)), 8)
    _, n_err = evaluate_path(d, ["dynamic_degree", "motion_smoothness"])
    assert n_err == 2
    for m in ("dynamic_degree@dis", "motion_smoothness@dis"):
        res = read_json(d / "eval" / "set" / f"{m}.json")
        assert set(res["per_video"]) == {"ok-0.mp4"} and "short-0.mp4" in res["errors"]["short-0.mp4"]
    assert "no verdict" in read_json(d / "eval" / "set" / "dynamic_degree@dis.json")["errors"]["short-0.mp4"]


def test_cli_option_errors_are_one_clear_line(run, capsys):
    assert eval_main([str(run), "--backend", "subject_consistncy=dino"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'subject_consistency'" in err and err.count("\n") == 1
    assert eval_main([str(run), "--backend", "flow=rafft"]) == 2
    assert "Did you mean 'raft'" in capsys.readouterr().err
    for argv, msg in (
        (["--n-segments", "0"], "--n-segments must be >= 2, got 0"),
        (["--segment-s", "-1"], "--segment-s must be > 0, got -1"),
    ):
        with pytest.raises(SystemExit) as e:
            eval_main([str(run), *argv])
        assert e.value.code == 2 and msg in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        diagnose_main([str(run), "--chunk", "-2"])
    assert e.value.code == 2 and "--chunk must be >= 1, got -2" in capsys.readouterr().err

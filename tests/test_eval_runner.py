"""`aad-bench eval` / `diagnose` end to end on small synthetic sets: contract, errors, skipping."""

from __future__ import annotations

import numpy as np
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


def _gt(speed: float, n: int = 13, angle: float = 37.0):
    # pan_video shifts the content by -speed·(cos, sin) per frame; an object at the centre follows it
    dx, dy = -speed * np.cos(np.radians(angle)), -speed * np.sin(np.radians(angle))
    return {"positions": [[[48 + dx * t, 48 + dy * t]] for t in range(n)], "speed": speed}


@pytest.fixture
def run(tmp_path):
    w = VideoSetWriter(tmp_path / "run" / "videos" / "train_len", fps=8, meta={"method": "test"})
    for i, (speed, freeze) in enumerate([(0.0, None), (4.0, None), (4.0, 2)]):
        v = pan_video(speed, 13, (96, 96), freeze_at=freeze, seed=i)
        w.add(f"toy_{i:03d}-0.mp4", v, {"seed": i, "gt": _gt(4.0)}, image=v[0])
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
    assert res["per_video"] == {"toy_000-0.mp4": 0.0, "toy_001-0.mp4": 1.0, "toy_002-0.mp4": 0.0}
    assert res["aggregate"] == pytest.approx(1 / 3)
    assert "toy_009-0.mp4" in res["errors"] and "toy_009-0.mp4" in res["errors"]["toy_009-0.mp4"]
    assert (run / "eval" / "train_len" / "temporal_flickering@native.json").is_file()
    assert (run / "eval" / "train_len" / "imaging_quality@sharpness.json").is_file()


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


def test_toy_metrics_use_gt(run):
    evaluate_path(run, ["toy_speed_ratio", "toy_static_share", "toy_trajectory_error"])
    d = run / "eval" / "train_len"
    ratio = read_json(d / "toy_speed_ratio@dis.json")["per_video"]
    assert ratio["toy_001-0.mp4"] == pytest.approx(1.0, abs=0.1)
    assert ratio["toy_000-0.mp4"] == pytest.approx(0.0, abs=0.05)
    assert ratio["toy_002-0.mp4"] == pytest.approx(2 / 12, abs=0.1)  # 2 of 12 pairs move
    assert read_json(d / "toy_static_share@dis.json")["aggregate"] == pytest.approx(1 / 3)
    err = read_json(d / "toy_trajectory_error@dis.json")["per_video"]
    assert err["toy_001-0.mp4"] < 0.02 < err["toy_000-0.mp4"]
    assert read_json(d / "toy_speed_ratio@dis.json")["direction"] is None


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
    assert diagnose_main([str(run)]) == 0
    df = pd.read_csv(run / "diagnosis.csv")
    assert {"video", "dynamic_degree", "freeze_frame", "collapsed"} <= set(df.columns)
    rows = df.set_index("video")
    assert rows.loc["toy_000-0.mp4", "freeze_frame"] == 0 and bool(rows.loc["toy_000-0.mp4", "copy_of_first"])
    assert np.isnan(rows.loc["toy_001-0.mp4", "freeze_frame"]) and not rows.loc["toy_001-0.mp4", "collapsed"]
    assert rows.loc["toy_002-0.mp4", "freeze_frame"] == 2 and rows.loc["toy_002-0.mp4", "collapsed"]
    for f in ("verdict.md", "motion_over_time.png", "chunk_motion.png", "contact_sheet.png", "curves.json"):
        assert (run / "diagnosis" / f).is_file(), f
    text = capsys.readouterr().out
    assert "2 of 3 videos" in text and "toy_009-0.mp4" in text

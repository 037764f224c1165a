"""VBench adapter: parsing official *_eval_results.json fixtures, composite scores, missing-install errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from aad_bench.evaluation import vbench_adapter as va
from aad_bench.utils.io import MalformedFileError, read_json

FIX = Path(__file__).parent / "fixtures" / "vbench"


def test_parse_full_results():
    r = va.parse_eval_results(FIX / "full_eval_results.json")
    assert len(r) == 16
    assert r["dynamic_degree"]["per_video"] == {"a cat-0.mp4": 1.0, "a cat-1.mp4": 0.0}
    assert r["imaging_quality"]["per_video"]["a cat-1.mp4"] == pytest.approx(0.70)  # 0-100 in the file
    assert r["subject_consistency"]["aggregate"] == 0.95


def test_parse_camera_motion_three_elements():
    r = va.parse_eval_results(FIX / "i2v_eval_results.json")
    assert r["camera_motion"]["aggregate"] == 0.4
    assert r["camera_motion"]["extra"] == {"pan_left": 0.5, "zoom_in": 0.3}


def test_malformed_results_name_the_file():
    with pytest.raises(MalformedFileError, match="malformed_eval_results.json"):
        va.parse_eval_results(FIX / "malformed_eval_results.json")


def test_wrong_shape_is_a_clear_error(tmp_path):
    p = tmp_path / "x_eval_results.json"
    p.write_text('{"temporal_flickering": 0.9}')
    with pytest.raises(MalformedFileError, match="temporal_flickering"):
        va.parse_eval_results(p)


def test_total_quality_semantic_worked_example():
    agg = {d: r["aggregate"] for d, r in va.parse_eval_results(FIX / "full_eval_results.json").items()}
    s = va.vbench_scores(agg)
    # by hand: (x - min)/(max - min), dynamic weighted 0.5, quality / 6.5, semantic / 9
    q = (0.8038 / 0.8538 + 0.6985 / 0.7385 + 0.3407 / 0.3707 + 0.274 / 0.2915 + 0.25 + 0.6 + 0.65) / 6.5
    sem = (0.9 + 0.5 + 0.95 + 0.85 + 0.7 + 0.5 / 0.8222 + 0.2191 / 0.2846 + 0.24 / 0.364 + 0.27 / 0.364) / 9
    assert s["quality"] == pytest.approx(q) == pytest.approx(0.807125, abs=1e-6)
    assert s["semantic"] == pytest.approx(sem) == pytest.approx(0.742120, abs=1e-6)
    assert s["total"] == pytest.approx((4 * q + sem) / 5) == pytest.approx(0.794124, abs=1e-6)
    assert s["missing"] == []


def test_i2v_total_worked_example():
    agg = {d: r["aggregate"] for d, r in va.parse_eval_results(FIX / "i2v_eval_results.json").items()}
    s = va.i2v_scores(agg)
    i2v = (0.1 * 0.4 + 0.8238 / 0.8538 + 0.7185 / 0.7385) / 2.1
    qual = (0.8038 / 0.8538 + 0.6985 / 0.7385 + 0.274 / 0.2915 + 0.25 + 0.6 + 0.65) / 5.5  # no flicker
    assert s["i2v"] == pytest.approx(i2v) == pytest.approx(0.941800, abs=1e-6)
    assert s["quality"] == pytest.approx(qual) == pytest.approx(0.786771, abs=1e-6)
    assert s["total"] == pytest.approx(0.864286, abs=1e-6)


def test_partial_dims_give_none_and_list_missing():
    s = va.vbench_scores({"temporal_flickering": 0.99})
    assert s["total"] is None and s["quality"] is None and "dynamic_degree" in s["missing"]


def test_write_results_contract(tmp_path):
    parsed = va.parse_eval_results(FIX / "temporal_flickering_eval_results.json")
    files = va.write_results(parsed, tmp_path, "train_len")
    res = read_json(tmp_path / "temporal_flickering@vbench.json")
    assert res["backend"] == "vbench" and res["direction"] == "up" and res["aggregate"] == 0.99607
    assert set(res["per_video"]) == {"a static scene-0.mp4", "a static scene-1.mp4"}
    assert tmp_path / "vbench_scores.json" in files


def test_missing_env_lists_problems(tmp_path, monkeypatch):
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path))
    with pytest.raises(va.VBenchUnavailable) as e:
        va.check_available(["dynamic_degree", "imaging_quality"], python=str(tmp_path / "nope" / "python"))
    msg = str(e.value)
    assert "does not exist" in msg and "raft-things.pth" in msg and "musiq_spaq" in msg


@pytest.mark.skipif(importlib.util.find_spec("vbench") is not None, reason="vbench is installed here")
def test_missing_package_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path))
    with pytest.raises(va.VBenchUnavailable, match="'vbench' is not importable"):
        va.check_available(["temporal_flickering"])


@pytest.mark.slow
def test_real_vbench_temporal_flickering_matches_native(tmp_path):
    pytest.importorskip("vbench", reason="official VBench not importable")
    from aad_bench.evaluation.calibration import pan_video
    from aad_bench.evaluation.consistency import flicker_score
    from aad_bench.video.io import read_video, write_mp4

    vids = tmp_path / "videos"
    for i, speed in enumerate([0.0, 2.0]):
        write_mp4(
            vids / f"a static scene-{i}.mp4", pan_video(speed, 16, (64, 64), seed=i), 8, pix_fmt="yuv420p"
        )
    out = va.evaluate_official(vids, tmp_path / "eval", ["temporal_flickering"])
    res = read_json(tmp_path / "eval" / "temporal_flickering@vbench.json")
    native = [flicker_score(read_video(p)[0]) for p in sorted(vids.glob("*.mp4"))]
    assert res["aggregate"] == pytest.approx(np.mean(native), abs=1e-4)
    assert any(p.name == "vbench_scores.json" for p in out)

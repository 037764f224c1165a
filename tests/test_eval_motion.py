"""dynamic_degree on synthetic pans of known speed, DIS calibration, freeze detection, flow backends."""

from __future__ import annotations

import numpy as np
import pytest

from aad_bench.evaluation.calibration import calibrate, pan_video
from aad_bench.evaluation.flow import get_flow
from aad_bench.evaluation.motion import (
    dynamic_degree_frames,
    freeze_frame,
    is_dynamic,
    motion_profile,
    vbench_count,
    vbench_threshold,
)
from aad_bench.registry import UnknownNameError


def test_rule_constants():
    assert vbench_threshold(256, 256) == 6.0 and vbench_threshold(480, 854) == pytest.approx(11.25)
    assert vbench_count(16) == 4 and vbench_count(17) == 4 and vbench_count(10) == 2  # round(2.5) = 2
    scores = np.array([7, 7, 7, 5, 5, 5])
    assert is_dynamic(scores, 256, 256, 12) is True  # need round(3) = 3 pairs > 6 px
    assert is_dynamic(scores, 256, 256, 16) is False  # need 4


@pytest.mark.parametrize(
    "speed,dynamic", [(0.0, False), (0.5, False), (12.0, True), (5.0, False), (7.0, True)]
)
def test_dynamic_degree_on_pans(speed, dynamic):
    frames = pan_video(speed * 0.5, 16, (128, 128))  # threshold at 128 px is 3 px: speeds are given at 256 px
    dyn, scores = dynamic_degree_frames(frames)
    assert dyn is dynamic, scores


def test_near_threshold_counts_pairs():
    # 16 frames pan at 7 px (just above 6) for n_fast pairs, then freeze: the rule needs round(4·16/16) = 4
    def video(n_fast):
        fast = pan_video(7.0, n_fast + 1, (256, 256), seed=2)
        return np.concatenate([fast, np.repeat(fast[-1:], 15 - n_fast, 0)])

    assert dynamic_degree_frames(video(3))[0] is False
    assert dynamic_degree_frames(video(4))[0] is True


def test_dis_calibration_error_near_threshold():
    rows = calibrate("dis", speeds=(4, 6, 8), size=(256, 256))
    for r in rows:
        assert abs(r["rel_error"]) < 0.05, r


@pytest.mark.parametrize("k", [0, 5, 9])
def test_freeze_found_at_k(k):
    prof = motion_profile(pan_video(3.0, 16, (96, 96), freeze_at=k))
    assert prof.freeze_frame == k


def test_no_freeze_when_moving_to_the_end():
    assert motion_profile(pan_video(3.0, 12, (96, 96))).freeze_frame is None
    assert freeze_frame(np.array([5, 5, 5, 0.1]), 0.5) is None  # one still pair is not a freeze
    assert freeze_frame(np.array([5, 5, 0.1, 0.1]), 0.5) == 2


def test_unknown_flow_backend_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'dis'"):
        get_flow("diss")


def test_raft_without_weights_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("AAD_RAFT_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match="AAD_RAFT_WEIGHTS"):
        get_flow("raft")
    monkeypatch.setenv("AAD_RAFT_WEIGHTS", str(tmp_path / "raft.pth"))
    with pytest.raises(FileNotFoundError, match="raft.pth"):
        get_flow("raft")

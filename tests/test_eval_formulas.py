"""VBench formulas against hand computations: flickering, consistency, i2v, smoothness, quality, drift."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from aad_bench.evaluation import consistency as C
from aad_bench.evaluation import drift as D
from aad_bench.evaluation import interp as I
from aad_bench.evaluation.calibration import texture
from aad_bench.evaluation.features import PixelFeatures, preprocess
from aad_bench.evaluation.quality import SharpnessQuality, noise_sigma


def _const(v, n=1, size=8):
    return np.full((n, size, size, 3), v, np.uint8)


def test_temporal_flickering_by_hand():
    frames = np.concatenate([_const(10), _const(14), _const(12)])  # diffs 4 and 2 → MAE 3
    assert C.flicker_mae(frames) == pytest.approx(3.0)
    assert C.flicker_score(frames) == pytest.approx((255 - 3) / 255)
    assert C.flicker_score(_const(7, 5)) == 1.0


def test_consistency_terms_by_hand():
    f = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    # i=1: prev cos .6, first cos .6 → .6; i=2: prev .8, first 0 → .4; i=3: prev 0 (clipped), first -1→0 → 0
    np.testing.assert_allclose(C.consistency_terms(f), [0.6, 0.4, 0.0])


def test_i2v_score_by_hand():
    img = np.array([1.0, 0.0])
    f = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0]])
    # conformity c = [.6, 1, 0]; consecutive s = [.6, 0]
    assert C.i2v_video_score(img, f) == pytest.approx(0.4 * 1.0 + 0.3 * 0.3 + 0.3 * 0.0)


def test_frame_weighted_aggregate():
    from aad_bench.evaluation.metrics import VideoScore as S
    from aad_bench.evaluation.metrics import get_metric

    m = get_metric("subject_consistency")
    assert m.reduce([S(1.0, weight=3), S(0.5, weight=1)]) == pytest.approx((3 * 1.0 + 0.5) / 4)


def test_motion_smoothness_blend_by_hand():
    # linear brightness ramp: the plain average interpolates odd frames exactly
    frames = np.concatenate([_const(10 * t) for t in range(7)])
    assert C.smoothness_score(frames, I.blend_interp) == 1.0
    frames[3] = 60  # odd frame 3 off by 30 from (20+40)/2; odds 1,3,5 → mean diff 10
    assert C.smoothness_score(frames, I.blend_interp) == pytest.approx((255 - 10) / 255)


def test_dis_interpolator_beats_blend_on_a_pan():
    from aad_bench.evaluation.calibration import pan_video

    v = pan_video(4.0, 9, (96, 96))
    assert C.smoothness_score(v, I.dis_interp) > C.smoothness_score(v, I.blend_interp) + 0.01


def test_pixel_features_identical_and_shifted():
    v = np.stack(
        [texture(64, 64, 0), texture(64, 64, 0), np.roll(texture(64, 64, 0), 3, 1), texture(64, 64, 5)]
    )
    f = PixelFeatures().embed(v, "subject")
    sims = f @ f[0]
    assert sims[1] == pytest.approx(1.0) and 0.3 < sims[2] < 0.99 and sims[3] < sims[2]


@pytest.mark.parametrize(
    "mode,shape",
    [
        ("subject", (3, 224, 398)),
        ("background", (3, 224, 224)),
        ("i2v_subject", (3, 224, 224)),
        ("i2v_background", (3, 224, 224)),
    ],
)
def test_vbench_preprocessing_shapes(mode, shape):
    assert preprocess(np.zeros((270, 480, 3), np.uint8), mode).shape == shape


def test_quality_fallback_falls_with_blur_and_noise():
    q, img = SharpnessQuality(), texture(128, 128, 3)
    blur = [q.frame_score(cv2.GaussianBlur(img, (0, 0), s) if s else img) for s in (0, 1, 2, 4)]
    rng = np.random.default_rng(0)
    noisy = [
        q.frame_score(np.clip(img + rng.normal(0, s, img.shape), 0, 255).astype(np.uint8)) for s in (0, 5, 15)
    ]
    assert all(a > b for a, b in zip(blur, blur[1:])), blur
    assert all(a > b for a, b in zip(noisy, noisy[1:])), noisy


def test_noise_sigma_estimate():
    rng = np.random.default_rng(1)
    grey = np.clip(128 + rng.normal(0, 10, (128, 128)), 0, 255).astype(np.uint8)
    assert noise_sigma(grey) == pytest.approx(10, rel=0.15)


def test_drift_by_hand():
    q = np.array([80, 80, 70, 70, 60, 60], float)
    b = D.segment_bounds(6, 3)
    seg = D.segment_means(q, b)
    np.testing.assert_allclose(seg, [80, 70, 60])
    assert D.drift_score(seg) == pytest.approx(np.sqrt(200 / 3))
    assert D.delta_drift(seg) == 20
    assert D.segment_bounds(9, seg_frames=4) == [(0, 4), (4, 9)]  # short tail joins the last segment

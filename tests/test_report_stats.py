"""Statistics against scipy; VBench aggregates against the official formula by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st

from aad_bench.evaluation import vbench_scores as vs
from aad_bench.reporting.collect import collect
from aad_bench.reporting.stats import add_vbench_aggregates, aggregate, paired_compare, t_ci

FIXTURE = Path(__file__).parent / "fixtures" / "runs" / "demo"


@pytest.fixture(scope="module")
def df():
    return collect(FIXTURE)


def test_t_ci_matches_scipy():
    x = np.array([0.41, 0.43, 0.40, 0.47, 0.44])
    mean, sd, n, half = t_ci(x)
    lo, hi = st.t.interval(0.95, n - 1, loc=x.mean(), scale=st.sem(x))
    assert (mean, n) == (pytest.approx(x.mean()), 5) and sd == pytest.approx(x.std(ddof=1))
    assert (mean - half, mean + half) == (pytest.approx(lo), pytest.approx(hi))
    assert math.isnan(t_ci([1.0])[3]) and t_ci([])[2] == 0


def test_aggregate_uses_finished_runs_and_matches_scipy(df):
    agg = aggregate(df)
    row = agg[
        (agg["arm"] == "symmetric") & (agg["metric"] == "dynamic_degree") & (agg["backend"] == "dis")
    ].iloc[0]
    vals = df[(df["arm"] == "symmetric") & (df["metric"] == "dynamic_degree") & (df["status"] == "finished")]
    x = vals["value"].to_numpy()
    assert row["n"] == 2 and row["n_diverged"] == 1 and row["n_runs"] == 3
    lo, hi = st.t.interval(0.95, 1, loc=x.mean(), scale=st.sem(x))
    assert (row["ci_lo"], row["ci_hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert row["direction"] == "up"


def test_paired_on_seeds_matches_ttest_rel(df):
    res = paired_compare(df, "aad1", "dynamic_degree", "dis", "train_len").set_index("arm")
    sel = df[(df["metric"] == "dynamic_degree") & (df["backend"] == "dis")]
    a = sel[sel["arm"] == "causal_video"].set_index("seed")["value"]
    r = sel[sel["arm"] == "aad1"].set_index("seed")["value"].loc[a.index]
    ref = st.ttest_rel(a, r)
    row = res.loc["causal_video"]
    assert (
        row["n_pairs"] == 2
        and row["p"] == pytest.approx(ref.pvalue)
        and row["t"] == pytest.approx(ref.statistic)
    )
    d = (a - r).to_numpy()
    assert row["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert res.loc["symmetric", "n_pairs"] == 2  # the diverged seed has no pair


def test_paired_on_videos(df):
    res = paired_compare(df, "aad1", "dynamic_degree", "dis", "train_len", on="video").set_index("arm")
    assert res.loc["patch", "n_pairs"] == 4 and res.loc["patch", "p"] < 0.01


def test_vbench_formulas_by_hand():
    s = {
        "subject_consistency": 0.94,
        "background_consistency": 0.95,
        "motion_smoothness": 0.98,
        "dynamic_degree": 0.41,
        "aesthetic_quality": 0.60,
        "imaging_quality": 0.71,
        "i2v_subject": 0.98,
        "i2v_background": 0.97,
        "camera_motion": 0.3,
        "temporal_flickering": 0.97,
    }
    n = {k: (v - vs.NORMALIZE[k][0]) / (vs.NORMALIZE[k][1] - vs.NORMALIZE[k][0]) for k, v in s.items()}
    q = (
        n["subject_consistency"]
        + n["background_consistency"]
        + n["motion_smoothness"]
        + 0.5 * n["dynamic_degree"]
        + n["aesthetic_quality"]
        + n["imaging_quality"]
    ) / 5.5
    i2v = (0.1 * n["camera_motion"] + n["i2v_subject"] + n["i2v_background"]) / 2.1
    assert vs.i2v_quality_score(s) == pytest.approx(q)
    assert vs.i2v_score(s) == pytest.approx(i2v)
    assert vs.i2v_total_score(s) == pytest.approx((q + i2v) / 2)
    assert vs.quality_score(s) == pytest.approx((q * 5.5 + n["temporal_flickering"]) / 6.5)
    assert math.isnan(vs.i2v_score({"i2v_subject": 0.9}))


def test_vbench_aggregates_per_backend(df):
    out = add_vbench_aggregates(df)
    q = out[(out["metric"] == "vbench_i2v_quality") & (out["run"] == "000-aad1-s0")]
    assert len(q) == 1  # one composite per run and set: each dim from one backend
    backends = q["backend"].iloc[0].split("+")
    assert "raft" in backends and "dis" not in backends  # the real model before the DIS stand-in, never both
    assert "dino" in backends and "pixel" not in backends
    assert q["proxy_for"].isna().all()
    assert out[out["metric"] == "vbench_i2v"].empty  # no camera_motion measured: no official I2V score
    official = out[(out["run"] == "017-teacher-s0") & (out["metric"] == "vbench_i2v_quality")]
    assert official["backend"].tolist() == ["vbench"]  # official dims give their own composite
    value = official["value"].iloc[0]
    t = df[df["run"] == "017-teacher-s0"].set_index("metric")["value"]
    assert value == pytest.approx(vs.i2v_quality_score(t.to_dict()))

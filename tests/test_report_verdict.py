"""The report's one-paragraph verdict on the paper's ordering follows the numbers, whichever way they go."""

from __future__ import annotations

from pathlib import Path

import pytest

from aad_bench.reporting.collect import collect
from aad_bench.reporting.report import write_report
from aad_bench.reporting.stats import aggregate
from aad_bench.reporting.verdict import ordering_verdict

FIXTURE = Path(__file__).parent / "fixtures" / "runs" / "demo"


@pytest.fixture(scope="module")
def df():
    return collect(FIXTURE)


def _verdict(df):
    return ordering_verdict(df, aggregate(df))


def test_collapse_of_causal_frame_with_drift_unscored_partly_holds(df):
    text = _verdict(df)  # symmetric 0.03 vs aad1 0.48 speed ratio; the patch arm has no drift score
    assert text.startswith("The paper's ordering") and "partly holds" in text
    assert "causal × frame loses motion" in text and "p 0.0033, n 2 seeds" in text
    assert "Drift: not scored for every discriminator arm" in text


def test_no_difference_does_not_hold(df):
    d = df.copy()
    sym = (d["arm"] == "symmetric") & (d["metric"] == "toy_speed_ratio")
    d.loc[sym, "value"] = d.loc[sym, "seed"].map({0.0: 0.4841, 1.0: 0.4814})  # aad1's own values on those seeds
    text = _verdict(d[d["arm"] != "patch"])  # every discriminator arm scored for drift: symmetric lowest
    assert "does not hold" in text and "does not measurably lose motion" in text
    assert "rank 2 of 5 discriminator arms (lowest: symmetric 1.13)" in text


def test_collapse_and_lowest_drift_holds(df):
    d = df[df["arm"] != "patch"].copy()
    d.loc[(d["arm"] == "symmetric") & (d["metric"] == "drift_score"), "value"] = 9.0
    text = _verdict(d)
    assert " holds in these runs" in text and "rank 1 of 5" in text


def test_report_carries_the_verdict(tmp_path):
    write_report(FIXTURE, tmp_path, figures=False)
    md = (tmp_path / "report.md").read_text()
    assert "## The paper's ordering" in md and "partly holds" in md
    assert "partly holds" in (tmp_path / "index.html").read_text()

"""The AAD-1 paper's published numbers (Tables 1-3) as an aggregated-statistics fixture.

Fed through the same table builders as campaign data, they reproduce the paper's layouts: a check that the
table code prints what the paper prints. Values are stored on VBench's 0-1 scale (the tables show ×100);
Drift is stored as printed. Source: the AAD-1 paper (ICML 2026, arXiv 2606.03972), Tables 1-3; bold follows
the paper (best by direction).
"""

from __future__ import annotations

import math

import pandas as pd

from aad_bench.reporting.tables import MAIN_COLUMNS, Table, disc_ablation_table, main_table, warmup_table

# Table 1: method -> (NFE, Subj, Bg, Smooth, Dyn, Aes, Img, I2V-S, I2V-B) in percent
TABLE1 = {
    "Wan 2.1 I2V": (100, 93.88, 94.86, 98.14, 51.09, 64.97, 70.12, 96.80, 98.59),
    "CausVid": (4, 83.45, 89.37, 98.61, 33.80, 61.55, 70.60, 92.91, 83.34),
    "Self Forcing": (4, 91.77, 93.41, 98.55, 34.93, 60.96, 71.50, 95.79, 91.18),
    "AAD-1 Stage-II": (1, 92.14, 92.13, 98.04, 50.30, 58.64, 69.37, 96.56, 95.12),
    "AAD-1 Stage-III": (1, 94.34, 95.08, 98.22, 41.46, 60.07, 71.49, 98.65, 97.83),
}
# Table 2: warm-up -> (Aesthetic, Imaging) in percent
TABLE2 = {False: (53.63, 62.81), True: (58.64, 69.37)}
# Table 3: (backbone, logit) -> (Drift, Dynamic Degree %); None = "N/A (static)"
TABLE3 = {
    ("causal", "frame"): (None, 1.08),
    ("causal", "video"): (7.10, 42.07),
    ("bidirectional", "frame"): (4.38, 39.04),
    ("bidirectional", "video"): (4.02, 39.29),
}
SET = "vbench_i2v"


def _row(arm: str, metric: str, value: float | None, set_name: str = SET, **attrs: object) -> dict:
    missing = value is None
    return {
        "arm": arm,
        "method": arm,
        "set": set_name,
        "metric": metric,
        "backend": None,
        "mean": math.nan if missing else value,
        "ci": math.nan,
        "n": 0 if missing else 1,
        "direction": "down" if metric == "drift_score" else "up",
        "n_runs": 1,
        "n_finished": 1,
        "n_diverged": 0,
        "n_failed": 0,
        "note": "N/A (static)" if missing else None,
        "nfe": None,
        "backbone": None,
        "logit": None,
        "warmup": None,
        **attrs,
    }


def paper_aggregates() -> dict[str, pd.DataFrame]:
    """The paper's Tables 1-3 in the shape of :func:`aad_bench.reporting.stats.aggregate` output."""
    t1 = [
        _row(m, metric, v / 100, nfe=vals[0], order=i)
        for i, (m, vals) in enumerate(TABLE1.items())
        for (metric, _), v in zip(MAIN_COLUMNS, vals[1:])
    ]
    t2 = [
        _row(f"warmup={w}", metric, v / 100, method="aad1", warmup=w)
        for w, vals in TABLE2.items()
        for metric, v in zip(("aesthetic_quality", "imaging_quality"), vals)
    ]
    t3 = []
    for (bb, lg), (drift, dyn) in TABLE3.items():
        arm = f"{bb}-{lg}"
        t3.append(_row(arm, "drift_score", drift, "long", backbone=bb, logit=lg))
        t3.append(_row(arm, "dynamic_degree", dyn / 100, "train_len", backbone=bb, logit=lg))
    return {name: pd.DataFrame(rows) for name, rows in (("table1", t1), ("table2", t2), ("table3", t3))}


def paper_tables() -> dict[str, Table]:
    """Tables 1-3 of the paper rendered by the project's table code (bold = best by direction)."""
    aggs = paper_aggregates()
    return {
        "table1": main_table(aggs["table1"], [SET], bold="best"),
        "table2": warmup_table(aggs["table2"], bold="best"),
        "table3": disc_ablation_table(aggs["table3"], bold="best"),
    }

"""The official-VBench part of a report: every ingested dimension, the composite scores, what is missing.

Rows come from official ``*_eval_results.json`` files, their ``<dim>@vbench.json`` conversions and
``reported.json`` files (backend ``vbench``). VBench Quality / Semantic / Total and VBench-I2V's I2V / Quality /
Total are computed with the official constants (:mod:`aad_bench.evaluation.vbench_scores`) when every dimension
they need is present; otherwise a note names the missing dimensions per arm. The ``Source`` column says whether
the numbers were measured here ("re-evaluated") or copied from a paper ("as reported").
"""

from __future__ import annotations

import pandas as pd

from aad_bench.evaluation import vbench_scores as vs
from aad_bench.reporting.collect import VBENCH_BACKEND
from aad_bench.reporting.render import Table
from aad_bench.reporting.tables import arm_titles, build, metric_columns, order_arms

COMPOSITES = [
    ("vbench_quality", "Quality", vs.QUALITY_DIMS),
    ("vbench_semantic", "Semantic", vs.SEMANTIC_DIMS),
    ("vbench_total", "Total", vs.QUALITY_DIMS + vs.SEMANTIC_DIMS),
    ("vbench_i2v", "I2V", vs.I2V_DIMS),
    ("vbench_i2v_quality", "I2V Quality", vs.I2V_QUALITY_DIMS),
    ("vbench_i2v_total", "I2V Total", vs.I2V_QUALITY_DIMS + vs.I2V_DIMS),
]
DIM_ORDER = list(dict.fromkeys(vs.QUALITY_DIMS + vs.SEMANTIC_DIMS + vs.I2V_DIMS))


def _label(dim: str) -> str:
    return dim.replace("_", " ")


def official_sets(agg: pd.DataFrame) -> list[str]:
    """Video sets that hold official VBench numbers."""
    sel = agg[(agg["backend"] == VBENCH_BACKEND) & (agg["n"] > 0)]
    return sorted(sel["set"].dropna().unique())


def missing_notes(agg: pd.DataFrame, set_name: str) -> list[str]:
    """Per arm: the composite scores that cannot be computed and the dimensions they lack."""
    sel = agg[(agg["backend"] == VBENCH_BACKEND) & (agg["set"] == set_name) & (agg["n"] > 0)]
    titles = arm_titles(agg)
    notes = []
    for arm in order_arms(sel):
        have = set(sel.loc[sel["arm"] == arm, "metric"])
        gaps = [
            f"{label} needs {', '.join(d for d in need if d not in have)}"
            for _, label, need in COMPOSITES
            if have & set(need) and not set(need) <= have
        ]
        if gaps:
            notes.append(f"{titles[arm]}: " + "; ".join(gaps) + ".")
    return notes


def vbench_tables(agg: pd.DataFrame) -> list[Table]:
    """One table per video set with official numbers: dimensions, composite scores, source, gaps."""
    tables = []
    for set_name in official_sets(agg):
        # composites get backend "vbench" only when every dimension behind them is official
        sel = agg[(agg["set"] == set_name) & (agg["backend"] == VBENCH_BACKEND)]
        present = set(sel.loc[sel["n"] > 0, "metric"])
        composite = {c for c, _, _ in COMPOSITES}
        dims = [d for d in DIM_ORDER if d in present] + sorted(present - set(DIM_ORDER) - composite)
        specs = [(d, _label(d)) for d in dims] + [(c, label) for c, label, _ in COMPOSITES if c in present]
        arms = [a for a in order_arms(agg) if a in set(sel.loc[sel["n"] > 0, "arm"])]
        titles = arm_titles(agg)
        table = build(
            sel,
            f"vbench_{set_name}",
            f"Official VBench on '{set_name}' (×100; composite scores with VBench's constants)",
            [(titles[a], a) for a in arms],
            metric_columns(sel, specs, [set_name]),
            {"Source": "source"},
        )
        gaps = missing_notes(agg, set_name)
        table.notes += ["Composite scores not shown (dimensions missing): " + " ".join(gaps)] if gaps else []
        tables.append(table)
    return tables

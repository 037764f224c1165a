"""Golden tables from the checked-in campaign, the paper fixture's layouts, diverged / mixed-backend cells.

Regenerate goldens after an intended change: ``UPDATE_GOLDEN=1 python -m pytest tests/test_report_tables.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from aad_bench.reporting.collect import collect
from aad_bench.reporting.paper import TABLE1, paper_tables
from aad_bench.reporting.stats import add_vbench_aggregates, aggregate
from aad_bench.reporting.tables import disc_ablation_table, main_table, warmup_table

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "runs" / "demo"
GOLDEN = HERE / "fixtures" / "golden"


@pytest.fixture(scope="module")
def agg():
    return aggregate(add_vbench_aggregates(collect(FIXTURE)))


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from golden (UPDATE_GOLDEN=1 to accept)"


@pytest.mark.parametrize("builder", [main_table, disc_ablation_table, warmup_table])
def test_golden_tables(agg, builder):
    t = builder(agg)
    _check(f"{t.name}.md", t.markdown())
    _check(f"{t.name}.tex", t.latex())
    _check(f"{t.name}.html", t.html())


@pytest.mark.parametrize("name", ["table1", "table2", "table3"])
def test_paper_golden(name):
    t = paper_tables()[name]
    _check(f"paper_{name}.md", t.markdown())
    _check(f"paper_{name}.tex", t.latex())


def test_paper_table1_reproduces_published_numbers():
    md = paper_tables()["table1"].markdown()
    header = md.splitlines()[2]
    assert header == "| Method | NFE | Subj ↑ | Bg ↑ | Smooth ↑ | Dyn ↑ | Aes ↑ | Img ↑ | I2V-S ↑ | I2V-B ↑ |"
    for method, vals in TABLE1.items():
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {method} |"))
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")][1:]
        assert cells == [str(vals[0])] + [f"{v:.2f}" for v in vals[1:]]
    assert "| AAD-1 Stage-III | 1 | **94.34** | **95.08** |" in md


def test_paper_table3_layout():
    md = paper_tables()["table3"].markdown()
    assert "| Backbone | Logit | Drift ↓ | Dynamic Degree ↑ |" in md
    assert "| Causal | frame-wise | N/A (static) | 1.08 |" in md
    assert "| Bidirectional | video-wise | **4.02** | 39.29 |" in md
    t2 = paper_tables()["table2"].markdown()
    assert "| w/o DMD warm-up | 53.63 | 62.81 |" in t2 and "| w/ DMD warm-up | **58.64** | **69.37** |" in t2


def test_backends_never_share_a_column(agg):
    t = main_table(agg)
    labels = [c.label for c in t.columns]
    assert "Dyn (dis)" in labels and "Dyn (raft)" in labels
    dis = labels.index("Dyn (dis)")
    dmd = next(cells for label, cells in t.rows if label.startswith("DMD"))
    assert dmd[dis].text == "—"  # dmd only has RAFT: its DIS cell stays empty


def test_diverged_marks(agg, tmp_path):
    md = main_table(agg).markdown()
    assert "† some runs of this arm diverged or failed" in md
    assert "| Symmetric | 1 | 96.86 ± 1.84† |" in md  # best Subj, but its CI overlaps the runner-up's: no bold
    camp = tmp_path / "c"
    shutil.copytree(FIXTURE / "runs" / "000-aad1-s0", camp / "runs" / "a")
    shutil.copytree(FIXTURE / "runs" / "005-symmetric-s2", camp / "runs" / "b")
    res = json.loads((camp / "runs" / "b" / "results.json").read_text())
    assert res["status"] == "diverged"
    t = main_table(aggregate(collect(camp)))
    sym = next(cells for label, cells in t.rows if label == "Symmetric")
    assert {c.text for c in sym[1:]} == {"diverged"}
    assert '<td class="diverged">diverged</td>' in t.html()


def _agg(rows):
    """A hand-made aggregate: (arm, metric, backend, mean, ci, n, proxy)."""
    import pandas as pd

    recs = []
    for arm, metric, backend, mean, ci, n, proxy in rows:
        recs.append(
            dict(
                arm=arm,
                method=arm,
                title=arm.upper(),
                order=len(arm),
                set="train_len",
                metric=metric,
                backend=backend,
                mean=mean,
                ci=ci,
                n=n,
                direction="up",
                proxy_for=proxy,
                nfe=1,
                n_runs=n,
                n_finished=n,
                n_diverged=0,
                n_failed=0,
                backbone=None,
                logit=None,
                warmup=None,
                source="re-evaluated",
            )
        )
    return pd.DataFrame(recs)


def test_bold_only_when_the_ci_clears_the_runner_up():
    near = _agg(
        [("a", "dynamic_degree", "dis", 0.40, 0.02, 3, None), ("bb", "dynamic_degree", "dis", 0.41, 0.02, 3, None)]
    )
    assert "**" not in main_table(near).markdown().split("\n", 1)[1]
    far = _agg(
        [("a", "dynamic_degree", "dis", 0.20, 0.02, 3, None), ("bb", "dynamic_degree", "dis", 0.41, 0.02, 3, None)]
    )
    md = main_table(far).markdown()
    assert "| BB | 1 | **41.00** ± 2.00 |" in md and "its 95% CI clear" in md
    single = _agg(
        [
            ("a", "dynamic_degree", "dis", 0.20, float("nan"), 1, None),
            ("bb", "dynamic_degree", "dis", 0.41, float("nan"), 1, None),
        ]
    )
    md = main_table(single).markdown()
    assert "**" not in md.split("\n", 1)[1] and "n = 1" in md and "95% CI (Student" not in md


def test_no_empty_column_and_one_column_for_identical_proxy_numbers():
    proxy = "DINO / CLIP features"
    agg = _agg(
        [
            ("a", "subject_consistency", "pixel", 0.9, 0.01, 2, proxy),
            ("a", "background_consistency", "pixel", 0.9, 0.01, 2, proxy),
            ("a", "dynamic_degree", "dis", 0.3, 0.01, 2, "RAFT"),
            ("bb", "subject_consistency", "pixel", 0.8, 0.01, 2, proxy),
            ("bb", "background_consistency", "pixel", 0.8, 0.01, 2, proxy),
            ("bb", "dynamic_degree", "dis", 0.5, 0.01, 2, "RAFT"),
        ]
    )
    t = main_table(agg)
    labels = [c.label for c in t.columns]
    assert labels == ["NFE", "Subj = Bg", "Dyn"]  # Aes, Img, ... nobody measured: left out, not empty
    notes = " ".join(t.notes)
    assert "same number (shown once)" in notes and "proxy for DINO / CLIP features" in notes
    html = t.html()
    assert '<th colspan="1" scope="colgroup" class="proxy">pixel (proxy)</th>' in html
    assert '<th colspan="1" scope="colgroup" class="proxy">dis (proxy)</th>' in html


def test_rows_follow_the_declared_method_order(agg):
    labels = [label for label, _ in main_table(agg).rows]
    assert labels[0] == "DMD (Stage II)" and labels[-2:] == ["AAD-1", "AAD-1 [train.dmd_warmup=false]"]

"""``aad-bench report`` end to end on the checked-in campaign: every output exists and works offline."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from aad_bench.cli import main
from aad_bench.reporting.cli import report_main

FIXTURE = Path(__file__).parent / "fixtures" / "runs" / "demo"


def test_report_outputs(tmp_path, capsys):
    out = tmp_path / "rep"
    assert report_main([str(FIXTURE), "--out", str(out)]) == 0
    assert str(out / "index.html") in capsys.readouterr().out
    for name in (
        "index.html",
        "report.md",
        "runs.csv",
        "tables/main.tex",
        "tables/disc_ablation.tex",
        "tables/warmup.tex",
        "tables/all_metrics.tex",
    ):
        assert (out / name).is_file(), name
    page = (out / "index.html").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page), (
        "the page must not load anything from the network"
    )
    assert page.count('<img src="data:image/png;base64,') >= 5
    assert "train.dmd_warmup" in page  # config difference of the no-warm-up arm vs aad1
    assert "0123456789abcdef" in page  # provenance
    assert "loss/d is NaN at step 37" in page and "CUDA out of memory" in page
    md = (out / "report.md").read_text()
    assert (
        "## Paired comparisons vs `aad1`" in md and "| symmetric | dynamic_degree@dis (train_len) | 2 |" in md
    )
    for img in re.findall(r"!\[[^]]*\]\(([^)]+)\)", md):
        assert (out / img).is_file()
    runs = pd.read_csv(out / "runs.csv")
    assert {"run", "method", "seed", "status", "metric", "backend", "value"} <= set(runs.columns)
    assert "diverged" in set(runs["status"])
    assert "\\toprule" in (out / "tables" / "main.tex").read_text()


def test_cli_verb_and_errors(tmp_path):
    assert (
        main(
            ["report", str(FIXTURE), "--out", str(tmp_path / "r"), "--no-figures", "--reference", "symmetric"]
        )
        == 0
    )
    assert "vs <code>symmetric</code>" in (tmp_path / "r" / "index.html").read_text()
    assert main(["report", str(tmp_path / "nope")]) == 2

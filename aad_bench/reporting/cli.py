"""``aad-bench report CAMPAIGN_DIR [--out reports/<campaign>]``: tables, figures and an offline HTML page."""

from __future__ import annotations

import argparse
import html
import math
import time
from pathlib import Path

import pandas as pd

from aad_bench.reporting import plots
from aad_bench.reporting.collect import collect
from aad_bench.reporting.html import render_page
from aad_bench.reporting.stats import add_vbench_aggregates, aggregate, paired_compare
from aad_bench.reporting.tables import (
    MAIN_COLUMNS,
    Table,
    axis_table,
    disc_ablation_table,
    main_table,
    order_arms,
    warmup_table,
)
from aad_bench.utils.io import atomic_write_text

COMPARE_METRICS = [m for m, _ in MAIN_COLUMNS] + ["drift_score", "delta_drift", "vbench_i2v_total"]
OTHER_METRICS = [
    ("vbench_i2v_quality", "I2V Quality"),
    ("vbench_i2v", "I2V"),
    ("vbench_i2v_total", "I2V Total"),
    ("vbench_quality", "Quality"),
    ("drift_score", "Drift"),
    ("delta_drift", "ΔDrift"),
    ("speed_ratio", "Speed ratio"),
    ("static_share", "Static share"),
    ("trajectory_error", "Traj. error"),
]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aad-bench report", description=__doc__)
    p.add_argument("campaign", help="campaign folder (index.jsonl + runs/), a folder of runs, or one run")
    p.add_argument("--out", help="output folder (default: reports/<campaign name>)")
    p.add_argument("--reference", help="reference arm for paired comparisons (default: aad1 if present)")
    p.add_argument("--no-figures", action="store_true", help="skip matplotlib figures and frame strips")
    return p


def comparisons(df: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Paired (on seed) comparison of every arm vs ``reference`` for each compared metric × set × backend."""
    keys = df[df["metric"].isin(COMPARE_METRICS)][["metric", "set", "backend"]].drop_duplicates()
    parts = [paired_compare(df, reference, m, b, s).assign(set=s) for m, s, b in keys.itertuples(index=False)]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _f(v: float, spec: str = ".4g") -> str:
    return "—" if v is None or not math.isfinite(v) else format(v, spec)


def _comparison_rows(cmp: pd.DataFrame) -> list[list[str]]:
    return [
        [
            r.arm,
            f"{r.metric}@{r.backend} ({r.set})",
            str(r.n_pairs),
            _f(r.mean_diff),
            f"[{_f(r.ci_lo)}, {_f(r.ci_hi)}]",
            _f(r.p, ".3g"),
            _f(r.effect_size, ".2f"),
        ]
        for r in cmp.itertuples()
    ]


CMP_HEAD = ["arm", "metric", "n pairs", "Δ mean", "95% CI of Δ", "p", "d_z"]


def comparisons_markdown(cmp: pd.DataFrame) -> str:
    if cmp.empty:
        return "_no paired comparison possible (reference arm missing or no shared seeds)_\n"
    lines = ["| " + " | ".join(CMP_HEAD) + " |", "|" + "|".join(["---"] * len(CMP_HEAD)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in _comparison_rows(cmp)]
    return "\n".join(lines) + "\n"


def comparisons_html(cmp: pd.DataFrame) -> str:
    if cmp.empty:
        return '<p class="note">No paired comparison possible (reference arm missing or no shared seeds).</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in CMP_HEAD)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in _comparison_rows(cmp)
    )
    return (
        f'<table class="results" id="table-comparisons"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def build_tables(agg: pd.DataFrame) -> list[Table]:
    """Main comparison, discriminator ablation, warm-up ablation and the other metrics of the campaign."""
    tables = [main_table(agg)]
    if agg["backbone"].notna().any():
        tables.append(disc_ablation_table(agg))
    if (agg["warmup"] == False).any():  # noqa: E712 (object column: True/False/None)
        tables.append(warmup_table(agg))
    present = set(agg.loc[agg["n"] > 0, "metric"])
    others = [(m, lab) for m, lab in OTHER_METRICS if m in present]
    if others:
        tables.append(
            axis_table(agg, others, "VBench aggregates (official constants), drift and motion metrics")
        )
    return tables


def write_report(campaign: Path, out: Path, reference: str | None = None, figures: bool = True) -> Path:
    """Collect, aggregate, render; returns the path of ``index.html``."""
    df = add_vbench_aggregates(collect(campaign))
    agg = aggregate(df)
    arms = order_arms(agg)
    reference = reference or ("aad1" if "aad1" in arms else arms[0] if arms else "")
    tables = build_tables(agg)
    cmp = comparisons(df, reference)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "runs.csv", index=False)
    for t in tables:
        atomic_write_text(out / "tables" / f"{t.name}.tex", t.latex())
    figs: list[plots.Figure] = []
    if figures:
        fdir = out / "figures"
        figs = (
            plots.plot_curves(df, fdir)
            + plots.plot_tradeoff(agg, fdir)
            + plots.plot_training(df, fdir)
            + plots.frame_strips(df, fdir)
        )
    md = [
        f"# Report: {campaign.name}",
        "",
        *[t.markdown() for t in tables],
        f"## Paired comparisons vs `{reference}`",
        "",
        comparisons_markdown(cmp),
        "## Figures",
        "",
    ]
    md += [f"![{cap}]({p.relative_to(out).as_posix()})\n\n_{cap}_\n" for cap, p in figs]
    atomic_write_text(out / "report.md", "\n".join(md))
    meta = (
        f"{campaign.resolve()} · {df['run_dir'].nunique()} runs · generated {time.strftime('%Y-%m-%d %H:%M')}"
    )
    page = render_page(
        f"aad_bench report: {campaign.name}", meta, df, tables, comparisons_html(cmp), figs, reference
    )
    index = atomic_write_text(out / "index.html", page)
    for path in out.rglob("*"):  # atomic writes create 0600 temp files; a report is meant to be shared
        if path.is_file():
            path.chmod(0o644)
    return index


def report_main(argv: list[str]) -> int:
    """Entry point of ``aad-bench report``; prints where the report was written."""
    args = _parser().parse_args(argv)
    campaign = Path(args.campaign)
    if not campaign.is_dir():
        raise FileNotFoundError(f"{campaign}: no such campaign folder")
    out = Path(args.out) if args.out else Path("reports") / campaign.resolve().name
    index = write_report(campaign, out, args.reference, figures=not args.no_figures)
    print(f"report: {index}")
    print(f"        {out / 'report.md'}, {out / 'runs.csv'}, {out / 'tables'}/*.tex")
    return 0

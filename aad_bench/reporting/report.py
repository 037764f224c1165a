"""Write a report: collect → statistics → tables / official VBench / clips / figures → HTML and Markdown.

:func:`write_report` is the library entry point (``aad-bench report`` and the demo call it).
"""

from __future__ import annotations

import html
import math
import sys
import time
from pathlib import Path

import pandas as pd

from aad_bench.registry import Registry
from aad_bench.reporting import plots
from aad_bench.reporting.clips import arm_clips
from aad_bench.reporting.collect import collect
from aad_bench.reporting.html import clips_html, render_page
from aad_bench.reporting.render import Table
from aad_bench.reporting.stats import add_vbench_aggregates, aggregate, paired_compare
from aad_bench.reporting.tables import (
    LABELS,
    MAIN_COLUMNS,
    OFFICIAL,
    arm_titles,
    axis_table,
    disc_ablation_table,
    main_table,
    order_arms,
    warmup_table,
)
from aad_bench.reporting.vbench import vbench_tables
from aad_bench.reporting.verdict import ordering_verdict
from aad_bench.utils.io import atomic_write_text

CMP_HEAD = ["arm", "metric", "n pairs", "Δ mean", "95% CI of Δ", "p", "d_z"]
NO_PAIRS = "No paired comparison: no metric has two or more seeds shared with the reference (n = 1 per arm)."


def comparisons(df: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Paired (on seed) comparison of every arm vs ``reference`` per metric × set × backend, where n ≥ 2."""
    keys = df[df["metric"].notna()][["metric", "set", "backend"]].drop_duplicates()
    parts = [paired_compare(df, reference, m, b, s).assign(set=s) for m, s, b in keys.itertuples(index=False)]
    parts = [p[p["n_pairs"] >= 2] for p in parts if not p.empty]
    parts = [p for p in parts if not p.empty]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    out.attrs["titles"] = dict(zip(df["arm"], df["title"])) if "title" in df else {}
    return out


def _f(v: float, spec: str = ".4g") -> str:
    return "—" if v is None or not math.isfinite(v) else format(v, spec)


def _comparison_rows(cmp: pd.DataFrame) -> list[list[str]]:
    titles = cmp.attrs.get("titles", {})
    return [
        [
            titles.get(r.arm, r.arm),
            f"{r.metric}@{r.backend} ({r.set})",
            str(r.n_pairs),
            _f(r.mean_diff),
            f"[{_f(r.ci_lo)}, {_f(r.ci_hi)}]",
            _f(r.p, ".3g"),
            _f(r.effect_size, ".2f"),
        ]
        for r in cmp.itertuples()
    ]


def comparisons_markdown(cmp: pd.DataFrame) -> str:
    """The paired comparisons as a Markdown table (or one line saying why there is none)."""
    if cmp.empty:
        return f"_{NO_PAIRS}_\n"
    lines = ["| " + " | ".join(CMP_HEAD) + " |", "|" + "|".join(["---"] * len(CMP_HEAD)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in _comparison_rows(cmp)]
    return "\n".join(lines) + "\n"


def comparisons_html(cmp: pd.DataFrame) -> str:
    """The paired comparisons as an HTML table (or one line saying why there is none)."""
    if cmp.empty:
        return f'<p class="note">{html.escape(NO_PAIRS)}</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in CMP_HEAD)
    rows = _comparison_rows(cmp)
    body = "".join(
        f'<tr><th scope="row">{html.escape(r[0])}</th><td class="text">{html.escape(r[1])}</td>'
        + "".join(f"<td>{html.escape(c)}</td>" for c in r[2:])
        + "</tr>"
        for r in rows
    )
    n_sig = int((cmp["p"] < 0.05).sum())
    table = f'<table class="results" id="table-comparisons"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    summary = f"{len(rows)} comparisons, {n_sig} with p &lt; 0.05 (click to {'hide' if len(rows) <= 20 else 'show'})"
    return (
        '<p class="note">Δ = arm − reference on matching seeds (only where n ≥ 2 pairs); 95% CI of Δ; two-sided '
        "paired t-test p; effect size d<sub>z</sub> = mean Δ / sd Δ. Read p together with the CI; no "
        "multiple-comparison correction.</p>"
        f"<details{' open' if len(rows) <= 20 else ''}><summary>{summary}</summary>{table}</details>"
    )


def build_tables(agg: pd.DataFrame) -> list[Table]:
    """Main comparison, discriminator ablation, warm-up ablation, and every other metric of the campaign."""
    measured = agg[agg["backend"] != OFFICIAL]
    tables = [main_table(measured)]
    if measured["backbone"].notna().any():
        tables.append(disc_ablation_table(measured))
    if (measured["warmup"] == False).any():  # noqa: E712 (object column: True/False/None)
        tables.append(warmup_table(measured))
    shown = {m for m, _ in MAIN_COLUMNS}
    present = set(measured.loc[measured["n"] > 0, "metric"]) - shown
    others = [m for m in LABELS if m in present] + sorted(present - set(LABELS))
    if others:
        title = "Other metrics (drift, motion, toy world; VBench composites of the measured dimensions, ×100)"
        tables.append(axis_table(measured, others, title))
    return tables


def default_reference(agg: pd.DataFrame) -> str:
    """The plain arm (fewest swept settings) of the last method in order; ``""`` when there is none.

    The paper lists its own method last, so that is the default reference.
    """
    first = agg.drop_duplicates("arm").set_index("arm")
    declared = [a for a in order_arms(agg) if "order" in first and pd.notna(first["order"].get(a))]
    arms = declared or order_arms(agg)
    if not arms:
        return ""
    last = [a for a in arms if first["method"].get(a) == first["method"].get(arms[-1])]
    return min(last, key=len)


def _markdown(campaign: Path, df: pd.DataFrame, tables: list[Table], vb: list[Table], clips, cmp, figs, out,
              verdict: str | None = None) -> str:
    runs = df.drop_duplicates("run_dir")
    counts = ", ".join(f"{s}: {n}" for s, n in runs["status"].fillna("missing").value_counts().items())
    md = [f"# Report: {campaign.name}", "", f"{len(runs)} runs — {counts}", ""]
    problems = df.attrs.get("problems") or []
    if problems:
        md += [f"**{len(problems)} file(s) or line(s) could not be used:**", ""]
        md += [f"- `{p['path']}`: {p['problem']}" for p in problems] + [""]
    md += [t.markdown() for t in tables]
    md += ["## The paper's ordering", "", verdict, ""] if verdict else []
    md += ["## Official VBench", ""] + ([t.markdown() for t in vb] or ["_No official VBench results._", ""])
    md += ["## Clips", ""] + [f"![{c.title}, {c.set}]({c.path.relative_to(out).as_posix()})" for c in clips] + [""]
    md += ["## Paired comparisons", "", comparisons_markdown(cmp), "## Figures", ""]
    md += [f"![{cap}]({p.relative_to(out).as_posix()})\n\n_{cap}_\n" for cap, p in figs]
    return "\n".join(md)


def write_report(campaign: Path, out: Path, reference: str | None = None, figures: bool = True) -> Path:
    """Collect, aggregate, render; returns the path of ``index.html``."""
    campaign, out = Path(campaign), Path(out)
    df = collect(campaign)
    if df.empty:
        raise FileNotFoundError(f"{campaign}: no runs, campaign index or results files found (empty folder?)")
    df = add_vbench_aggregates(df)
    agg = aggregate(df)
    arms = order_arms(agg)
    if reference and reference not in arms:
        known: Registry[str] = Registry("arm (--reference)")
        for a in arms:
            known.register(a, a)
        known.get(reference)  # raises with did-you-mean
    reference = reference or default_reference(agg)
    tables, vb = build_tables(agg), vbench_tables(agg)
    cmp = comparisons(df, reference)
    verdict = ordering_verdict(df, agg)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "runs.csv", index=False)
    for t in tables + vb:
        atomic_write_text(out / "tables" / f"{t.name}.tex", t.latex())
    clips = arm_clips(df, out, arms) if figures else []
    figs: list[plots.Figure] = []
    if figures:
        fdir = out / "figures"
        figs = plots.plot_curves(df, fdir) + plots.plot_tradeoff(agg, fdir) + plots.plot_training(df, fdir)
        figs += plots.frame_strips(df, fdir)
    atomic_write_text(out / "report.md", _markdown(campaign, df, tables, vb, clips, cmp, figs, out, verdict))
    meta = f"{campaign.resolve()} · {df['run_dir'].nunique()} runs · generated {time.strftime('%Y-%m-%d %H:%M')}"
    page = render_page(
        f"aad_bench report: {campaign.name}",
        meta,
        df,
        tables,
        vb,
        clips_html(clips, {a: arm_titles(agg)[a] for a in arms})
        if figures
        else '<p class="note">Clips skipped (--no-figures).</p>',
        (f'<p class="verdict">{html.escape(verdict)}</p>' if verdict else "") + comparisons_html(cmp),
        figs,
        reference,
    )
    index = atomic_write_text(out / "index.html", page)
    for path in out.rglob("*"):  # a report is meant to be shared
        if path.is_file():
            path.chmod(0o644)
    if df.attrs.get("problems"):
        print(f"report: {len(df.attrs['problems'])} file(s) could not be used (listed in the report)", file=sys.stderr)
    return index

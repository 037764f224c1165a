"""The AAD-1 paper's table layouts built from aggregated statistics.

Input is the output of :func:`aad_bench.reporting.stats.aggregate` (one row per arm × set × metric × backend
with mean / ci / n / direction and the arm's attributes and run-status counts). Rules every table follows:

- a metric measured with several backends becomes several columns; a value never comes from another backend;
- a column nobody measured is dropped and named in a note; two columns the same backend fills with identical
  numbers under two VBench names (the weight-free ``pixel`` features give subject and background the same
  value) are shown once, labelled with both names;
- the backend is said once per group of columns, and a weight-free proxy says what it stands in for;
- bold marks the best value by the metric's direction only when its 95 % CI does not overlap the runner-up's
  (so never with one run per arm); the note says ``n = 1`` plainly when there is no CI.
"""

from __future__ import annotations

import math

import pandas as pd

from aad_bench.evaluation.vbench_scores import PERCENT_DIMS
from aad_bench.reporting.render import Cell, Column, Table

PERCENT = PERCENT_DIMS | {
    "vbench_quality",
    "vbench_semantic",
    "vbench_total",
    "vbench_i2v_quality",
    "vbench_i2v",
    "vbench_i2v_total",
    "toy_frozen_share",
}
MAIN_COLUMNS = [
    ("subject_consistency", "Subj"),
    ("background_consistency", "Bg"),
    ("motion_smoothness", "Smooth"),
    ("dynamic_degree", "Dyn"),
    ("aesthetic_quality", "Aes"),
    ("imaging_quality", "Img"),
    ("i2v_subject", "I2V-S"),
    ("i2v_background", "I2V-B"),
]
DISC_ROWS = [  # the paper's Table 3 row order (backbone × logit granularity)
    ("causal", "frame"),
    ("causal", "video"),
    ("bidirectional", "frame"),
    ("bidirectional", "video"),
    ("causal", "patch"),
    ("bidirectional", "patch"),
]
DAGGER = "†"
OFFICIAL = "vbench"  # official VBench numbers have their own section (aad_bench.reporting.vbench)


def measured(agg: pd.DataFrame) -> pd.DataFrame:
    """The rows measured by this project's backends (official VBench and reported numbers left out)."""
    return agg[agg["backend"] != OFFICIAL]


def order_arms(agg: pd.DataFrame) -> list[str]:
    """Arms in their methods' declared ``order`` (from results.json), then by name; undeclared ones last."""
    cols = ["arm"] + [c for c in ("order",) if c in agg]
    arms = agg.drop_duplicates("arm")[cols]
    order = arms["order"] if "order" in arms else pd.Series(math.nan, index=arms.index)
    key = [(1, 0.0, a) if pd.isna(o) else (0, float(o), a) for a, o in zip(arms["arm"], order)]
    return [k[2] for k in sorted(key)]


def arm_titles(agg: pd.DataFrame) -> dict[str, str]:
    """Row label per arm: the method's display name plus the swept settings that differ."""
    first = agg.drop_duplicates("arm").set_index("arm")
    col = first["title"] if "title" in first else first.index.to_series()
    return {a: (t if isinstance(t, str) and t else a) for a, t in col.items()}


def _group(backend: str | None, proxy: str | None) -> str | None:
    return f"{backend} (proxy)" if backend and proxy else backend


def metric_columns(agg: pd.DataFrame, specs: list[tuple], sets: list[str] | None = None) -> list[Column]:
    """One column per (metric, set, backend) with data.

    ``specs``: ``(metric, label)`` or ``(metric, label, sets)``; ``sets`` is an order of preference: the first
    set that has the metric is used (None: every set, each its own column).
    """
    cols: list[Column] = []
    have = agg[agg["n"] > 0] if "n" in agg else agg
    for spec in specs:
        metric, label = spec[:2]
        prefer = spec[2] if len(spec) > 2 else sets
        rows = have[have["metric"] == metric]
        for s in prefer or []:
            if (rows["set"] == s).any():
                rows = rows[rows["set"] == s]
                break
        combos = rows[["set", "backend"]].drop_duplicates().sort_values(["set", "backend"], na_position="first")
        n_sets = combos["set"].nunique()
        scale = 100.0 if metric in PERCENT else 1.0
        direction = rows.loc[rows["direction"].notna(), "direction"]
        direction = direction.iloc[0] if len(direction) else None
        for s, b in combos.itertuples(index=False):
            sel = rows[(rows["set"] == s) & (rows["backend"] == b)] if "proxy_for" in rows else rows.iloc[:0]
            proxy = next((p for p in sel.get("proxy_for", []) if isinstance(p, str)), None)
            parts = [p for p in (b if len(combos) > 1 else None, s if n_sets > 1 else None) if p]
            lab = f"{label} ({', '.join(parts)})" if parts else label
            short = f"{label} ({s})" if n_sets > 1 else label
            cols.append(Column(lab, metric, s, b, direction, scale, proxy=proxy, group=_group(b, proxy), short=short))
        if rows.empty:
            cols.append(Column(label, metric, prefer[0] if prefer else None, None, None, scale))
    return cols


def metric_cell(rec: dict | None, status: dict) -> Cell:
    """The cell of one arm × column: value, or why there is none (all runs diverged / failed / missing)."""
    if rec is not None and isinstance(rec.get("note"), str) and rec.get("note"):
        return Cell(text=rec["note"])
    bad = int(status.get("n_diverged", 0) or 0) + int(status.get("n_failed", 0) or 0)
    if rec is None or not rec.get("n") or not math.isfinite(rec.get("mean", math.nan)):
        if status.get("n_diverged") and not status.get("n_finished"):
            return Cell(text="diverged")
        if status.get("n_failed") and not status.get("n_finished"):
            return Cell(text="failed")
        return Cell(text="—")
    return Cell(rec["mean"], rec.get("ci", math.nan), int(rec["n"]), flag=DAGGER if bad else "")


def _has_value(c: Cell) -> bool:
    return c.text is None and math.isfinite(c.mean)


def bold_best(columns: list[Column], rows: list[tuple[str, list[Cell]]], rule: str = "ci") -> None:
    """Bold the best cell per column by direction; ``rule="ci"`` needs non-overlapping 95 % CIs."""
    for j, col in enumerate(columns):
        if col.direction not in ("up", "down"):
            continue
        cells = sorted((r[1][j] for r in rows if _has_value(r[1][j])), key=lambda c: c.mean)
        if len(cells) < 2:
            continue
        best, second = (cells[-1], cells[-2]) if col.direction == "up" else (cells[0], cells[1])
        if rule == "ci":
            sure = math.isfinite(best.ci) and math.isfinite(second.ci)
            if not sure or abs(best.mean - second.mean) <= best.ci + second.ci:
                continue
        for _, row in rows:
            c = row[j]
            c.bold = _has_value(c) and round(c.mean * col.scale, col.decimals) == round(
                best.mean * col.scale, col.decimals
            )


def _drop_empty(cols: list[Column], rows: list[tuple[str, list[Cell]]]) -> tuple[list, list, list[str]]:
    """Drop metric columns with no value in any row (unless every column is empty); name them."""
    has = [any(_has_value(r[1][j]) for r in rows) for j in range(len(cols))]
    if not any(h for h, c in zip(has, cols) if c.metric):
        return cols, rows, []
    keep = [j for j, c in enumerate(cols) if has[j] or c.metric is None]
    gone = [f"{c.label} ({c.metric})" for j, c in enumerate(cols) if j not in keep]
    return [cols[j] for j in keep], [(label, [cells[j] for j in keep]) for label, cells in rows], gone


def _merge_identical(cols: list[Column], rows: list[tuple[str, list[Cell]]]) -> tuple[list, list, list[str]]:
    """Show once two columns that one weight-free backend fills with identical numbers under two metric names."""
    drop, notes = set(), []
    for i, a in enumerate(cols):
        for j in range(i + 1, len(cols)):
            b = cols[j]
            same = a.metric and b.metric and a.backend == b.backend and a.set == b.set and a.proxy
            if j in drop or not same:
                continue
            pairs = [(r[1][i], r[1][j]) for r in rows]
            if any(_has_value(x) for x, _ in pairs) and all(
                _has_value(x) == _has_value(y) and (not _has_value(x) or abs(x.mean - y.mean) < 1e-12) for x, y in pairs
            ):
                drop.add(j)
                notes.append(
                    f"{a.label} = {b.label}: backend {a.backend} gives {a.metric} and {b.metric} the same "
                    "number (shown once)."
                )
                a.label = f"{a.label} = {b.label}"
                a.short = f"{a.short or a.label} = {b.short or b.label}"
    keep = [j for j in range(len(cols)) if j not in drop]
    return [cols[j] for j in keep], [(label, [cells[j] for j in keep]) for label, cells in rows], notes


def _backend_note(cols: list[Column]) -> str | None:
    groups: dict[str, list[str]] = {}
    proxies: dict[str, str] = {}
    for c in cols:
        if c.metric and c.backend:
            groups.setdefault(c.backend, []).append(c.label)
            if c.proxy:
                proxies[c.backend] = c.proxy
    if not groups:
        return None
    parts = [
        f"{b}{' — proxy for ' + proxies[b] if b in proxies else ''}: {', '.join(labels)}"
        for b, labels in groups.items()
    ]
    return "Backends: " + "; ".join(parts) + "."


def _stat_notes(rows: list[tuple[str, list[Cell]]], bold: bool, rule: str) -> list[str]:
    ns = [c.n for _, cells in rows for c in cells if _has_value(c)]
    notes = []
    if any(n >= 2 for n in ns):
        notes.append("mean ± 95% CI (Student t over runs); ↑/↓ = higher/lower is better.")
    if any(n == 1 for n in ns):
        notes.append("n = 1: one run (or one reported number) per value, shown without CI.")
    if bold:
        why = "its 95% CI clear of the runner-up's" if rule == "ci" else "as the source table prints it"
        notes.append(f"Bold: best by direction, {why}.")
    return notes


def build(
    agg: pd.DataFrame,
    name: str,
    title: str,
    rows: list[tuple[str, str]],
    columns: list[Column],
    text_cols: dict[str, str] | None = None,
    row_header: str = "Method",
    bold: str = "ci",
    skip_empty_rows: bool = False,
) -> Table:
    """Assemble a table: ``rows`` = (label, arm); ``text_cols`` = {label: arm attribute} shown first.

    With ``skip_empty_rows``, arms without a single value or status mark here are left out and named in a note.
    """
    look = {(r["arm"], r["set"], r["metric"], r["backend"]): r for r in agg.to_dict("records")}
    status = {r["arm"]: r for r in agg.drop_duplicates("arm").to_dict("records")}
    text_cols = text_cols or {}
    cols = [Column(lab) for lab in text_cols] + columns
    out: list[tuple[str, list[Cell]]] = []
    for label, arm in rows:
        st = status.get(arm, {})
        cells = [Cell(text=_fmt_attr(st.get(attr))) for attr in text_cols.values()]
        cells += [metric_cell(look.get((arm, c.set, c.metric, c.backend)), st) for c in columns]
        out.append((label, cells))
    skipped = []
    if skip_empty_rows:
        k = len(text_cols)
        skipped = [label for label, cells in out if all(c.text == "—" for c in cells[k:])]
        out = [(label, cells) for label, cells in out if label not in skipped]
    cols, out, gone = _drop_empty(cols, out)
    cols, out, merged = _merge_identical(cols, out)
    bold_best(cols, out, bold)
    notes = _stat_notes(out, any(c.bold for _, cells in out for c in cells), bold)
    notes += [n for n in (_backend_note(cols),) if n] + merged
    if gone:
        notes.append(f"Not measured in these runs (column left out): {', '.join(gone)}.")
    if skipped:
        notes.append(f"No value in this table (row left out): {', '.join(skipped)}.")
    if any(c.flag for _, cells in out for c in cells):
        notes.append(f"{DAGGER} some runs of this arm diverged or failed; the value is over finished runs only.")
    return Table(name, title, cols, out, notes, row_header)


def _fmt_attr(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def main_table(agg: pd.DataFrame, sets: list[str] | None = None, bold: str = "ci") -> Table:
    """Table 1 layout: Method | NFE | (Source) | Subj | Bg | Smooth | Dyn | Aes | Img | I2V-S | I2V-B."""
    agg = measured(agg)
    titles = arm_titles(agg)
    rows = [(titles[a], a) for a in order_arms(agg)]
    cols = metric_columns(agg, MAIN_COLUMNS, sets or ["train_len"])
    text = {"NFE": "nfe"}
    valued = agg[(agg["n"] > 0) & agg["metric"].isin([m for m, _ in MAIN_COLUMNS])]
    if "source" in valued and (valued["source"] == "as reported").any():
        text["Source"] = "source"
    title = "Main comparison (VBench-I2V dimensions, ×100)"
    return build(agg, "main", title, rows, cols, text, bold=bold, skip_empty_rows=True)


def disc_ablation_table(agg: pd.DataFrame, bold: str = "ci") -> Table:
    """Table 3 layout: Backbone | Logit | Drift ↓ | Dynamic Degree ↑, one row per (backbone, logit) arm."""
    agg = measured(agg)
    arms = agg.drop_duplicates("arm")
    rows, logit = [], {}
    for bb, lg in DISC_ROWS:
        sel = arms[(arms["backbone"] == bb) & (arms["logit"] == lg)]
        for r in sorted(sel.itertuples(index=False), key=lambda r: (r.arm != r.method, r.arm)):
            extra = r.arm[len(r.method) :] if isinstance(r.method, str) and r.arm.startswith(r.method) else ""
            rows.append((f"{'Bidirectional' if bb == 'bidirectional' else 'Causal'}{extra}", r.arm))
            logit[r.arm] = f"{lg}-wise"
    # drift is a long-rollout metric, dynamic degree is read on training-length clips (the paper's 5-s)
    specs = [
        ("drift_score", "Drift", ["long", "train_len"]),
        ("dynamic_degree", "Dynamic Degree", ["train_len", "long"]),
    ]
    return build(
        agg.assign(_logit=agg["arm"].map(logit)),
        "disc_ablation",
        "Discriminator ablation (backbone × logit granularity)",
        rows,
        metric_columns(agg, specs),
        {"Logit": "_logit"},
        row_header="Backbone",
        bold=bold,
    )


def warmup_table(agg: pd.DataFrame, bold: str = "ci") -> Table:
    """Table 2 layout: with vs without the Stage-II DMD warm-up before Stage III; Aesthetic ↑, Imaging ↑."""
    agg = measured(agg)
    arms = agg[agg["warmup"].notna()].drop_duplicates("arm")
    methods = sorted(set(arms.loc[arms["warmup"] == False, "method"]))  # noqa: E712 (object column)
    titles = arm_titles(agg)
    rows = []
    for method in methods:
        for flag in (False, True):
            sel = sorted(arms.loc[(arms["method"] == method) & (arms["warmup"] == flag), "arm"])
            for arm in sel:
                label = "w/ DMD warm-up" if flag else "w/o DMD warm-up"
                label = label if len(sel) == 1 else f"{label}: {titles[arm]}"
                rows.append((label if len(methods) == 1 else f"{method} {label}", arm))
    cols = metric_columns(agg, [("aesthetic_quality", "Aesthetic"), ("imaging_quality", "Imaging")], ["train_len"])
    title = "Warm-up ablation (Stage-II DMD before Stage III)"
    return build(agg, "warmup", title, rows, cols, row_header="Setting", bold=bold)


LABELS = {  # short column labels of metrics outside the paper's Table 1 (presentation only)
    "drift_score": "Drift",
    "delta_drift": "ΔDrift",
    "temporal_flickering": "Flicker",
    "toy_speed_ratio": "Speed ratio",
    "toy_frozen_share": "Frozen",
    "toy_trajectory_error": "Traj. error",
    "vbench_quality": "Quality",
    "vbench_semantic": "Semantic",
    "vbench_total": "Total",
    "vbench_i2v": "I2V",
    "vbench_i2v_quality": "I2V Quality",
    "vbench_i2v_total": "I2V Total",
}


def axis_table(agg: pd.DataFrame, metrics: list[str], title: str = "All arms") -> Table:
    """Every arm × the given metrics (any set): the campaign-wide overview table."""
    agg = measured(agg)
    titles = arm_titles(agg)
    rows = [(titles[a], a) for a in order_arms(agg)]
    specs = [(m, LABELS.get(m, m)) for m in metrics]
    return build(agg, "all_metrics", title, rows, metric_columns(agg, specs), skip_empty_rows=True)

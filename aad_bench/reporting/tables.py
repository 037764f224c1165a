"""The AAD-1 paper's table layouts built from aggregated statistics, rendered as Markdown, LaTeX, HTML.

Input is the output of :func:`aad_bench.reporting.stats.aggregate` (one row per arm × set × metric × backend
with mean / ci / n / direction and the arm's run-status counts). A metric measured with several backends
becomes several columns; a value is never taken from a different backend than its column's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from aad_bench.evaluation.vbench_scores import PERCENT_DIMS
from aad_bench.reporting.render import render_html, render_latex, render_markdown

PERCENT = PERCENT_DIMS | {"vbench_quality", "vbench_i2v_quality", "vbench_i2v", "vbench_i2v_total"}
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
METHOD_ORDER = ["teacher", "dmd", "symmetric", "causal_video", "bidir_frame", "patch", "aad1"]
PRETTY = {
    "teacher": "Teacher",
    "dmd": "DMD (Stage II)",
    "symmetric": "Symmetric",
    "causal_video": "Causal video",
    "bidir_frame": "Bidir frame",
    "patch": "Patch",
    "aad1": "AAD-1",
}
DISC_ROWS = [
    ("causal", "frame"),
    ("causal", "video"),
    ("bidirectional", "frame"),
    ("bidirectional", "video"),
    ("causal", "patch"),
    ("bidirectional", "patch"),
]
DAGGER = "†"


@dataclass
class Column:
    """One table column: a metric on one set with one backend, or a text attribute (e.g. NFE)."""

    label: str
    metric: str | None = None
    set: str | None = None
    backend: str | None = None
    direction: str | None = None
    scale: float = 1.0
    decimals: int = 2


@dataclass
class Cell:
    """A table cell: a mean ± CI, or a text (``"diverged"``, ``"—"``, ``"N/A (static)"``); ``flag`` marks
    values computed over fewer runs because some diverged or failed."""

    mean: float = math.nan
    ci: float = math.nan
    n: int = 0
    text: str | None = None
    flag: str = ""
    bold: bool = False


@dataclass
class Table:
    """A rendered-agnostic table; :meth:`markdown`, :meth:`latex`, :meth:`html` render it."""

    name: str
    title: str
    columns: list[Column]
    rows: list[tuple[str, list[Cell]]]
    notes: list[str] = field(default_factory=list)
    row_header: str = "Method"

    def markdown(self) -> str:
        return render_markdown(self)

    def latex(self) -> str:
        return render_latex(self)

    def html(self) -> str:
        return render_html(self)


def arm_title(arm: str, method: str | None) -> str:
    """Human row label: the method's pretty name plus the arm's extra overrides."""
    if method and arm.startswith(method):
        return PRETTY.get(method, method) + arm[len(method) :]
    return arm


def order_arms(agg: pd.DataFrame) -> list[str]:
    """Arms ordered as the paper lists methods (teacher first, AAD-1 last), then alphabetically."""
    arms = agg.drop_duplicates("arm")[["arm", "method"]]
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}

    def key(item: tuple[int, tuple]) -> tuple:
        pos, (arm, method) = item
        known = method in rank  # unknown methods (e.g. the paper's baselines) keep their input order
        return (rank.get(method, len(rank)), len(arm) if known else 0, arm if known else "", pos)

    return [arm for _, (arm, _m) in sorted(enumerate(arms.itertuples(index=False, name=None)), key=key)]


def metric_columns(agg: pd.DataFrame, specs: list[tuple], sets: list[str] | None = None) -> list[Column]:
    """One column per (metric, set, backend) with data; the backend is named whenever a metric has several.

    ``specs``: ``(metric, label)`` or ``(metric, label, sets)``; ``sets`` is an order of preference: the
    first set that has the metric is used (None: every set, each its own column).
    """
    cols: list[Column] = []
    have = agg[agg["n"] > 0] if "n" in agg else agg
    for spec in specs:
        metric, label = spec[:2]
        sets = spec[2] if len(spec) > 2 else sets
        rows = have[have["metric"] == metric]
        if sets:
            for s in sets:
                if (rows["set"] == s).any():
                    rows = rows[rows["set"] == s]
                    break
        combos = (
            rows[["set", "backend"]].drop_duplicates().sort_values(["set", "backend"], na_position="first")
        )
        n_sets = combos["set"].nunique()
        for s, b in combos.itertuples(index=False):
            direction = rows.loc[rows["direction"].notna(), "direction"]
            parts = [p for p in (b if len(combos) > 1 else None, s if n_sets > 1 else None) if p]
            lab = f"{label} ({', '.join(parts)})" if parts else label
            cols.append(
                Column(
                    lab,
                    metric,
                    s,
                    b,
                    direction.iloc[0] if len(direction) else None,
                    100.0 if metric in PERCENT else 1.0,
                )
            )
        if rows.empty:
            cols.append(
                Column(
                    label, metric, sets[0] if sets else None, None, None, 100.0 if metric in PERCENT else 1.0
                )
            )
    return cols


def _lookup(agg: pd.DataFrame) -> dict[tuple, dict]:
    return {(r["arm"], r["set"], r["metric"], r["backend"]): r for r in agg.to_dict("records")}


def _arm_status(agg: pd.DataFrame, arm: str) -> dict:
    rows = agg[agg["arm"] == arm]
    return rows.iloc[0].to_dict() if len(rows) else {}


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


def _bold_best(columns: list[Column], rows: list[tuple[str, list[Cell]]]) -> None:
    for j, col in enumerate(columns):
        if col.direction not in ("up", "down"):
            continue
        vals = [r[1][j].mean for r in rows if r[1][j].text is None and math.isfinite(r[1][j].mean)]
        if len(vals) < 2:
            continue
        best = max(vals) if col.direction == "up" else min(vals)
        for _, cells in rows:
            c = cells[j]
            c.bold = (
                c.text is None
                and math.isfinite(c.mean)
                and round(c.mean * col.scale, col.decimals) == round(best * col.scale, col.decimals)
            )


def build(
    agg: pd.DataFrame,
    name: str,
    title: str,
    rows: list[tuple[str, str]],
    columns: list[Column],
    text_cols: dict[str, str] | None = None,
    row_header: str = "Method",
) -> Table:
    """Assemble a table: ``rows`` = (label, arm); ``text_cols`` = {label: arm attribute} shown first."""
    look = _lookup(agg)
    text_cols = text_cols or {}
    cols = [Column(lab) for lab in text_cols] + columns
    out: list[tuple[str, list[Cell]]] = []
    for label, arm in rows:
        status = _arm_status(agg, arm)
        cells = [Cell(text=_fmt_attr(status.get(attr))) for attr in text_cols.values()]
        cells += [metric_cell(look.get((arm, c.set, c.metric, c.backend)), status) for c in columns]
        out.append((label, cells))
    cols, out = _drop_empty_backends(cols, out)
    _bold_best(cols, out)
    notes = [
        "mean ± 95% CI (t-distribution over seeds); best per column in bold; ↑/↓ = higher/lower is better."
    ]
    if any(c.flag for _, cells in out for c in cells):
        notes.append(
            f"{DAGGER} some runs of this arm diverged or failed; the value is over finished runs only."
        )
    return Table(name, title, cols, out, notes, row_header)


def _drop_empty_backends(cols: list[Column], rows: list[tuple[str, list[Cell]]]) -> tuple[list, list]:
    """Drop a backend's column when none of this table's rows has a value in it but another backend does."""
    has = [any(r[1][j].text is None for r in rows) for j in range(len(cols))]
    keep = [
        j
        for j, c in enumerate(cols)
        if has[j] or c.metric is None or not any(has[k] for k, o in enumerate(cols) if o.metric == c.metric)
    ]
    cols = [cols[j] for j in keep]
    return cols, [(label, [cells[j] for j in keep]) for label, cells in rows]


def _fmt_attr(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def main_table(agg: pd.DataFrame, sets: list[str] | None = None) -> Table:
    """Table 1 layout: Method | NFE | Subj | Bg | Smooth | Dyn | Aes | Img | I2V-S | I2V-B."""
    arms = order_arms(agg)
    method = agg.drop_duplicates("arm").set_index("arm")["method"]
    rows = [(arm_title(a, method.get(a)), a) for a in arms]
    cols = metric_columns(agg, MAIN_COLUMNS, sets or ["train_len"])
    return build(agg, "main", "Main comparison (VBench-I2V dimensions, ×100)", rows, cols, {"NFE": "nfe"})


def disc_ablation_table(agg: pd.DataFrame) -> Table:
    """Table 3 layout: Backbone | Logit | Drift ↓ | Dynamic Degree ↑, one row per (backbone, logit) arm."""
    arms = agg.drop_duplicates("arm")
    rows, logit = [], {}
    for bb, lg in DISC_ROWS:
        sel = arms[(arms["backbone"] == bb) & (arms["logit"] == lg)]
        for r in sorted(sel.itertuples(index=False), key=lambda r: (r.arm != r.method, r.arm)):
            extra = r.arm[len(r.method) :] if isinstance(r.method, str) and r.arm.startswith(r.method) else ""
            rows.append((f"{'Bidirectional' if bb == 'bidirectional' else 'Causal'}{extra}", r.arm))
            logit[r.arm] = f"{lg}-wise"
    # drift is a long-rollout metric, dynamic degree is read on training-length clips (the paper's 5-s)
    cols = metric_columns(
        agg,
        [
            ("drift_score", "Drift", ["long", "train_len"]),
            ("dynamic_degree", "Dynamic Degree", ["train_len", "long"]),
        ],
    )
    return build(
        agg.assign(_logit=agg["arm"].map(logit)),
        "disc_ablation",
        "Discriminator ablation (backbone × logit granularity)",
        rows,
        cols,
        {"Logit": "_logit"},
        row_header="Backbone",
    )


def warmup_table(agg: pd.DataFrame, method: str = "aad1") -> Table:
    """Table 2 layout: with vs without the Stage-II DMD warm-up before Stage III; Aesthetic ↑, Imaging ↑."""
    arms = agg[(agg["method"] == method) & agg["warmup"].notna()].drop_duplicates("arm")
    rows = []
    for flag in (False, True):
        sel = sorted(arms.loc[arms["warmup"] == flag, "arm"])
        for arm in sel:
            label = "w/ DMD warm-up" if flag else "w/o DMD warm-up"
            rows.append((label if len(sel) == 1 else f"{label} {arm}", arm))
    cols = metric_columns(
        agg, [("aesthetic_quality", "Aesthetic"), ("imaging_quality", "Imaging")], ["train_len"]
    )
    return build(
        agg, "warmup", "Warm-up ablation (Stage-II DMD before Stage III)", rows, cols, row_header="Setting"
    )


def axis_table(agg: pd.DataFrame, metrics: list[tuple[str, str]], title: str = "All arms") -> Table:
    """Every arm × the given metrics (any set): the campaign-wide overview table."""
    method = agg.drop_duplicates("arm").set_index("arm")["method"]
    rows = [(arm_title(a, method.get(a)), a) for a in order_arms(agg)]
    return build(agg, "all_metrics", title, rows, metric_columns(agg, metrics))

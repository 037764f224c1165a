"""The table model (:class:`Column`, :class:`Cell`, :class:`Table`) and its Markdown, LaTeX and HTML renderers.

Table layouts are built in :mod:`aad_bench.reporting.tables`; this module only knows how to print them. In HTML,
columns that share a backend get one spanning header naming it (and whether it is a weight-free proxy).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

ARROW = {"up": "↑", "down": "↓"}
LATEX_ESCAPE = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "—": "---",
    "×": r"$\times$",
    "±": r"$\pm$",
    "†": r"$^\dagger$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
}


@dataclass
class Column:
    """One table column: a metric on one set with one backend, or a text attribute (e.g. NFE).

    Attributes:
        label: header text.
        metric, set, backend: where the values come from (``None`` for text columns).
        direction: ``"up"`` / ``"down"`` / ``None`` (arrow and bold rule).
        scale, decimals: display scale (×100 for VBench dimensions) and precision.
        proxy: what the backend stands in for when it is a weight-free proxy.
        group: spanning header of adjacent columns that share it (the backend, said once).
        short: the label under a group header (without the backend the group already names).
    """

    label: str
    metric: str | None = None
    set: str | None = None
    backend: str | None = None
    direction: str | None = None
    scale: float = 1.0
    decimals: int = 2
    proxy: str | None = None
    group: str | None = None
    short: str | None = None


@dataclass
class Cell:
    """A table cell: a mean ± CI, or a text (``"diverged"``, ``"—"``, ``"N/A (static)"``).

    ``flag`` marks values computed over fewer runs because some diverged or failed.
    """

    mean: float = math.nan
    ci: float = math.nan
    n: int = 0
    text: str | None = None
    flag: str = ""
    bold: bool = False


@dataclass
class Table:
    """A render-agnostic table; :meth:`markdown`, :meth:`latex`, :meth:`html` render it."""

    name: str
    title: str
    columns: list[Column]
    rows: list[tuple[str, list[Cell]]]
    notes: list[str] = field(default_factory=list)
    row_header: str = "Method"

    def markdown(self) -> str:
        """GitHub-flavoured Markdown."""
        return render_markdown(self)

    def latex(self) -> str:
        """A booktabs ``table`` environment."""
        return render_latex(self)

    def html(self) -> str:
        """A ``<table>`` fragment with caption and notes."""
        return render_html(self)


def fmt_number(cell: Cell, col: Column) -> tuple[str, str]:
    """``(value, ci)`` strings at the column's scale and precision (ci empty when undefined)."""
    v = f"{cell.mean * col.scale:.{col.decimals}f}"
    ci = f"{cell.ci * col.scale:.{col.decimals}f}" if math.isfinite(cell.ci) else ""
    return v, ci


def header(col: Column, short: bool = False) -> str:
    """Column label (the short one under a group header) with its direction arrow."""
    label = col.short if short and col.short and col.group else col.label
    return f"{label} {ARROW.get(col.direction or '', '')}".strip()


def latex_escape(text: str) -> str:
    """Escape LaTeX specials (and map a few symbols to math mode)."""
    return "".join(LATEX_ESCAPE.get(ch, ch) for ch in text)


def _md_cell(cell: Cell, col: Column) -> str:
    if cell.text is not None:
        return cell.text
    v, ci = fmt_number(cell, col)
    v = f"**{v}**" if cell.bold else v
    return f"{v} ± {ci}{cell.flag}" if ci else f"{v}{cell.flag}"


def render_markdown(table: Table) -> str:
    """Title line, pipe table, notes."""
    heads = [table.row_header] + [header(c) for c in table.columns]
    lines = [
        f"**{table.title}**",
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "|".join([":---"] + ["---:"] * len(table.columns)) + "|",
    ]
    for label, cells in table.rows:
        lines.append("| " + " | ".join([label] + [_md_cell(c, col) for c, col in zip(cells, table.columns)]) + " |")
    lines += [""] + [f"_{n}_" for n in table.notes]
    return "\n".join(lines) + "\n"


def _tex_cell(cell: Cell, col: Column) -> str:
    if cell.text is not None:
        return latex_escape(cell.text)
    v, ci = fmt_number(cell, col)
    v = rf"\textbf{{{v}}}" if cell.bold else v
    flag = r"$^\dagger$" if cell.flag else ""
    return rf"{v}$\pm${ci}{flag}" if ci else f"{v}{flag}"


def render_latex(table: Table) -> str:
    r"""A booktabs ``table`` environment (needs ``\usepackage{booktabs}``)."""
    spec = "l" + "c" * len(table.columns)
    heads = [latex_escape(table.row_header)] + [latex_escape(header(c)) for c in table.columns]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}}}",
        rf"\label{{tab:{table.name}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(heads) + r" \\",
        r"\midrule",
    ]
    for label, cells in table.rows:
        cols = [latex_escape(label)] + [_tex_cell(c, col) for c, col in zip(cells, table.columns)]
        lines.append(" & ".join(cols) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\smallskip{{\footnotesize {latex_escape(n)}}}" for n in table.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _html_cell(cell: Cell, col: Column) -> str:
    if cell.text is not None:
        cls = {"diverged": "diverged", "failed": "failed", "—": "missing"}.get(cell.text, "note")
        return f'<td class="{cls}">{html.escape(cell.text)}</td>'
    v, ci = fmt_number(cell, col)
    v = f"<b>{v}</b>" if cell.bold else v
    ci_html = f' <span class="ci">± {ci}</span>' if ci else ""
    flag = f'<sup class="flag">{cell.flag}</sup>' if cell.flag else ""
    return f'<td title="n={cell.n}">{v}{ci_html}{flag}</td>'


def _group_row(table: Table) -> str:
    """The spanning header row: one cell per run of adjacent columns sharing a group (empty: no group)."""
    cells, i, cols = [], 0, table.columns
    while i < len(cols):
        j = i
        while j + 1 < len(cols) and cols[j + 1].group == cols[i].group:
            j += 1
        g = cols[i].group or ""
        cls = ' class="proxy"' if any(c.proxy for c in cols[i : j + 1]) else ""
        cells.append(f'<th colspan="{j - i + 1}" scope="colgroup"{cls}>{html.escape(g)}</th>')
        i = j + 1
    return '<tr class="groups"><th></th>' + "".join(cells) + "</tr>"


def render_html(table: Table) -> str:
    """A ``<table>`` fragment (class ``results``) with caption and notes; no external resources."""
    out = [
        f'<table class="results" id="table-{html.escape(table.name)}">',
        f"<caption>{html.escape(table.title)}</caption>",
        "<thead>",
    ]
    grouped = any(c.group for c in table.columns)
    if grouped:
        out.append(_group_row(table))
    tips = [f"{c.metric}@{c.backend}" + (f" — proxy for {c.proxy}" if c.proxy else "") for c in table.columns]
    out.append(f'<tr><th scope="col">{html.escape(table.row_header)}</th>')
    out += [
        f'<th scope="col" title="{html.escape(tip) if c.metric else ""}">{html.escape(header(c, grouped))}</th>'
        for c, tip in zip(table.columns, tips)
    ]
    out.append("</tr></thead><tbody>")
    for label, cells in table.rows:
        tds = "".join(_html_cell(c, col) for c, col in zip(cells, table.columns))
        out.append(f'<tr><th scope="row">{html.escape(label)}</th>{tds}</tr>')
    out.append("</tbody></table>")
    out += [f'<p class="note">{html.escape(n)}</p>' for n in table.notes]
    return "\n".join(out) + "\n"

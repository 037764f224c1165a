"""Markdown, LaTeX (booktabs) and HTML renderers for :class:`aad_bench.reporting.tables.Table`."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aad_bench.reporting.tables import Cell, Column, Table

ARROW = {"up": "↑", "down": "↓"}
LATEX_ARROW = {"up": r"$\uparrow$", "down": r"$\downarrow$"}
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


def fmt_number(cell: Cell, col: Column) -> tuple[str, str]:
    """``(value, ci)`` strings at the column's scale and precision (ci empty when undefined)."""
    v = f"{cell.mean * col.scale:.{col.decimals}f}"
    ci = f"{cell.ci * col.scale:.{col.decimals}f}" if math.isfinite(cell.ci) else ""
    return v, ci


def header(col: Column) -> str:
    arrow = ARROW.get(col.direction or "", "")
    return f"{col.label} {arrow}".strip()


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPE.get(ch, ch) for ch in text)


def _md_cell(cell: Cell, col: Column) -> str:
    if cell.text is not None:
        return cell.text
    v, ci = fmt_number(cell, col)
    v = f"**{v}**" if cell.bold else v
    return f"{v} ± {ci}{cell.flag}" if ci else f"{v}{cell.flag}"


def render_markdown(table: Table) -> str:
    """GitHub-flavoured Markdown: title line, pipe table, notes."""
    heads = [table.row_header] + [header(c) for c in table.columns]
    lines = [
        f"**{table.title}**",
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "|".join([":---"] + ["---:"] * len(table.columns)) + "|",
    ]
    for label, cells in table.rows:
        lines.append(
            "| " + " | ".join([label] + [_md_cell(c, col) for c, col in zip(cells, table.columns)]) + " |"
        )
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
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    spec = "l" + "c" * len(table.columns)
    heads = [latex_escape(table.row_header)] + [
        f"{latex_escape(c.label)} {LATEX_ARROW.get(c.direction or '', '')}".strip() for c in table.columns
    ]
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
        lines.append(
            " & ".join([latex_escape(label)] + [_tex_cell(c, col) for c, col in zip(cells, table.columns)])
            + r" \\"
        )
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
    std = f"n={cell.n}"
    return f'<td title="{html.escape(std)}">{v}{ci_html}{flag}</td>'


def render_html(table: Table) -> str:
    """A ``<table>`` fragment (class ``results``) with caption and notes; no external resources."""
    heads = [table.row_header] + [header(c) for c in table.columns]
    backend = [""] + [
        html.escape(f"{c.metric or ''}@{c.backend}") if c.backend else "" for c in table.columns
    ]
    out = [
        f'<table class="results" id="table-{html.escape(table.name)}">',
        f"<caption>{html.escape(table.title)}</caption>",
        "<thead><tr>",
    ]
    out += [f'<th title="{b}">{html.escape(h)}</th>' for h, b in zip(heads, backend)]
    out.append("</tr></thead><tbody>")
    for label, cells in table.rows:
        tds = "".join(_html_cell(c, col) for c, col in zip(cells, table.columns))
        out.append(f'<tr><th scope="row">{html.escape(label)}</th>{tds}</tr>')
    out.append("</tbody></table>")
    out += [f'<p class="note">{html.escape(n)}</p>' for n in table.notes]
    return "\n".join(out) + "\n"

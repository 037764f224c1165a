"""The self-contained ``index.html``: tables, official VBench, clips, figures, config diffs, provenance.

Figures and clips are embedded as data URIs.
Templates are plain ``string.Template`` files in ``templates/`` (no jinja2 dependency); every value put in
is HTML-escaped here. The page loads nothing from the network and runs no script.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import pandas as pd

from aad_bench.reporting.clips import Clip
from aad_bench.reporting.plots import Figure
from aad_bench.reporting.render import Table

MAX_DIFF_KEYS = 60


def _template(name: str) -> str:
    return resources.files("aad_bench.reporting").joinpath("templates", name).read_text(encoding="utf-8")


def data_uri(path: Path) -> str:
    """A ``data:image/<png|gif>;base64,...`` URI so the page needs no side files."""
    kind = "gif" if Path(path).suffix == ".gif" else "png"
    return f"data:image/{kind};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts → ``{"a.b.c": value}`` (lists stay values)."""
    if not isinstance(obj, dict):
        return {prefix: obj} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def load_config(run_dir: str) -> dict[str, Any]:
    """A run's ``config.yaml`` flattened (empty when absent or unreadable)."""
    import yaml

    try:
        return flatten(yaml.safe_load(Path(run_dir, "config.yaml").read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError):
        return {}


def config_diffs(df: pd.DataFrame, reference: str) -> dict[str, list[tuple[str, Any, Any]]]:
    """Per arm, ``(key, reference value, arm value)`` where its first run's config differs (not seed)."""
    runs = df.drop_duplicates("run_dir")
    first = runs[runs["status"] != "missing"].groupby("arm")["run_dir"].first()
    if reference not in first:
        return {}
    ref = load_config(first[reference])
    out = {}
    for arm, run_dir in first.items():
        if arm == reference:
            continue
        cfg = load_config(run_dir)
        keys = sorted(k for k in set(ref) | set(cfg) if ref.get(k) != cfg.get(k) and k.rsplit(".", 1)[-1] != "seed")
        out[arm] = [(k, ref.get(k, "∅"), cfg.get(k, "∅")) for k in keys]
    return out


def _configs_html(diffs: dict[str, list[tuple[str, Any, Any]]]) -> str:
    if not diffs:
        return '<p class="note">No config.yaml to compare.</p>'
    parts = []
    for arm, rows in diffs.items():
        body = "".join(
            f'<tr><th scope="row">{html.escape(k)}</th><td>{html.escape(str(a))}</td>'
            f"<td>{html.escape(str(b))}</td></tr>"
            for k, a, b in rows[:MAX_DIFF_KEYS]
        )
        more = f'<p class="note">… {len(rows) - MAX_DIFF_KEYS} more</p>' if len(rows) > MAX_DIFF_KEYS else ""
        parts.append(
            f"<details><summary><code>{html.escape(arm)}</code>: {len(rows)} key(s) differ</summary>"
            f"<table><thead><tr><th>key</th><th>reference</th><th>arm</th></tr></thead>"
            f"<tbody>{body}</tbody></table>{more}</details>"
        )
    return "\n".join(parts)


def status_html(df: pd.DataFrame) -> str:
    """Run counts per status, the reason of every run that did not finish, and every unusable file."""
    runs = df.drop_duplicates("run_dir")
    counts = runs["status"].fillna("missing").value_counts()
    head = ", ".join(f"{html.escape(str(s))}: {n}" for s, n in counts.items())
    bad = runs[~runs["status"].isin(("finished", "evaluated", "reported"))]
    rows = "".join(
        f'<tr><th scope="row">{html.escape(str(r.run))}</th><td>{html.escape(str(r.arm))}</td>'
        f'<td class="bad">{html.escape(str(r.status))}</td><td>{html.escape(str(r.reason or ""))}</td>'
        "</tr>"
        for r in bad.itertuples()
    )
    table = (
        (
            f"<table><thead><tr><th>run</th><th>arm</th><th>status</th><th>reason</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
        if rows
        else ""
    )
    return f"<p>{len(runs)} runs — {head}</p>{table}{problems_html(df.attrs.get('problems') or [])}"


def problems_html(problems: list[dict]) -> str:
    """Files and index lines the report could not use, with why (``df.attrs["problems"]``)."""
    if not problems:
        return ""
    rows = "".join(
        f"<tr><td><code>{html.escape(p['path'])}</code></td><td>{html.escape(p['problem'])}</td></tr>" for p in problems
    )
    return (
        f'<p class="bad">{len(problems)} file(s) or line(s) could not be used (the rest of the report is '
        f'complete):</p><table id="problems"><thead><tr><th>file</th><th>problem</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def clips_html(clips: list[Clip], titles: dict[str, str]) -> str:
    """Each arm's looping clip per video set, arms side by side (one row per set); ``titles``: every arm."""
    if not clips:
        return '<p class="note">No videos in the runs (videos/&lt;set&gt;/*.mp4).</p>'
    arms = list(dict.fromkeys(c.arm for c in clips))
    sets = sorted({c.set for c in clips})
    titles = {c.arm: c.title for c in clips}
    by = {(c.arm, c.set): c for c in clips}
    head = "".join(f"<th>{html.escape(titles[a])}</th>" for a in arms)
    body = ""
    for s in sets:
        cells = "".join(
            f'<td><img class="clip" src="{data_uri(by[a, s].path)}" alt="{html.escape(titles[a])}, {html.escape(s)}" '
            f'title="{html.escape(by[a, s].video)}"></td>'
            if (a, s) in by
            else '<td class="missing">—</td>'
            for a in arms
        )
        body += f'<tr><th scope="row">{html.escape(s)}</th>{cells}</tr>'
    rest = [t for a, t in titles.items() if a not in set(arms)]
    more = f'<p class="note">No videos from: {html.escape(", ".join(rest))}.</p>' if rest else ""
    return (
        '<div class="clips"><table id="clips"><thead><tr><th>set</th>'
        f"{head}</tr></thead><tbody>{body}</tbody></table></div>{more}"
        '<p class="note">First video of each set from the first run of each arm, looping at its frame rate.</p>'
    )


def provenance_html(df: pd.DataFrame, max_runs: int = 500) -> str:
    """Distinct git commits, hosts and package versions over the campaign's runs."""
    shas, hosts, versions = {}, set(), {}
    for run_dir in df.drop_duplicates("run_dir")["run_dir"].head(max_runs):
        try:
            prov = json.loads(Path(run_dir, "provenance.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        git = prov.get("git") or {}
        key = f"{git.get('sha')}{' (dirty)' if git.get('dirty') else ''}"
        shas[key] = shas.get(key, 0) + 1
        hosts.add(str(prov.get("host")))
        for k, v in (prov.get("versions") or {}).items():
            versions.setdefault(k, set()).add(str(v))
    if not shas:
        return '<p class="note">No provenance.json found.</p>'
    items = [
        f"<li>git: {html.escape(', '.join(f'{k} ×{n}' for k, n in shas.items()))}</li>",
        f"<li>hosts: {html.escape(', '.join(sorted(hosts)))}</li>",
    ]
    items += [f"<li>{html.escape(k)}: {html.escape(', '.join(sorted(v)))}</li>" for k, v in sorted(versions.items())]
    return "<ul>" + "".join(items) + "</ul>"


def figures_html(figures: list[Figure]) -> str:
    """Every figure with its caption (or a line saying there is none)."""
    if not figures:
        return '<p class="note">No figure data (no curves, training logs or long videos).</p>'
    return "\n".join(
        f'<figure><img src="{data_uri(p)}" alt="{html.escape(cap)}">'
        f"<figcaption>{html.escape(cap)}</figcaption></figure>"
        for cap, p in figures
    )


def render_page(
    title: str,
    meta: str,
    df: pd.DataFrame,
    tables: list[Table],
    vbench: list[Table],
    clips: str,
    comparisons: str,
    figures: list[Figure],
    reference: str,
) -> str:
    """The whole page as one string."""
    sections = ("status", "tables", "vbench", "clips", "comparisons", "figures", "configs", "provenance")
    nav = " ".join(f'<a href="#{s}">{s}</a>' for s in sections)
    no_vbench = (
        '<p class="note">No official VBench results (eval/&lt;set&gt;/*_eval_results.json, &lt;dim&gt;@vbench.json '
        "or reported.json) in these runs.</p>"
    )
    return Template(_template("report.html")).substitute(
        title=html.escape(title),
        meta=html.escape(meta),
        nav=nav,
        css=_template("style.css"),
        status=status_html(df),
        tables="\n".join(t.html() for t in tables),
        vbench="\n".join(t.html() for t in vbench) or no_vbench,
        clips=clips,
        reference=html.escape(reference),
        comparisons=comparisons,
        figures=figures_html(figures),
        configs=_configs_html(config_diffs(df, reference)),
        provenance=provenance_html(df),
    )

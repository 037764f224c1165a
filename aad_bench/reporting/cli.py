"""``aad-bench report CAMPAIGN_DIR [--out reports/<campaign>]``: argument parsing only.

The work is :func:`aad_bench.reporting.report.write_report`. Exit codes: 0 = written, 2 = nothing to report or a
bad option (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aad_bench.reporting.report import write_report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aad-bench report",
        description="Tables, official VBench, clips, figures and an offline HTML page from run folders.",
    )
    p.add_argument("campaign", help="campaign folder (index.jsonl + runs/), a folder of runs, or one run / results")
    p.add_argument("--out", help="output folder (default: reports/<campaign name>)")
    p.add_argument("--reference", help="reference arm for paired comparisons (default: the last arm in method order)")
    p.add_argument("--no-figures", action="store_true", help="skip figures and clips")
    return p


def report_main(argv: list[str]) -> int:
    """Entry point of ``aad-bench report``; prints where the report was written."""
    args = _parser().parse_args(argv)
    campaign = Path(args.campaign)
    out = Path(args.out) if args.out else Path("reports") / campaign.resolve().name
    try:
        index = write_report(campaign, out, args.reference, figures=not args.no_figures)
    except (FileNotFoundError, NotADirectoryError, KeyError, ValueError) as e:
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        print(f"aad-bench report: error: {msg}", file=sys.stderr)
        return 2
    print(f"report: {index}")
    print(f"        {out / 'report.md'}, {out / 'runs.csv'}, {out / 'tables'}/*.tex")
    return 0

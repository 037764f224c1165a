"""``aad-bench campaign launch|relaunch|status``: a campaign folder around a Hydra multirun sweep.

    aad-bench campaign launch DIR [--preset ci] [--retry-failed] -- +ablation=smoke paths.out=/data/aad
    aad-bench campaign status DIR [--json]
    aad-bench campaign relaunch DIR [--retry-failed] [-- extra overrides]

``launch`` stores the sweep (preset + overrides) in ``DIR/campaign.json`` and runs
``aad-bench -m slurm=<preset> campaign=DIR paths.runs=DIR/runs hydra.sweep.dir=DIR/launches/<n> ...``.
``relaunch`` runs the stored sweep again: finished jobs are skipped, failed ones rerun only with
``--retry-failed``, jobs still in the queue are left alone, everything else resumes from its checkpoints.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from aad_bench.campaign.index import CampaignIndex
from aad_bench.campaign.preflight import CampaignError
from aad_bench.campaign.status import campaign_status, format_status
from aad_bench.utils.io import MalformedFileError, atomic_write_json, read_json

PRESETS = Path(__file__).resolve().parents[1] / "conf" / "slurm"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aad-bench campaign", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    la = sub.add_parser("launch", help="start a campaign (a Hydra multirun sweep) in DIR")
    la.add_argument("dir", help="campaign folder; Hydra overrides follow after --")
    la.add_argument("--preset", default="ci", help="launcher preset in slurm/ (ci, local, cluster, ...)")
    rl = sub.add_parser("relaunch", help="run DIR's sweep again: skip finished, resume the rest")
    rl.add_argument("dir")
    for q in (la, rl):
        q.add_argument("--retry-failed", action="store_true", help="also rerun jobs that failed")
    st = sub.add_parser("status", help="finished / running / pending / failed / diverged per job")
    st.add_argument("dir")
    st.add_argument("--json", action="store_true", help="one JSON object per job instead of a table")
    return p


def check_preset(name: str) -> None:
    """Unknown preset → one clear line (Hydra's own message is a page long)."""
    known = sorted(f.stem for f in PRESETS.glob("*.yaml"))
    if name not in known:
        raise CampaignError(f"unknown slurm preset {name!r} (known: {', '.join(known)})")


def hydra_path(path: Path) -> str:
    """``path`` as a Hydra override value that parses back to exactly this path (quoted).

    Unquoted, Hydra reads ``,`` as a sweep and ``(``, ``[``, quotes or non-ASCII letters as grammar, so the jobs
    would see another folder than the launcher. ``${`` (an interpolation even when quoted) and backslashes are
    refused with one line.
    """
    text = str(path)
    for bad, why in (("${", "an interpolation"), ("\\", "an escape character")):
        if bad in text:
            raise CampaignError(f"campaign folder {text!r} contains {bad!r}, which Hydra reads as {why}: "
                                "choose a folder path without it")
    return "'" + text.replace("'", "\\'") + "'"


def read_spec(meta: Path) -> dict:
    """``campaign.json``: ``{"preset": str, "overrides": [str, ...]}`` (anything else is one error naming it)."""
    spec = read_json(meta)
    if not (isinstance(spec, dict) and isinstance(spec.get("preset"), str) and isinstance(spec.get("overrides"), list)
            and all(isinstance(o, str) for o in spec["overrides"])):
        raise CampaignError(f"{meta}: malformed campaign file (expected preset: str and overrides: [str, ...])")
    return spec


def _run_sweep(root: Path, preset: str, overrides: list[str], retry_failed: bool) -> int:
    launches = root / "launches"
    n = len(list(launches.glob("*"))) if launches.exists() else 0
    sweep = launches / f"{n:03d}-{time.strftime('%Y%m%d-%H%M%S')}"  # never reused: own submitit folder
    argv = [sys.executable, "-m", "aad_bench.cli", "-m", f"slurm={preset}", f"campaign={hydra_path(root)}",
            f"paths.runs={hydra_path(root / 'runs')}", f"hydra.sweep.dir={hydra_path(sweep)}", *overrides]
    if retry_failed:
        argv.append("hydra.launcher.retry_failed=true")
    print("campaign: " + " ".join(argv[3:]), file=sys.stderr)
    rc = subprocess.call(argv)
    if (root / "index.jsonl").exists():
        index = CampaignIndex(root)
        print(format_status(campaign_status(root, index), hide=set(overrides)))
        if index.skipped:
            print(f"warning: {index.skipped_summary()}", file=sys.stderr)
    return rc


def _launch(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    check_preset(args.preset)
    hydra_path(root)  # before anything is created
    spec = {"preset": args.preset, "overrides": list(args.overrides)}
    meta = root / "campaign.json"
    if meta.exists():
        old = read_spec(meta)
        if (old["preset"], old["overrides"]) != (spec["preset"], spec["overrides"]):
            raise CampaignError(f"{root} already holds a different campaign ({' '.join(old['overrides'])}); "
                                "use `aad-bench campaign relaunch` or a new folder")
    else:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(meta, {**spec, "created": time.time()})
    return _run_sweep(root, args.preset, spec["overrides"], args.retry_failed)


def _relaunch(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    if not (root / "campaign.json").exists():
        raise CampaignError(f"{root} is not a campaign folder (no campaign.json): use `campaign launch`")
    spec = read_spec(root / "campaign.json")
    check_preset(spec["preset"])
    return _run_sweep(root, spec["preset"], [*spec["overrides"], *args.overrides], args.retry_failed)


def campaign_main(argv: list[str]) -> int:
    """Entry point of ``aad-bench campaign``; returns the exit code."""
    # everything after `--` is Hydra's (argparse would bind it to the wrong positional)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = _parser().parse_args(argv[:cut])
    args.overrides = list(argv[cut + 1:])
    try:
        if args.cmd == "status":
            index = CampaignIndex(args.dir)
            rows = campaign_status(args.dir, index)
            if args.json:
                print("\n".join(json.dumps(r) for r in rows))
            else:
                spec = Path(args.dir) / "campaign.json"
                print(format_status(rows, hide=set(read_spec(spec)["overrides"]) if spec.exists() else set()))
            if index.skipped:
                print(f"warning: {index.skipped_summary()}", file=sys.stderr)
            return 0
        return _launch(args) if args.cmd == "launch" else _relaunch(args)
    except (CampaignError, MalformedFileError) as e:
        print(f"aad-bench campaign: error: {e}", file=sys.stderr)
        return 2

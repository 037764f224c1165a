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

from aad_bench.campaign.preflight import CampaignError
from aad_bench.campaign.status import campaign_status, format_status
from aad_bench.utils.io import atomic_write_json, read_json

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


def _run_sweep(root: Path, preset: str, overrides: list[str], retry_failed: bool) -> int:
    launches = root / "launches"
    n = len(list(launches.glob("*"))) if launches.exists() else 0
    sweep = launches / f"{n:03d}-{time.strftime('%Y%m%d-%H%M%S')}"  # never reused: own submitit folder
    argv = [sys.executable, "-m", "aad_bench.cli", "-m", f"slurm={preset}", f"campaign={root}",
            f"paths.runs={root / 'runs'}", f"hydra.sweep.dir={sweep}", *overrides]
    if retry_failed:
        argv.append("hydra.launcher.retry_failed=true")
    print("campaign: " + " ".join(argv[3:]), file=sys.stderr)
    rc = subprocess.call(argv)
    if (root / "index.jsonl").exists():
        print(format_status(campaign_status(root), hide=set(overrides)))
    return rc


def _launch(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    check_preset(args.preset)
    spec = {"preset": args.preset, "overrides": list(args.overrides)}
    meta = root / "campaign.json"
    if meta.exists():
        old = read_json(meta)
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
    spec = read_json(root / "campaign.json")
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
            rows = campaign_status(args.dir)
            if args.json:
                print("\n".join(json.dumps(r) for r in rows))
            else:
                spec = Path(args.dir) / "campaign.json"
                print(format_status(rows, hide=set(read_json(spec)["overrides"]) if spec.exists() else set()))
            return 0
        return _launch(args) if args.cmd == "launch" else _relaunch(args)
    except CampaignError as e:
        print(f"aad-bench campaign: error: {e}", file=sys.stderr)
        return 2

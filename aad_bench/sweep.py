"""What a command line means before anything runs.

Config-group options are checked with "did you mean", and the jobs a sweep would launch are listed
(``aad-bench ... --dry-run``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aad_bench.config import CONF_DIR, compose, run_dir
from aad_bench.registry import Registry
from aad_bench.runfolder import RunFolder

# groups a user selects on the command line (``ablation`` is added with ``+ablation=``)
GROUPS = ("method", "baseline", "ablation", "model", "world", "teacher", "size", "slurm")


def _search_dirs(argv: list[str]) -> list[Path]:
    """The config tree plus any ``hydra.searchpath=[file://...]`` folders given on the command line."""
    dirs = [Path(CONF_DIR)]
    for arg in argv:
        key, _, value = arg.lstrip("+~").partition("=")
        if key == "hydra.searchpath":
            dirs += [Path(v.strip().removeprefix("file://")) for v in value.strip("[]").split(",") if v.strip()]
    return dirs


def group_options(argv: list[str] | None = None) -> dict[str, list[str]]:
    """Every selectable group and its options (file stems), including the user's search-path folders."""
    out: dict[str, set[str]] = {}
    for d in _search_dirs(argv or []):
        for g in GROUPS:
            if (d / g).is_dir():
                out.setdefault(g, set()).update(p.stem for p in (d / g).glob("*.yaml"))
    return {g: sorted(v) for g, v in out.items()}


def check_group_choices(argv: list[str]) -> None:
    """Raise ``ValueError`` (with did-you-mean) for ``group=option`` where the option does not exist."""
    options = group_options(argv)
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key not in options or value in ("", "null"):
            continue
        reg: Registry[str] = Registry(key)
        for name in options[key]:
            reg.register(name, name)
        for choice in value.split(","):  # a sweep: method=aad1,symmetric
            if choice not in reg:
                raise ValueError(reg.unknown_message(choice).replace("Registered:", "Options:"))


def expand_jobs(argv: list[str]) -> list[list[str]]:
    """The override list of every job the command line would run (one job when it is not a sweep)."""
    from hydra import compose as h_compose
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(argv) if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = h_compose(config_name="config", overrides=fixed, return_hydra_config=True)
    params = cfg.hydra.sweeper.get("params") or {}
    # as Hydra's basic sweeper: the file's sweep first, the command line after it (a later key wins)
    merged = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(argv))
    return [list(job) for batch in BasicSweeper.split_arguments(merged, None) for job in batch]


def plan(argv: list[str]) -> list[dict[str, Any]]:
    """For each job of the command line: its overrides, run folder and the run's current status."""
    rows = []
    for i, job in enumerate(expand_jobs(argv)):
        cfg = compose(job)
        rd = run_dir(cfg)
        rows.append({"job": i, "overrides": job, "run_dir": str(rd), "task": cfg.task,
                     "status": RunFolder(rd).status or "new"})
    return rows


def format_plan(rows: list[dict[str, Any]], argv: list[str]) -> str:
    """The dry run's printout: job count, then one line per job with the overrides that vary between jobs."""
    common = set.intersection(*(set(r["overrides"]) for r in rows)) if rows else set()
    lines = [f"{len(rows)} job(s) for: aad-bench {' '.join(argv)}  (dry run: nothing launched)",
             f"shared overrides: {' '.join(o for o in rows[0]['overrides'] if o in common) or '-'}" if rows else ""]
    for r in rows:
        varying = " ".join(o for o in r["overrides"] if o not in common) or "-"
        lines.append(f"  {r['job']:>3}  {r['status']:<9} {varying:<48} {Path(r['run_dir']).name}")
    return "\n".join(lines)

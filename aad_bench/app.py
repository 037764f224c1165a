"""The Hydra application behind ``aad-bench [train]``: compose the config, check it, pick the task, run it.

The config is checked against :mod:`aad_bench.schema` before the task does any work. A bad job is one line on
stderr: a single run exits 2; in a multirun the job is recorded as ``failed`` (``results.json`` in its run folder;
the campaign launchers also index it) and the sweep goes on, and ``aad-bench`` exits 1 at the end.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from aad_bench.config import CONF_DIR, hydra_overrides, run_dir
from aad_bench.registry import UnknownNameError
from aad_bench.runfolder import RunFolder
from aad_bench.schema import ConfigError, check_config, folder
from aad_bench.tasks import TASKS
from aad_bench.training.checkpoint import CheckpointError
from aad_bench.utils import outcome
from aad_bench.utils.io import MalformedFileError, atomic_write_text
from aad_bench.utils.ownership import FolderBusyError

# errors that are the user's input or the state of a folder, not a bug: one line, never a traceback
USER_ERRORS = (UnknownNameError, ValueError, FileNotFoundError, CheckpointError, FolderBusyError,
               MalformedFileError)


def run_task(cfg: DictConfig) -> dict[str, Any]:
    """Check ``cfg`` against the schema, then run ``cfg.task``; returns its results dict."""
    check_config(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    return TASKS.get(cfg.task)(cfg)


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _job_label() -> str:
    from hydra.core.hydra_config import HydraConfig

    return f"job {HydraConfig.get().job.num} ({' '.join(hydra_overrides()) or 'no overrides'}): "


def record_failed(cfg: DictConfig, reason: str) -> str | None:
    """Write ``status: failed`` into the job's run folder; returns the folder (None: nothing written).

    Nothing is written when the run ended otherwise (finished, diverged), when a live process owns the folder,
    or when there is no usable folder (e.g. ``paths.out`` cannot be created).
    """
    try:
        run = RunFolder(run_dir(cfg))
        if run.results().get("status") in ("finished", "diverged") or run.lock.live_owner():
            return None
        run.path.mkdir(parents=True, exist_ok=True)
        if not (run.path / "config.yaml").exists():
            atomic_write_text(run.path / "config.yaml", OmegaConf.to_yaml(cfg))
        method = OmegaConf.select(cfg, "method.name", default=None)
        run.update(status="failed", reason=reason, task=cfg.get("task"), method=method, seed=cfg.get("seed"),
                   overrides=hydra_overrides(), run_dir=str(run.path), campaign=cfg.get("campaign"))
        return str(run.path)
    except Exception:  # the folder itself is the problem: the error line is all there is
        return None


def _job_error(cfg: DictConfig, e: Exception, expected: bool) -> dict[str, Any]:
    if os.environ.get("AAD_BENCH_RAISE"):
        raise  # called inside the except clause: re-raises the job's own error
    multirun = _multirun()
    if not expected:
        traceback.print_exc()
    print(f"aad-bench: error: {_job_label() if multirun else ''}{e}", file=sys.stderr)
    if not multirun:
        sys.exit(2)
    if isinstance(e, FolderBusyError):  # the live owner records its own outcome
        outcome.note_failure(str(e))
        return {"status": "busy", "reason": str(e)}
    reason = f"{type(e).__name__}: {e}"
    outcome.note_failure(reason)
    return {"status": "failed", "reason": reason, "run_dir": record_failed(cfg, reason)}


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> Any:
    try:
        return run_task(cfg)
    except USER_ERRORS as e:
        return _job_error(cfg, e, expected=True)
    except Exception as e:
        if not _multirun():
            raise
        return _job_error(cfg, e, expected=False)  # a crash in one job of a sweep: traceback, then go on


def preflight(argv: list[str]) -> None:
    """Check the command line's config before Hydra creates its output folders (single runs: the whole schema).

    In a sweep only what every job shares is checked here (the folders); each job checks the rest when it starts.
    Command lines this cannot compose (Hydra flags, bad override syntax) are left to Hydra's own errors.
    """
    flags = [a for a in argv if a.startswith("-")]
    if set(flags) - {"-m", "--multirun"}:
        return
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides([a for a in argv if not a.startswith("-")])
        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=fixed, return_hydra_config=True)
    except Exception:
        return
    multirun = bool(flags) or OmegaConf.select(cfg, "hydra.mode", default=None) == "MULTIRUN"
    out_dir = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    hydra_dir = OmegaConf.select(cfg, out_dir, default=None)
    with open_dict(cfg):
        del cfg["hydra"]
    if not multirun:
        check_config(cfg)
    for key in ("paths.out", "paths.runs", "paths.cache"):
        problem = folder()(OmegaConf.select(cfg, key, default=None))
        if problem:
            raise ConfigError(f"{key}={OmegaConf.select(cfg, key)!r}: {problem}")
    problem = folder()(str(hydra_dir))
    if problem:
        raise ConfigError(f"{out_dir}={str(hydra_dir)!r}: {problem}")


def run_hydra(argv: list[str]) -> int:
    """Run the Hydra app with ``argv`` as its command line; 1 when any job of a sweep failed."""
    try:
        preflight(argv)
    except ConfigError as e:
        print(f"aad-bench: error: {e}", file=sys.stderr)
        return 2
    sys.argv = [sys.argv[0] if sys.argv else "aad-bench", *argv]
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    outcome.reset()
    _hydra_main()
    failed = outcome.failures()
    if failed:
        print(f"aad-bench: {len(failed)} job(s) failed", file=sys.stderr)
    return 1 if failed else 0

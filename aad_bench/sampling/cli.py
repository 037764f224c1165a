"""``aad-bench sample RUN_OR_DIR``: (re)sample videos from finished runs' final weights, without training.

Sampling and scoring are separate steps: this writes ``videos/train_len`` and ``videos/long`` (video sets with
``index.json``) and leaves evaluation to ``aad-bench eval``.

Only a run's final (EMA) checkpoint is sampled: a corrupt or missing one is an error naming the file, never a
silent fallback to earlier weights. Over a folder of runs, runs that did not finish (diverged, failed, running)
are skipped with a line and a run that cannot be sampled is reported and counted; the others are still sampled
and the exit code is 1 when any finished run failed.

``aad-bench sample --public NAME --like RUN`` samples a public checkpoint on a run's conditioning instead
(:mod:`aad_bench.sampling.public`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from aad_bench.data.sources import training_data
from aad_bench.engine.runtime import resolve_device
from aad_bench.engine.settings import TrainerSettings
from aad_bench.models.backbones import build_backbone
from aad_bench.runfolder import RunFolder
from aad_bench.sampling.videos import motion_line, sample_run
from aad_bench.schema import check_config
from aad_bench.training.checkpoint import CheckpointError, load_final
from aad_bench.training.teacher import get_teacher
from aad_bench.utils.io import MalformedFileError
from aad_bench.utils.ownership import FolderBusyError


class NotFinishedError(ValueError):
    """The run did not finish (diverged, failed, still running): it has no final weights to sample."""


def find_runs(path: Path) -> list[Path]:
    """``path`` itself if it is a run folder, else the run folders below it (campaign ``runs/`` included)."""
    if (path / "results.json").exists():
        return [path]
    runs = sorted(p.parent for p in path.rglob("results.json") if (p.parent / "config.yaml").exists())
    if not runs:
        raise FileNotFoundError(f"{path}: no run folders (results.json + config.yaml) here")
    return runs


def sample_one(run_path: Path, overrides: list[str]) -> dict[str, Any]:
    """Rebuild the run's final generator (its final, EMA, weights) and sample it; returns the motion summary."""
    run = RunFolder(run_path)
    if run.results().get("task") == "public":  # no training config to rebuild: its own command samples it
        raise NotFinishedError(f"{run_path}: a public checkpoint's run; sample it with `aad-bench sample --public "
                               f"{run.results().get('method')} --like ...`")
    if run.status != "finished":
        raise NotFinishedError(f"{run_path}: status is {run.status!r}; only finished runs are sampled")
    cfg = OmegaConf.merge(OmegaConf.load(run_path / "config.yaml"), OmegaConf.from_dotlist(overrides))
    check_config(cfg)
    device = resolve_device(TrainerSettings.from_cfg(cfg.get("trainer")))  # trainer.device=cpu|cuda|auto
    with run.owned():  # not while another process writes the folder
        if cfg.method.stages:
            model = build_backbone(cfg.model)
            model.load_state_dict(load_final(run.checkpoints, list(cfg.method.stages))["student"])
            model.eval().requires_grad_(False)
        else:
            model, _ = get_teacher(cfg, training_data(cfg), progress=cfg.progress)
        summary = sample_run(cfg, run, model.to(device))
        run.update(sampled=summary)
    return summary


def sample_main(argv: list[str]) -> int:
    """CLI entry: ``aad-bench sample PATH [key=value ...]`` (e.g. ``sample.n_videos=32 sample.seed=7``).

    ``aad-bench sample --public NAME ...`` samples a public checkpoint instead (:func:`public_main`).
    """
    if any(a == "--public" or a.startswith("--public=") for a in argv):
        return public_main(argv)
    ap = argparse.ArgumentParser(prog="aad-bench sample", description=__doc__)
    ap.add_argument("path", type=Path, help="a run folder or a folder of run folders")
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. sample.n_videos=32 sample.n_long=4")
    args = ap.parse_args(argv)
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise ValueError(f"overrides must look like key=value, got {bad}")
    runs = find_runs(args.path)
    single = runs == [args.path]  # one named run: not finished is the command's error (exit 2)
    done, skipped, failed = 0, 0, 0
    for run_path in runs:
        try:
            s = sample_one(run_path, args.overrides)
        except NotFinishedError as e:
            if single:
                raise
            skipped += 1
            print(f"skipped {e}")
            continue
        except (CheckpointError, FolderBusyError, MalformedFileError, ValueError, OSError) as e:
            failed += 1
            msg = str(e) if str(run_path) in str(e) else f"{run_path}: {e}"
            print(f"aad-bench sample: error: {msg}", file=sys.stderr)
            continue
        done += 1
        print(f"{run_path}/videos: {motion_line(s)}")
    if not single:
        print(f"sampled {done} run(s), skipped {skipped} not finished, {failed} failed")
    return 1 if failed else 0


def public_main(argv: list[str]) -> int:
    """``aad-bench sample --public NAME (--like RUN | --images DIR) [--out DIR] [--sets a,b] [key=value ...]``."""
    from aad_bench.sampling.public import PUBLIC, compose_public, run_public

    ap = argparse.ArgumentParser(
        prog="aad-bench sample --public",
        description="Sample a public checkpoint (conf/public/NAME.yaml) on the conditioning images, captions, seeds "
                    "and lengths of a run's video sets (or a VBench-I2V-style image folder) into a run folder that "
                    "`aad-bench eval` and `aad-bench report` treat like ours. Docs: docs/wan.md.")
    ap.add_argument("--public", required=True, metavar="NAME", help=f"one of {', '.join(PUBLIC.names())}")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--like", type=Path, metavar="RUN", help="a run folder whose video sets to match")
    src.add_argument("--images", type=Path, metavar="DIR", help="a VBench-I2V-style folder of images + prompts")
    ap.add_argument("--out", type=Path, help="the run folder (default: public-NAME-<hash> beside RUN, "
                                             "or under paths.runs)")
    ap.add_argument("--sets", help="with --like: only these video sets (comma list)")
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. public.checkpoint.path=/x.pt "
                                                 "trainer.device=cuda public.sampler.batch=4")
    args = ap.parse_intermixed_args(argv)
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise ValueError(f"overrides must look like key=value, got {bad}")
    src_key, src_path = ("public.like", args.like) if args.like else ("public.images", args.images)
    extra = [f"{src_key}='{src_path.resolve()}'"]  # quoted: Hydra's override grammar reserves , : [ ] ...
    if args.out:
        extra.append(f"run_dir='{args.out.resolve()}'")
    if args.sets:
        extra.append(f"public.sets=[{args.sets}]")
    cfg = compose_public(args.public, [*extra, *args.overrides])
    try:
        res = run_public(cfg, args.overrides)
    except (CheckpointError, FolderBusyError, MalformedFileError) as e:
        print(f"aad-bench sample: error: {e}", file=sys.stderr)
        return 2
    return 0 if res.get("status") == "finished" else 1

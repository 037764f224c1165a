"""The ``aad-bench`` entry point.

``aad-bench [train] [hydra overrides...]`` runs the Hydra app (``-m`` for multirun / SLURM campaigns; add
``--dry-run`` to list the jobs instead); ``aad-bench sample|eval|diagnose|report|campaign ...`` are plain verbs on
run folders; ``aad-bench --help`` lists both.
"""

from __future__ import annotations

import importlib
import sys

VERBS = {
    "sample": ("aad_bench.sampling.cli:sample_main",
               "(re)sample videos from finished runs' final weights; --public NAME: a public checkpoint beside them"),
    "eval": ("aad_bench.evaluation.cli:eval_main", "score video sets -> eval/<set>/<metric>@<backend>.json"),
    "diagnose": ("aad_bench.evaluation.cli:diagnose_main", "motion-collapse diagnosis of a video set"),
    "report": ("aad_bench.reporting.cli:report_main", "tables, figures and an HTML report from run folders"),
    "campaign": ("aad_bench.campaign.cli:campaign_main", "launch | status | relaunch an indexed campaign"),
    "consolidate": ("aad_bench.engine.checkpoint:main", "a sharded (multi-process) checkpoint -> one file"),
}
EXAMPLES = """\
examples:
  aad-bench                                          the embedded default: toy comparison of four arms
  aad-bench method=aad1 task=distill                 one distillation run
  aad-bench -m +ablation=disc_2x2                    the 2x2 discriminator study (a sweep; add --dry-run to list it)
  aad-bench -m +ablation=disc_2x2 slurm=cluster hydra.launcher.partition=gpu
  torchrun --nproc_per_node=8 -m aad_bench.cli task=distill trainer=gpu   one run on 8 GPUs (FSDP2, bf16)
  aad-bench sample --public self_forcing_dmd --like RUN   a public checkpoint on RUN's images (docs/wan.md)
  aad-bench eval RUN_OR_DIR && aad-bench report CAMPAIGN/runs --out reports/camp"""


def help_text() -> str:
    """``aad-bench --help``: verbs, the training app's config groups and options, examples."""
    from aad_bench.sweep import group_options

    lines = ["usage: aad-bench [train] [-m] [group=option ...] [key=value ...] [--dry-run]",
             "       aad-bench VERB ARGS   (VERB --help for its options)", "", "verbs:",
             *(f"  {v:<10} {d}" for v, (_, d) in VERBS.items()),
             "  train      (default) the Hydra app: task=demo|teacher|distill|sample|public|toy_data", "",
             "config groups (group=option; ablations are added with +ablation=<name>):"]
    lines += [f"  {g:<10} {', '.join(opts)}" for g, opts in group_options().items()]
    lines += ["", "any setting: key=value (e.g. seed=1 method.gan.steps=200); "
              "`aad-bench --cfg job [overrides]` prints the composed config; --hydra-help shows Hydra's own help.",
              "", EXAMPLES]
    return "\n".join(lines)


def _verb(name: str, argv: list[str]) -> int:
    module, _, attr = VERBS[name][0].partition(":")
    fn = getattr(importlib.import_module(module), attr)
    return int(fn(argv) or 0)


def _train(argv: list[str]) -> int:
    from aad_bench.sweep import check_group_choices, format_plan, plan

    if "--hydra-help" in argv:
        argv = [("--help" if a == "--hydra-help" else a) for a in argv]
    else:
        check_group_choices(argv)  # "did you mean" before Hydra's own error
    if "--dry-run" in argv:
        overrides = [a for a in argv if not a.startswith("-")]
        rows = plan(overrides)
        print(format_plan(rows, [a for a in argv if a != "--dry-run"]))
        if len(rows) > 1 and not {"-m", "--multirun"} & set(argv):
            print("note: this is a sweep; launch it with -m (--multirun)")
        return 0
    from aad_bench.app import run_hydra

    return run_hydra(argv)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a verb, the help, or the Hydra app."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(help_text())
        return 0
    verb = argv[0] if argv and argv[0] in VERBS else "train"
    args = argv[1:] if argv and argv[0] in (*VERBS, "train") else argv
    try:
        return _verb(verb, args) if verb != "train" else _train(args)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"aad-bench {verb}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # Hydra's own errors (bad override syntax, ...) as one line, not a traceback
        if type(e).__module__.startswith("hydra") or type(e).__module__.startswith("omegaconf"):
            print(f"aad-bench {verb}: error: {str(e).splitlines()[0]}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())

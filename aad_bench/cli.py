"""The ``aad-bench`` entry point.

``aad-bench [train] [hydra overrides...]`` runs the Hydra app (``-m`` for multirun / SLURM campaigns);
``aad-bench sample|eval|diagnose|report|campaign ...`` are plain verbs on run folders.
"""

from __future__ import annotations

import importlib
import sys

VERBS = {
    "sample": "aad_bench.sampling.cli:sample_main",
    "eval": "aad_bench.evaluation.cli:eval_main",
    "diagnose": "aad_bench.evaluation.cli:diagnose_main",
    "report": "aad_bench.reporting.cli:report_main",
    "campaign": "aad_bench.campaign.cli:campaign_main",
}


def _verb(name: str, argv: list[str]) -> int:
    module, _, attr = VERBS[name].partition(":")
    fn = getattr(importlib.import_module(module), attr)
    return int(fn(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a verb or to the Hydra app."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in VERBS:
        try:
            return _verb(argv[0], argv[1:])
        except (FileNotFoundError, ValueError, KeyError) as e:
            print(f"aad-bench {argv[0]}: error: {e}", file=sys.stderr)
            return 2
    if argv and argv[0] == "train":
        argv = argv[1:]
    from aad_bench.app import run_hydra

    return run_hydra(argv)


if __name__ == "__main__":
    sys.exit(main())

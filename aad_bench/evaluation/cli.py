"""``aad-bench eval`` and ``aad-bench diagnose`` argument parsing (wired in ``aad_bench/cli.py``).

Exit codes: 0 = everything was scored, 1 = some videos could not be scored (their rows name them),
2 = a setup error (bad option, unknown name, empty folder), reported in one line before any work.
"""

from __future__ import annotations

import argparse
import sys

from aad_bench.evaluation.metrics import METRICS, backend_choices
from aad_bench.utils.io import MalformedFileError

SETUP_ERRORS = (FileNotFoundError, KeyError, ValueError, ImportError, RuntimeError, MalformedFileError)


def _csv(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


def _int_at_least(lo: int, what: str):
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {s!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{what} must be >= {lo}, got {v}")
        return v

    return parse


def _positive(what: str):
    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {s!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"{what} must be > 0, got {s}")
        return v

    return parse


def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aad-bench eval",
        description=(
            "Score video sets: a run folder, a folder of run folders, or a bare folder of mp4s. Writes "
            "eval/<set>/<metric>@<backend>.json; finished metrics are skipped unless --force. Exit 1 only when "
            "some video could not be scored."
        ),
    )
    p.add_argument("paths", nargs="+", help="run folder(s), folder(s) of run folders, or video folder(s)")
    p.add_argument("--metrics", help="comma list (default: every registered metric that applies; see --list)")
    p.add_argument("--sets", help="comma list of video sets to score (default: all)")
    p.add_argument("--flow", help="flow backend: dis (default), dis-fast, dis-ultrafast, raft")
    p.add_argument("--features", help="feature backend: pixel (default, weight-free), dino, clip, dreamsim")
    p.add_argument("--quality", help="imaging-quality backend: sharpness (default, weight-free), musiq")
    p.add_argument("--drift", help="drift backend: sharpness-mc (default), musiq (paper), sharpness")
    p.add_argument("--interp", help="motion_smoothness interpolator: dis (default), blend, amt")
    p.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="METRIC=NAME",
        help="per-metric backend override, e.g. subject_consistency=dino (repeatable)",
    )
    p.add_argument(
        "--n-segments",
        type=_int_at_least(2, "--n-segments"),
        default=5,
        help="drift: equal segments per video (>= 2, default 5)",
    )
    p.add_argument(
        "--segment-s", type=_positive("--segment-s"), help="drift: segment length in seconds (overrides --n-segments)"
    )
    p.add_argument(
        "--device",
        default="auto",
        help="device of weight-based backends (RAFT, DINO, CLIP, DreamSim, MUSIQ) and official VBench: auto "
        "(CUDA when present, default), cpu, cuda[:N]; weight-free backends ignore it",
    )
    p.add_argument("--force", action="store_true", help="recompute finished metrics")
    p.add_argument("--vbench", help="also run official VBench for these comma-separated dimensions")
    p.add_argument("--vbench-python", help="python executable of a separate env where vbench is installed")
    p.add_argument("--list", action="store_true", help="list metrics and backends, then exit")
    return p


def _list_metrics() -> None:
    for name in METRICS.names():
        m = METRICS.get(name)
        arrow = {"up": "↑", "down": "↓"}.get(m.direction or "", "→1")
        print(f"{name:24s} v{m.version} {arrow:2s} backends: {','.join(backend_choices(m)):28s} {m.doc}")


def _fail(verb: str, e: BaseException) -> int:
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    print(f"aad-bench {verb}: error: {msg}", file=sys.stderr)
    return 2


def eval_main(argv: list[str]) -> int:
    """``aad-bench eval PATH...``: 0 if all was scored, 1 if some videos failed, 2 on setup errors."""
    args = _eval_parser().parse_args(argv)
    if args.list:
        _list_metrics()
        return 0
    try:
        return _eval(args)
    except SETUP_ERRORS as e:
        return _fail("eval", e)


def _backends(args: argparse.Namespace) -> dict[str, str]:
    kinds = ("flow", "features", "quality", "drift", "interp")
    backends = {k: getattr(args, k) for k in kinds if getattr(args, k)}
    for spec in args.backend:
        metric, sep, name = spec.partition("=")
        if not sep or not metric.strip() or not name.strip():
            raise ValueError(f"--backend expects METRIC=NAME, got {spec!r}")
        backends[metric.strip()] = name.strip()
    return backends


def _eval(args: argparse.Namespace) -> int:
    from aad_bench.evaluation.device import resolve_eval_device
    from aad_bench.evaluation.runner import check_names, evaluate_path

    backends = _backends(args)
    metrics = _csv(args.metrics)
    check_names(metrics or [], backends)
    device = resolve_eval_device(args.device)  # `cuda` without a GPU: one line, before any work
    cfg = {"device": device, "n_segments": args.n_segments}
    if args.segment_s:
        cfg["segment_s"] = args.segment_s
    n_err = 0
    for path in args.paths:
        written, e = evaluate_path(path, metrics, backends, cfg, _csv(args.sets), args.force)
        n_err += e
        print(f"{path}: {len(written)} result file(s) written")
        if args.vbench:
            _run_vbench(path, args)
    if n_err:
        print(f"{n_err} video score(s) could not be computed; see 'errors' in the result files", file=sys.stderr)
    return 1 if n_err else 0


def _run_vbench(path: str, args: argparse.Namespace) -> None:
    """Official VBench gets ``--device`` as given: its own interpreter (own torch) resolves ``auto``."""
    from aad_bench.evaluation.runner import find_targets
    from aad_bench.evaluation.vbench_adapter import evaluate_official

    for t in find_targets(path, _csv(args.sets)):
        for out in evaluate_official(
            t.set_dir, t.out_dir, _csv(args.vbench) or [], device=args.device, python=args.vbench_python
        ):
            print(f"wrote {out}")


def _diagnose_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aad-bench diagnose",
        description=(
            "Per-video motion curves, freeze / fading / first-frame-copy detection, share of collapsed videos. "
            "DIR is a run folder or a video-set folder; writes DIR/diagnosis.csv and DIR/diagnosis/. Exit 1 when "
            "some video could not be read (its row says why)."
        ),
    )
    p.add_argument("dir")
    p.add_argument("--flow", default="dis", help="flow backend (default dis)")
    p.add_argument("--data", help="video-set folder of data clips to compare motion against")
    p.add_argument(
        "--freeze-px",
        type=_positive("--freeze-px"),
        default=None,
        help="visible motion (px/frame, native resolution) below which a pair is still (default 0.1)",
    )
    p.add_argument(
        "--chunk",
        type=_int_at_least(1, "--chunk"),
        help="frames per chunk (>= 1; default: index 'chunk_frames' or T/4)",
    )
    p.add_argument("--sets", help="comma list of sets (run folders only)")
    p.add_argument("--device", default="auto", help="device of a weight-based flow (--flow raft): auto, cpu, cuda")
    return p


def diagnose_main(argv: list[str]) -> int:
    """``aad-bench diagnose DIR``: motion-collapse diagnosis (``DIR/diagnosis.csv``, verdict, plots)."""
    args = _diagnose_parser().parse_args(argv)
    from aad_bench.evaluation.device import eval_device, resolve_eval_device
    from aad_bench.evaluation.diagnose import diagnose
    from aad_bench.evaluation.motion import FREEZE_PX

    try:
        device = resolve_eval_device(args.device)
        with eval_device(device):
            res = diagnose(
                args.dir,
                flow=args.flow,
                data_dir=args.data,
                freeze_px=args.freeze_px or FREEZE_PX,
                chunk=args.chunk,
                sets=_csv(args.sets),
            )
    except SETUP_ERRORS as e:
        return _fail("diagnose", e)
    print(res["verdict"])
    print(f"wrote {res['csv']} and {res['folder']}")
    if res["errors"]:
        names = ", ".join(sorted(res["errors"]))
        print(f"{len(res['errors'])} video(s) could not be read: {names} (rows in {res['csv']})", file=sys.stderr)
        return 1
    return 0

"""``aad-bench eval`` and ``aad-bench diagnose`` argument parsing (wired in ``aad_bench/cli.py``)."""

from __future__ import annotations

import argparse
import sys

from aad_bench.evaluation.runner import DEFAULT_METRICS


def _csv(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aad-bench eval",
        description=(
            "Score video sets: a run folder, a folder of run folders, or a bare folder of mp4s. Writes "
            "eval/<set>/<metric>@<backend>.json; finished metrics are skipped unless --force."
        ),
    )
    p.add_argument("paths", nargs="+", help="run folder(s), folder(s) of run folders, or video folder(s)")
    p.add_argument("--metrics", help=f"comma list (default: all applicable: {','.join(DEFAULT_METRICS)})")
    p.add_argument("--sets", help="comma list of video sets to score (default: all)")
    p.add_argument("--flow", help="flow backend: dis (default), dis-fast, dis-ultrafast, raft")
    p.add_argument("--features", help="feature backend: pixel (default, weight-free), dino, clip, dreamsim")
    p.add_argument("--quality", help="imaging-quality backend: sharpness (default, weight-free), musiq")
    p.add_argument("--interp", help="motion_smoothness interpolator: dis (default), blend, amt")
    p.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="METRIC=NAME",
        help="per-metric backend override, e.g. subject_consistency=dino (repeatable)",
    )
    p.add_argument("--n-segments", type=int, default=5, help="drift: equal segments per video (default 5)")
    p.add_argument(
        "--segment-s", type=float, help="drift: segment length in seconds (overrides --n-segments)"
    )
    p.add_argument("--device", default="cpu", help="torch device for weight-based backends")
    p.add_argument("--force", action="store_true", help="recompute finished metrics")
    p.add_argument("--vbench", help="also run official VBench for these comma-separated dimensions")
    p.add_argument("--vbench-python", help="python executable of a separate env where vbench is installed")
    p.add_argument("--list", action="store_true", help="list metrics and backends, then exit")
    return p


def _list_metrics() -> None:
    from aad_bench.evaluation.metrics import backend_choices, load_all

    reg = load_all()
    for name in reg.names():
        m = reg.get(name)
        arrow = {"up": "↑", "down": "↓"}.get(m.direction or "", "→1")
        print(
            f"{name:24s} v{m.version} {arrow:2s} "
            f"backends: {','.join(backend_choices(m.backend_kind)):28s} {m.doc}"
        )


def eval_main(argv: list[str]) -> int:
    """``aad-bench eval PATH...``: 0 if all was scored, 1 if some videos failed, 2 on setup errors."""
    try:
        return _eval(_eval_parser().parse_args(argv))
    except (ImportError, RuntimeError) as e:  # missing optional package / official VBench / AMT: say what
        print(f"aad-bench eval: error: {e}", file=sys.stderr)
        return 2


def _eval(args: argparse.Namespace) -> int:
    if args.list:
        _list_metrics()
        return 0
    from aad_bench.evaluation.runner import evaluate_path

    backends = {
        k: v
        for k, v in (
            ("flow", args.flow),
            ("features", args.features),
            ("quality", args.quality),
            ("interp", args.interp),
        )
        if v
    }
    for spec in args.backend:
        metric, sep, name = spec.partition("=")
        if not sep:
            raise ValueError(f"--backend expects METRIC=NAME, got {spec!r}")
        backends[metric.strip()] = name.strip()
    cfg = {"device": args.device, "n_segments": args.n_segments}
    if args.segment_s:
        cfg["segment_s"] = args.segment_s
    n_err = 0
    for path in args.paths:
        written, e = evaluate_path(path, _csv(args.metrics), backends, cfg, _csv(args.sets), args.force)
        n_err += e
        print(f"{path}: {len(written)} result file(s) written")
        if args.vbench:
            _run_vbench(path, args)
    if n_err:
        print(f"{n_err} video(s) could not be scored; see 'errors' in the result files", file=sys.stderr)
    return 1 if n_err else 0


def _run_vbench(path: str, args: argparse.Namespace) -> None:
    from aad_bench.evaluation.runner import find_targets
    from aad_bench.evaluation.vbench_adapter import evaluate_official

    for t in find_targets(path, _csv(args.sets)):
        for out in evaluate_official(
            t.set_dir, t.out_dir, _csv(args.vbench) or [], device=args.device, python=args.vbench_python
        ):
            print(f"wrote {out}")


def diagnose_main(argv: list[str]) -> int:
    """``aad-bench diagnose DIR``: motion-collapse diagnosis (``DIR/diagnosis.csv``, verdict, plots)."""
    p = argparse.ArgumentParser(
        prog="aad-bench diagnose",
        description=(
            "Per-video motion curves, freeze and first-frame-copy detection, share of collapsed videos. "
            "DIR is a run folder or a video-set folder; writes DIR/diagnosis.csv and DIR/diagnosis/."
        ),
    )
    p.add_argument("dir")
    p.add_argument("--flow", default="dis", help="flow backend (default dis)")
    p.add_argument("--data", help="video-set folder of data clips to compare motion against")
    p.add_argument(
        "--freeze-px", type=float, default=0.5, help="freeze threshold in px at 256 px (default 0.5)"
    )
    p.add_argument("--chunk", type=int, help="frames per chunk (default: index 'chunk_frames' or T/4)")
    p.add_argument("--sets", help="comma list of sets (run folders only)")
    args = p.parse_args(argv)
    from aad_bench.evaluation.diagnose import diagnose

    res = diagnose(
        args.dir,
        flow=args.flow,
        data_dir=args.data,
        freeze_px=args.freeze_px,
        chunk=args.chunk,
        sets=_csv(args.sets),
    )
    print(res["verdict"])
    print(f"wrote {res['csv']} and {res['folder']}")
    return 0

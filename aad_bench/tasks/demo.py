"""``task=demo`` (the embedded default): the whole toy comparison in one command.

toy data → teacher (cached) → each method of ``demo.methods`` distilled (arms share Stage I + II) → training-length
and long (4×) videos → a printed table per method: sprite speed ratio generated/data, share of frozen clips,
sampling time per video. Every arm is an ordinary run folder under ``paths.runs``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from aad_bench.config import compose, hydra_overrides
from aad_bench.engine import setup
from aad_bench.evaluation.runner import evaluate_path
from aad_bench.reporting.collect import collect
from aad_bench.reporting.report import write_report
from aad_bench.tasks import distill as distill_task
from aad_bench.utils.io import atomic_write_json, atomic_write_text

DRAWS = "noise draws: speed ratio / frozen"
COLUMNS = ("method", "status", "NFE/clip", "speed ratio", "frozen", DRAWS, "long speed ratio", "long frozen",
           "s/video", "speed-up vs teacher")


def compose_arm(cfg: DictConfig, method: str) -> DictConfig:
    """The distill config of one arm: the user's overrides + ``method=<arm>``."""
    keep = [o for o in hydra_overrides() if o.split("=", 1)[0].lstrip("+~") not in ("task", "method")]
    return compose([*keep, f"method={method}", "task=distill", f"paths.out={cfg.paths.out}",
                    f"paths.cache={cfg.paths.cache}", f"paths.runs={cfg.paths.runs}"])


def _row(method: str, res: dict[str, Any], teacher_s: float | None) -> dict[str, Any]:
    s = res.get("summary") or {}
    long = s.get("long") or {}
    spv = s.get("seconds_per_video")
    return {"method": method, "status": res.get("status"), "NFE/clip": s.get("nfe"),
            "speed ratio": s.get("speed_ratio"), "frozen": s.get("frozen_share"),
            DRAWS: _draws_cell(s.get("draws")),
            "long speed ratio": long.get("speed_ratio"), "long frozen": long.get("frozen_share"),
            "s/video": spv, "speed-up vs teacher": teacher_s / spv if teacher_s and spv else None,
            "run": res.get("run_name"), "reason": res.get("reason"), "draws": s.get("draws")}


def _draws_cell(d: dict[str, Any] | None) -> str | None:
    """``0.40 ± 0.03 / 32 % (8)``: mean ± standard error over the noise draws of the training-length set."""
    if not d:
        return None
    return f"{d['speed_ratio']:.2f} ± {d['speed_ratio_se']:.2f} / {d['frozen_share']:.0%} ({d['n']})"


SCORED = {"speed ratio": ("train_len", "toy_speed_ratio"), "frozen": ("train_len", "toy_frozen_share"),
          "long speed ratio": ("long", "toy_speed_ratio"), "long frozen": ("long", "toy_frozen_share")}


def _scored(arms: Path) -> dict[str, dict[str, float]]:
    """Per run folder name, the motion columns as ``aad-bench eval`` scored the run's videos.

    Read with the report's :func:`~aad_bench.reporting.collect.collect` from the demo's ``arms`` folder: from the
    mp4s and by the current version of the sprite measure (a finished run's in-memory numbers are by the measure of
    the day it was sampled); columns without a usable score keep the in-memory numbers.
    """
    if not arms.is_dir():  # demo.evaluate=false: nothing was scored
        return {}
    df = collect(arms)
    df = df[(df["backend"] == "sprites") & df["value"].notna()]
    got: dict[str, dict[str, float]] = {}
    for col, (vset, metric) in SCORED.items():
        for r in df[(df["set"] == vset) & (df["metric"] == metric)].itertuples():
            got.setdefault(Path(r.run_dir).name, {})[col] = float(r.value)
    return got


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the demo rows (numbers rounded for reading)."""

    def fmt(k: str, v: Any) -> str:
        if v is None:
            return "—"
        if k in ("frozen", "long frozen"):
            return f"{v:.0%}"
        if isinstance(v, float):
            return f"{v:.3f}" if k == "s/video" else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(k, r.get(k)) for k in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run every arm (resumable, finished arms are reused) and print the comparison."""
    methods = list(cfg.demo.methods)
    results: dict[str, dict[str, Any]] = {}
    engine = setup(cfg.get("trainer"))  # one process group for all arms (each arm's run joins it)
    try:
        for i, m in enumerate(methods, 1):
            print(f"[demo {i}/{len(methods)}] {m}", flush=True)
            results[m] = distill_task.run(compose_arm(cfg, m))
    finally:
        engine.rt.close()
    if not engine.rt.is_main:
        return {"status": "finished", "rank": engine.rt.rank}
    teacher_s = (results.get("teacher", {}).get("summary") or {}).get("seconds_per_video")
    rows = [_row(m, r, teacher_s) for m, r in results.items()]
    out = Path(cfg.paths.out) / "demo"
    report = _evaluate_and_report(cfg, [r["run_dir"] for r in results.values() if r.get("status") == "finished"],
                                  out)
    scored = _scored(out / "arms")
    for row, res in zip(rows, results.values()):
        row.update(scored.get(Path(res.get("run_dir") or "").name, {}))
    table = format_table(rows)
    atomic_write_text(out / "summary.md", table + "\n")
    atomic_write_json(out / "summary.json", rows)
    print("\n" + table)
    print("\nspeed ratio = mean sprite speed of the generated clips / the data clips with the same first frames (each "
          "sprite followed from its first-frame appearance, one velocity fitted per track); frozen = share of clips "
          "whose sprites move < 0.1 px/frame where the data's move; noise draws = the same first frames sampled with "
          "sample.draws noise draws (mean ± standard error; draw 0 is the written videos); long = 4x the training "
          "length, streamed")
    print(f"\nrun folders: {cfg.paths.runs}")
    for r in rows:
        print(f"  {r['method']:>10}: {Path(cfg.paths.runs) / str(r['run'])}/contact_sheet.png")
    print(f"summary: {out / 'summary.md'}")
    if report:
        print(f"report:  {report}  (metrics per run: <run>/eval/<set>/<metric>@<backend>.json)")
    return {"status": "finished", "rows": rows, "report": report}


def _evaluate_and_report(cfg: DictConfig, run_dirs: list[str], out: Path) -> str | None:
    """Score every arm's videos (weight-free backends) and build the HTML comparison report."""
    if not cfg.demo.evaluate:
        return None
    arms = out / "arms"  # the report reads a folder of run folders: link just this demo's arms
    arms.mkdir(parents=True, exist_ok=True)
    print(f"[demo] scoring {len(run_dirs)} arms and writing the report (log: {out / 'eval.log'})", flush=True)
    with open(out / "eval.log", "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        for d in run_dirs:
            link = arms / Path(d).name
            if not link.exists():
                os.symlink(Path(d).resolve(), link)
            evaluate_path(d)
        index = write_report(arms, out / "report")
    return str(index)

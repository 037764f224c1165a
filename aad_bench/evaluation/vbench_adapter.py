"""Official VBench / VBench-I2V through its Python API, in this interpreter or in a separate Python env.

VBench pins old numpy/transformers and pulls a CUDA torch, so it usually lives in its own env:
``evaluate_official(..., python="/opt/vbench-env/bin/python")`` runs a small driver there and reads back
``<name>_eval_results.json``. Scores: VBench's Quality / Semantic / Total and VBench-I2V's I2V / Quality /
Total from the official constants (:mod:`aad_bench.evaluation.vbench_scores`).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from aad_bench.evaluation.features import vbench_cache
from aad_bench.evaluation.metrics import METRICS
from aad_bench.evaluation.vbench_scores import (  # the single home of VBench's constants
    I2V_DIMS,
    I2V_QUALITY_DIMS,
    NORMALIZE,
    QUALITY_DIMS,
    SEMANTIC_DIMS,
    i2v_quality_score,
    i2v_score,
    i2v_total_score,
    quality_score,
    semantic_score,
    total_score,
)
from aad_bench.utils.io import MalformedFileError, atomic_write_json, read_json

# weights VBench downloads at first use, relative to $VBENCH_CACHE_DIR (the CPU-offline check)
WEIGHTS = {
    "subject_consistency": ["dino_model/dino_vitbase16_pretrain.pth"],
    "background_consistency": ["clip_model/ViT-B-32.pt"],
    "aesthetic_quality": ["clip_model/ViT-L-14.pt", "aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth"],
    "imaging_quality": ["pyiqa_model/musiq_spaq_ckpt-358bb6af.pth"],
    "motion_smoothness": ["amt_model/amt-s.pth"],
    "dynamic_degree": ["raft_model/models/raft-things.pth"],
    "i2v_subject": ["dino_model/dino_vitbase16_pretrain.pth"],
    "temporal_flickering": [],
}


class VBenchUnavailable(RuntimeError):
    """Official VBench cannot run here; the message lists everything that is missing."""


def _or_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def vbench_scores(agg: dict[str, float]) -> dict[str, Any]:
    """VBench Quality (÷6.5), Semantic (÷9) and Total = (4·Q + S)/5; ``None`` where dims are missing."""
    q, s, total = (_or_none(f(agg)) for f in (quality_score, semantic_score, total_score))
    missing = [d for d in QUALITY_DIMS + SEMANTIC_DIMS if d not in agg]
    return {"quality": q, "semantic": s, "total": total, "missing": missing}


def i2v_scores(agg: dict[str, float]) -> dict[str, Any]:
    """VBench-I2V: I2V = (0.1·n(cam) + n(subj) + n(bg))/2.1, Quality = Σ6 dims/5.5, Total = (Q + I2V)/2."""
    i2v, q, total = (_or_none(f(agg)) for f in (i2v_score, i2v_quality_score, i2v_total_score))
    missing = [d for d in I2V_DIMS + I2V_QUALITY_DIMS if d not in agg]
    return {"i2v": i2v, "quality": q, "total": total, "missing": missing}


def parse_eval_results(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read ``*_eval_results.json``: dim → {aggregate, per_video {file: value}, extra}.

    Handles the 2-element form ``[aggregate, [{video_path, video_results}, ...]]`` and camera_motion's
    3-element form ``[aggregate, {type: mean}, [...]]``. imaging_quality per-video values are 0-100 in the
    file and divided by 100 here, like the aggregate.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise MalformedFileError(f"{path}: expected an object mapping dimension → results")
    out = {}
    for dim, entry in data.items():
        if not isinstance(entry, list) or len(entry) not in (2, 3) or not isinstance(entry[-1], list):
            raise MalformedFileError(f"{path}: dimension {dim!r} is not [aggregate, (extra,) [videos]]")
        per_video = {}
        for v in entry[-1]:
            if not isinstance(v, dict) or "video_path" not in v or "video_results" not in v:
                raise MalformedFileError(f"{path}: {dim}: per-video entries need video_path and video_results")
            val = float(v["video_results"])  # bool (dynamic_degree) → 0/1
            per_video[Path(v["video_path"]).name] = val / 100.0 if dim == "imaging_quality" else val
        out[dim] = {
            "aggregate": float(entry[0]),
            "per_video": per_video,
            "extra": entry[1] if len(entry) == 3 else None,
        }
    return out


_DRIVER = r"""
import json, sys
a = json.loads(sys.argv[1])
import torch
if a["device"] == "auto":  # resolved here: this interpreter's torch decides whether CUDA is usable
    a["device"] = "cuda" if torch.cuda.is_available() else "cpu"
elif a["device"].startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"--device {a['device']}: the VBench interpreter ({sys.executable}) sees no CUDA device")
if a["i2v"]:
    from vbench2_beta_i2v import VBenchI2V
    vb = VBenchI2V(a["device"], a["full_info"], a["out_dir"])
    vb.evaluate(videos_path=a["videos"], name=a["name"], dimension_list=a["dims"], mode="custom_input",
                custom_image_folder=a["images"], resolution=a["resolution"])
else:
    from vbench import VBench
    vb = VBench(a["device"], a["full_info"], a["out_dir"])
    vb.evaluate(videos_path=a["videos"], name=a["name"], dimension_list=a["dims"], mode="custom_input",
                local=a["local"])
"""

_PROBE = r"""
import importlib.util, json
print(json.dumps({m: importlib.util.find_spec(m) is not None for m in ("vbench", "vbench2_beta_i2v")}))
"""


def check_available(dims: list[str], python: str | None = None, i2v: bool = False) -> None:
    """Raise :class:`VBenchUnavailable` listing what is missing (package, env, weights) for ``dims``."""
    problems = []
    exe = python or sys.executable
    if python and not Path(python).is_file():
        problems.append(f"python {python} does not exist")
    else:
        try:
            found = json.loads(
                subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True)
                .stdout.strip()
                .splitlines()[-1]
            )
        except (subprocess.SubprocessError, json.JSONDecodeError, IndexError, OSError) as e:
            found = {}
            problems.append(f"cannot run {exe} ({e})")
        pkg = "vbench2_beta_i2v" if i2v else "vbench"
        if found and not found.get(pkg):
            problems.append(
                f"'{pkg}' is not importable by {exe} (install VBench in a separate env, see "
                "docs/evaluation.md, and pass --vbench-python)"
            )
    cache = vbench_cache()
    for d in dims:
        if d not in WEIGHTS and d not in NORMALIZE:
            problems.append(f"unknown VBench dimension {d!r}")
        for w in WEIGHTS.get(d, []):
            if not (cache / w).is_file():
                problems.append(f"{d}: weights {cache / w} missing (VBench would download them)")
    if problems:
        raise VBenchUnavailable("official VBench cannot run:\n  - " + "\n  - ".join(problems))


def run_official(
    videos: str | Path,
    out_dir: str | Path,
    dims: list[str],
    device: str = "cpu",
    python: str | None = None,
    i2v: bool = False,
    images: str | Path | None = None,
    name: str = "aad_bench",
    resolution: str = "1-1",
) -> Path:
    """Run VBench (or VBench-I2V) in ``custom_input`` mode; returns the ``*_eval_results.json`` path."""
    check_available(dims, python, i2v)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    args = {
        "videos": str(Path(videos).resolve()),
        "out_dir": str(out_dir),
        "dims": dims,
        "device": device,
        "name": name,
        "i2v": i2v,
        "images": str(images) if images else None,
        "resolution": resolution,
        "full_info": None,
        "local": all((vbench_cache() / w).is_file() for d in dims for w in WEIGHTS.get(d, [])),
    }
    proc = subprocess.run([python or sys.executable, "-c", _DRIVER, json.dumps(args)], capture_output=True, text=True)
    result = out_dir / f"{name}_eval_results.json"
    if proc.returncode != 0 or not result.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise VBenchUnavailable(f"VBench failed (rc {proc.returncode}) on {videos}:\n{tail}")
    return result


def evaluate_official(
    set_dir: str | Path, out_dir: str | Path, dims: list[str], device: str = "cpu", python: str | None = None
) -> list[Path]:
    """Run VBench on a video set and write ``<dim>@vbench.json`` results plus ``vbench_scores.json``."""
    if not dims:
        raise ValueError("--vbench needs a comma list of dimensions, e.g. temporal_flickering")
    i2v_dims = [d for d in dims if d in I2V_DIMS]
    raw_dir = Path(out_dir) / "vbench_raw"
    parsed: dict[str, dict] = {}
    if set(dims) - set(i2v_dims):
        parsed.update(
            parse_eval_results(run_official(set_dir, raw_dir, [d for d in dims if d not in i2v_dims], device, python))
        )
    if i2v_dims:
        parsed.update(
            parse_eval_results(
                run_official(
                    set_dir,
                    raw_dir,
                    i2v_dims,
                    device,
                    python,
                    i2v=True,
                    images=Path(set_dir) / "images",
                    name="aad_bench_i2v",
                )
            )
        )
    return write_results(parsed, out_dir, Path(set_dir).name)


def write_results(parsed: dict[str, dict], out_dir: str | Path, set_name: str) -> list[Path]:
    """Store parsed VBench dims in the contract format (backend ``vbench``) and the composite scores."""
    out_dir = Path(out_dir)
    written = []
    for dim, r in parsed.items():
        direction = METRICS.get(dim).direction if dim in METRICS else "up"
        written.append(
            atomic_write_json(
                out_dir / f"{dim}@vbench.json",
                {
                    "metric": dim,
                    "version": "vbench",
                    "backend": "vbench",
                    "direction": direction,
                    "video_set": set_name,
                    "n_videos": len(r["per_video"]),
                    "aggregate": r["aggregate"],
                    "per_video": r["per_video"],
                    "config": {"source": "official VBench", "extra": r["extra"]},
                },
            )
        )
    agg = {d: r["aggregate"] for d, r in parsed.items()}
    written.append(
        atomic_write_json(out_dir / "vbench_scores.json", {"vbench": vbench_scores(agg), "vbench_i2v": i2v_scores(agg)})
    )
    return written

"""`aad-bench eval --device auto|cpu|cuda`: resolution, the one-line error without a GPU, and the device reaching
every weight-based backend kind (flow, features, quality)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aad_bench.cli import main
from aad_bench.evaluation import features, flow, quality
from aad_bench.evaluation.device import current_device, eval_device, resolve_eval_device
from aad_bench.evaluation.metrics import Backend
from aad_bench.video.sets import VideoSetWriter

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")


@pytest.fixture
def video_set(tmp_path):
    """Two small moving-square clips with their conditioning images."""
    w = VideoSetWriter(tmp_path / "set", 8, set_name="train_len")
    for k in range(2):
        v = np.full((9, 32, 32, 3), 40, np.uint8)
        for t in range(9):
            v[t, 8:16, 2 + 2 * t + k:10 + 2 * t + k] = 220
        w.add(f"clip{k}-0.mp4", v, {"seed": k, "frames": 9}, image=v[0])
    return tmp_path / "set"


def test_resolve_eval_device():
    assert resolve_eval_device("cpu") == "cpu"
    assert resolve_eval_device("auto") == resolve_eval_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=r"--device 'gpu': one of auto, cpu, cuda \(or cuda:N\)"):
        resolve_eval_device("gpu")
    with pytest.raises(ValueError, match="one of auto"):
        resolve_eval_device("cpu:0")
    assert current_device() == "cpu"
    with eval_device("cuda:1"):
        assert current_device() == "cuda:1"
    assert current_device() == "cpu"


@NO_GPU
def test_cuda_without_gpu_is_one_line_before_any_work(video_set, capsys):
    with pytest.raises(ValueError, match="--device cuda: no CUDA device is visible"):
        resolve_eval_device("cuda")
    assert main(["eval", str(video_set), "--device", "cuda"]) == 2
    assert main(["diagnose", str(video_set), "--device", "cuda:0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["aad-bench eval: error: --device cuda: no CUDA device is visible (torch.cuda.is_available() is "
                   "False); use --device auto or cpu",
                   "aad-bench diagnose: error: --device cuda:0: no CUDA device is visible (torch.cuda.is_available() "
                   "is False); use --device auto or cpu"]
    assert not (video_set / "eval").exists() and not (video_set / "diagnosis.csv").exists()


def test_device_reaches_weight_based_backends(video_set, monkeypatch):
    """Every weight-based kind is built on ``--device`` (no weights here: the spies wrap the weight-free ones)."""
    seen: dict[str, str] = {}

    def spy(kind, name, make):
        def build(device="unset", **kw):
            seen[name] = device
            return make()

        monkeypatch.setitem(kind._items, name, Backend(name, build))

    spy(flow.FLOW, "raft", lambda: flow.DISFlow("medium"))
    spy(features.FEATURES, "dino", features.PixelFeatures)
    spy(quality.QUALITY, "musiq", quality.SharpnessQuality)
    for mod in (flow, features, quality):  # backends are built once per process: start from none
        monkeypatch.setattr(mod, "_CACHE", {})
    monkeypatch.setattr(quality, "_FRAME_CACHE", {})
    args = ["eval", str(video_set), "--flow", "raft", "--features", "dino", "--quality", "musiq",
            "--metrics", "dynamic_degree,subject_consistency,imaging_quality"]
    assert main([*args, "--device", "cpu"]) == 0
    assert seen == {"raft": "cpu", "dino": "cpu", "musiq": "cpu"}
    res = json.loads((video_set / "eval/train_len/subject_consistency@dino.json").read_text())
    assert res["config"]["device"] == "cpu"
    seen.clear()
    assert main([*args, "--device", "auto", "--force"]) == 0  # auto = this machine's choice, for every kind
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    if auto == "cpu":  # built once per process and device: the cpu instances are reused
        assert seen == {}
    else:
        assert seen == {"raft": "cuda", "dino": "cuda", "musiq": "cuda"}

"""model=wan_tiny codec=wan_vae data=folder: a whole size=tiny distillation (Stage I → II → III), sampling and
evaluation on a few generated clips written as a data=folder set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aad_bench.data.manifest import write_folder_set
from aad_bench.evaluation.runner import evaluate_path
from aad_bench.tasks import distill as distill_task


def _moving_squares(n: int = 4, frames: int = 9, size: int = 32, seed: int = 0) -> list[np.ndarray]:
    """Bright squares sliding over a grey background, a few pixels per frame."""
    rng = np.random.default_rng(seed)
    vids = []
    for _ in range(n):
        v = np.full((frames, size, size, 3), 60, np.uint8)
        x, y, vx, vy = *rng.integers(4, 20, 2), *rng.choice([-2, -1, 1, 2], 2)
        color = rng.integers(150, 255, 3)
        for t in range(frames):
            cx, cy = int(np.clip(x + vx * t, 0, size - 8)), int(np.clip(y + vy * t, 0, size - 8))
            v[t, cy:cy + 8, cx:cx + 8] = color
        vids.append(v)
    return vids


@pytest.fixture
def folder_set(tmp_path):
    write_folder_set(tmp_path / "clips", _moving_squares(), [f"a square moves, clip {i}" for i in range(4)], fps=8)
    return tmp_path / "clips"


def test_wan_tiny_distills_on_a_folder(tiny_cfg, folder_set, tmp_path):
    # 32x32 video = 4x4 latents = 4 tokens per frame: the tiny VAE's frame-by-frame decoding dominates the cost
    cfg = tiny_cfg("task=distill", "method=aad1", "model=wan_tiny", "codec=wan_vae", "data=folder",
                   f"data.path={folder_set}", "data.frames=9", "data.height=32", "data.width=32", "data.fps=8",
                   "model.height=4", "model.width=4", "data.shard_size=2", "distill.share_stages=false")
    assert cfg.model.arch == "wan" and cfg.world.height == 16  # size=tiny keeps the toy world; data=folder wins
    res = distill_task.run(cfg)
    assert res["status"] == "finished", res.get("reason")
    assert [s for s in res["summary"]["stages"]] == ["ode", "dmd", "gan"]
    run = res["run_dir"]
    index = json.loads(open(f"{run}/videos/train_len/index.json").read())
    entry = next(iter(index["videos"].values()))
    assert entry["frames"] == 9 and entry["caption"].startswith("a square moves")  # 3 latent frames → 9 pixels
    long = json.loads(open(f"{run}/videos/long/index.json").read())
    assert next(iter(long["videos"].values()))["frames"] == 1 + 4 * 8  # 4 x 2 latent frames generated
    written, errors = evaluate_path(run, ["temporal_flickering"])
    assert written and errors == 0
    cache = next((tmp_path / "cache" / "latents").iterdir())
    assert json.loads((cache / "index.json").read_text())["kept"] == 4


def test_folder_settings_fail_early(tiny_cfg, folder_set):
    base = ["task=distill", "model=wan_tiny", "codec=wan_vae", "data=folder", f"data.path={folder_set}",
            "data.height=64", "data.width=64", "data.fps=8"]  # 64x64 fits wan_tiny's 8x8 latents
    with pytest.raises(ValueError, match="a clip of 10 frames; the Wan VAE needs 1 \\+ 4k frames"):
        distill_task.run(tiny_cfg(*base, "data.frames=10"))
    with pytest.raises(ValueError, match="video resolution 48x64 gives latents 6x8"):
        distill_task.run(tiny_cfg(*base[:-3], "data.height=48", "data.width=64", "data.frames=9"))
    with pytest.raises(ValueError, match="codec=identity gives 3 latent channels but model.channels=16"):
        distill_task.run(tiny_cfg("task=distill", "model=wan_tiny"))


def test_teacher_cache_key_includes_the_data(tiny_cfg):
    from aad_bench.training.teacher import teacher_key_for

    a = teacher_key_for(tiny_cfg("model=wan_tiny", "codec=wan_vae", "data=folder", "data.path=/a"))
    b = teacher_key_for(tiny_cfg("model=wan_tiny", "codec=wan_vae", "data=folder", "data.path=/b"))
    assert a != b and a["data"]["path"] == "/a"
    assert "data" not in teacher_key_for(tiny_cfg())  # toy runs keep their existing cache keys

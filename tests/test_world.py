"""The toy world: determinism, ground truth that matches the pixels, the configured motion distribution."""

import numpy as np
import pytest

from aad_bench.world.dataset import CacheError, build_toy_dataset, load_ground_truth, load_train_clips
from aad_bench.world.toy import ToyWorldConfig, render_clip, render_split
from aad_bench.world.tracking import track_speeds


def test_clips_are_deterministic_per_seed():
    cfg = ToyWorldConfig()
    a, ga = render_clip(cfg, "train", 3)
    b, gb = render_clip(cfg, "train", 3)
    c, _ = render_clip(ToyWorldConfig(seed=1), "train", 3)
    assert np.array_equal(a, b) and ga == gb
    assert not np.array_equal(a, c)
    assert a.shape == (17, 32, 32, 3) and a.dtype == np.uint8


def test_ground_truth_agrees_with_rendered_frames():
    cfg = ToyWorldConfig(min_sprites=1, max_sprites=1, static_share=0, slow_share=0)
    for i in range(5):
        frames, gt = render_clip(cfg, "eval", i)
        pos = np.array(gt["positions"])[:, 0]
        colour = np.array(gt["sprites"][0]["color"]) * 255
        for t in range(len(frames)):  # the pixel under the sprite centre has the sprite's colour
            x, y = (pos[t] - 0.5).round().astype(int)
            assert np.abs(frames[t, y, x].astype(float) - colour).max() <= 1.0
        # velocities integrate to positions (bounces reflect, so compare speeds)
        step = np.linalg.norm(np.diff(pos, axis=0), axis=-1)
        speed = np.linalg.norm(np.array(gt["velocities"])[1:, 0], axis=-1)
        assert np.all(step <= speed + 1e-3)
        assert np.median(np.abs(step - speed)) < 1e-3


def test_tracker_measures_ground_truth_speed():
    cfg = ToyWorldConfig(min_sprites=1, max_sprites=1, static_share=0, slow_share=0, radius=(4, 5))
    est, true = [], []
    for i in range(12):
        frames, gt = render_clip(cfg, "eval", i)
        est.append(track_speeds(frames).mean())
        true.append(gt["speed"])
    assert np.corrcoef(est, true)[0, 1] > 0.7
    assert 0.7 < np.mean(est) / np.mean(true) < 1.3


@pytest.mark.parametrize("share", [0.0, 0.3])
def test_static_share_as_configured(share):
    cfg = ToyWorldConfig(static_share=share, slow_share=0.2, frames=3)
    _, gts = render_split(cfg, "train", 400)
    static = np.mean([g["kind"] == "static" for g in gts])
    assert abs(static - share) < 0.06
    assert all(g["speed"] == 0 for g in gts if g["kind"] == "static")
    assert all(g["speed"] > 0.1 for g in gts if g["kind"] == "moving")


def test_dataset_is_cached_with_ground_truth(tmp_path):
    cfg = ToyWorldConfig(height=16, width=16, frames=9, n_train=4, n_eval=2, n_long=1, radius=(1.5, 3))
    root = build_toy_dataset(cfg, tmp_path, progress=False)
    stamp = (root / "done.json").stat().st_mtime_ns
    assert build_toy_dataset(cfg, tmp_path, progress=False) == root
    assert (root / "done.json").stat().st_mtime_ns == stamp  # generated once
    vids = load_ground_truth(root, "eval")
    assert len(vids) == 2 and all("gt" in v for v in vids.values())
    assert load_train_clips(cfg, tmp_path).shape == (4, 9, 16, 16, 3)
    (root / "train.npz").write_bytes(b"not a zip")
    with pytest.raises(CacheError, match="corrupt data cache"):
        load_train_clips(cfg, tmp_path)


def test_bad_world_settings_name_the_setting():
    with pytest.raises(ValueError, match="static_share"):
        ToyWorldConfig(static_share=0.9, slow_share=0.5)
    with pytest.raises(ValueError, match="min_sprites"):
        ToyWorldConfig(min_sprites=3, max_sprites=1)
    with pytest.raises(ValueError, match="speed"):  # faster than the motion measure follows
        ToyWorldConfig(speed=(1.0, 3.0))


def test_trail_edge_and_texture_knobs():
    """trail draws a fading copy behind moving sprites; edge softens sprites; bg_texture 0 = a plain gradient."""
    base = dict(height=24, width=24, min_sprites=1, max_sprites=1, static_share=0, slow_share=0, frames=3)
    for i in range(50):  # a clip whose sprite's recent past did not touch a wall
        plain, gt = render_clip(ToyWorldConfig(**base), "eval", i)
        p, v, r = np.array(gt["positions"][0][0]), np.array(gt["velocities"][1][0]), gt["sprites"][0]["radius"]
        if (np.minimum(p, 24 - p) > r + 4 * np.abs(v) + 1).all():
            break
    trail, _ = render_clip(ToyWorldConfig(**base, trail=4), "eval", i)
    ys, xs = np.nonzero(np.abs(trail[0].astype(int) - plain[0].astype(int)).sum(-1) > 6)
    assert len(xs) > 3
    along = (np.stack([xs, ys], 1) + 0.5 - p) @ (v / np.linalg.norm(v))  # px ahead of the sprite's centre
    assert (along < r).all() and (along < 0).mean() > 0.75  # the trail lies behind the sprite, none ahead of it
    soft, _ = render_clip(ToyWorldConfig(**base, edge=3.0), "eval", i)
    sharpness = lambda c: np.abs(np.diff(c[0].astype(int), axis=1)).max()  # noqa: E731
    assert sharpness(soft) < sharpness(plain)
    flat, _ = render_clip(ToyWorldConfig(**base, bg_texture=0.0), "eval", i)
    far = 0 if p[1] > 12 else 23  # a row away from the sprite: linear in x, up to rounding
    assert np.abs(np.diff(flat[0, far].astype(int), 2, axis=0)).max() <= 1
    with pytest.raises(ValueError, match="edge"):
        ToyWorldConfig(edge=0)

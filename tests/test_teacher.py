"""The teacher: loss falls on a tiny config, checkpoints round-trip, the cache is hit on rerun."""

import torch
from omegaconf import OmegaConf

from aad_bench.data.toy import training_data
from aad_bench.models.dit import DiTConfig, VideoDiT
from aad_bench.runfolder import RunFolder
from aad_bench.sampling.samplers import teacher_sample
from aad_bench.training.checkpoint import load_latest, save_checkpoint
from aad_bench.training.teacher import get_teacher, train_teacher


def test_tiny_teacher_loss_falls(tiny_cfg, tmp_path):
    cfg = tiny_cfg("teacher.steps=40", "teacher.batch=4", "teacher.warmup=5", "teacher.log_every=1",
                   "teacher.ckpt_every=40", "teacher.lr=2e-3")
    data = training_data(cfg)[:2]  # two clips: a loss that can only fall if the model learns
    run = RunFolder(tmp_path / "t")
    run.path.mkdir()
    train_teacher(run, DiTConfig(**cfg.model), data, cfg.teacher, 0, progress=False)
    losses = [m["loss/flow"] for m in run.metrics()]
    assert len(losses) == 40
    assert sum(losses[-8:]) / 8 < 0.8 * sum(losses[:8]) / 8


def test_checkpoint_round_trip_and_corrupt_fallback(tmp_path):
    m = VideoDiT(DiTConfig(height=16, width=16, dim=32, depth=1, heads=2))
    with torch.no_grad():
        m.patch_out.weight.normal_()
    save_checkpoint(tmp_path, "teacher", 1, {"model": m.state_dict()})
    save_checkpoint(tmp_path, "teacher", 2, {"model": {k: v + 1 for k, v in m.state_dict().items()}})
    latest = load_latest(tmp_path)
    assert latest["step"] == 2 and torch.equal(latest["model"]["patch_out.weight"], m.patch_out.weight + 1)
    newest = sorted(tmp_path.glob("*.pt"))[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # a crash mid-write of a non-atomic copy, say
    back = load_latest(tmp_path)
    assert back["step"] == 1 and torch.equal(back["model"]["patch_out.weight"], m.patch_out.weight)
    m2 = VideoDiT(m.cfg)
    m2.load_state_dict(back["model"])
    x, t = torch.randn(1, 5, 3, 16, 16), torch.zeros(1, 5)
    assert torch.equal(m(x, t), m2(x, t))


def test_teacher_cache_is_hit_on_rerun(tiny_cfg, capsys):
    cfg = tiny_cfg()
    data = training_data(cfg)
    t1, run1 = get_teacher(cfg, data, progress=False)
    stamp = run1.results_path.stat().st_mtime_ns
    t2, run2 = get_teacher(tiny_cfg(), data, progress=False)
    assert run1.path == run2.path and run2.results_path.stat().st_mtime_ns == stamp
    assert "reusing cached" in capsys.readouterr().out
    for a, b in zip(t1.state_dict().values(), t2.state_dict().values()):
        assert torch.equal(a, b)
    cond = data[:2, 0]
    out = teacher_sample(t2, cond, 8, steps=2, cfg_scale=1.5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 8, 3, 16, 16) and torch.isfinite(out).all()
    # a different teacher setting is a different cache entry
    _, run3 = get_teacher(tiny_cfg("teacher.lr=3e-3"), data, progress=False)
    assert run3.path != run1.path
    assert OmegaConf.select(cfg, "teacher.sample.steps") == 2


def test_noise_draws_redraw_the_written_set_and_average_the_motion(tiny_cfg, tmp_path):
    import numpy as np
    import pytest

    from aad_bench.data.sources import eval_conditions
    from aad_bench.sampling.videos import draw_seed, motion_over_draws, sample_teacher
    from aad_bench.video.io import read_video
    from aad_bench.video.sets import video_name
    from aad_bench.world.motion import motion_summary

    cfg = tiny_cfg("sample.draws=3")
    teacher, _ = get_teacher(cfg, training_data(cfg), progress=False)
    clips, metas, _, redraw = sample_teacher(cfg, teacher, tmp_path / "v", 3)
    # draw 0 is the written set: redrawn from its own seed it is the same videos, frame for frame
    again = redraw(cfg.sample.seed)
    assert all(np.array_equal(a, b) for a, b in zip(again, clips))
    stems = eval_conditions(cfg, "eval", 3)[0]
    written = read_video(tmp_path / "v" / video_name(stems[0]))[0].astype(int)
    assert np.abs(written - clips[0]).max() <= 2  # the mp4 round trip (lossless, up to colour rounding)
    assert not np.array_equal(redraw(draw_seed(cfg.sample.seed, 1))[0], clips[0])  # other noise, other clips
    # the summary over draws: draw 0's numbers, then each further draw scored by the same measure
    gts = [m["gt"] for m in metas]
    data = [read_video(m["data_video"])[0] for m in metas]
    frozen = [np.repeat(c[:1], len(c), 0) for c in data]
    first = motion_summary(data, gts)
    per = {draw_seed(cfg.sample.seed, 1): frozen, draw_seed(cfg.sample.seed, 2): data}
    d = motion_over_draws(cfg, first, per.__getitem__, metas)
    ratios = [first["speed_ratio"], 0.0, first["speed_ratio"]]
    assert d["n"] == 3 and d["speed_ratio_per_draw"] == pytest.approx(ratios)
    assert d["speed_ratio"] == pytest.approx(np.mean(ratios))
    assert d["speed_ratio_se"] == pytest.approx(np.std(ratios, ddof=1) / np.sqrt(3))
    assert d["frozen_share_per_draw"][1] == 1.0 and d["frozen_share_per_draw"][0] == 0.0
    assert motion_over_draws(tiny_cfg("sample.draws=1"), first, per.__getitem__, metas) is None
    # real data (no ground truth): one draw, whatever sample.draws says (sampling a large model is the cost of a run)
    assert motion_over_draws(cfg, first, per.__getitem__, [{**m, "gt": None} for m in metas]) is None

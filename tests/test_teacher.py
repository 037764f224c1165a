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

"""The engine in one process: settings and bad input (one line, before any work), the ``single`` handle, the
trainer presets, sharded checkpoints of a single process, tracking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aad_bench.engine import EngineError, TrainerSettings, setup, split_batch
from aad_bench.engine.checkpoint import check_compatible, consolidate, load_sharded, read_meta, save_sharded
from aad_bench.engine.ema import ShardedEMA
from aad_bench.engine.runtime import Runtime, check_layout
from aad_bench.models.dit import DiTConfig, VideoDiT
from aad_bench.training.optim import EMA


def _model(seed: int = 0) -> VideoDiT:
    torch.manual_seed(seed)
    m = VideoDiT(DiTConfig(height=16, width=16, patch=4, dim=32, depth=2, heads=2, chunk=4))
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return m


def _batch(step: int):
    g = torch.Generator().manual_seed(step)
    return torch.randn(4, 9, 3, 16, 16, generator=g), torch.rand(4, 9, generator=g)


@pytest.mark.parametrize("trainer, needle", [
    ({"engine": "fsdb"}, "unknown trainer.engine 'fsdb'. Did you mean 'fsdp'?"),
    ({"device": "cuda"}, "trainer.device=cuda but no CUDA device is visible"),
    ({"engine": "ddp", "backend": "nccl"}, "trainer.backend=nccl needs CUDA devices"),
    ({"precision": "fp16"}, "unknown trainer.precision 'fp16'"),
    ({"engine": "single", "cp": 2}, "trainer.cp=2 needs a distributed engine"),
    ({"cp": 0, "engine": "ddp"}, "trainer.cp must be a positive integer"),
    ({"micro_batch": 0}, "trainer.micro_batch must be a positive integer"),
    ({"enigne": "ddp"}, "unknown setting trainer.enigne. Did you mean 'engine'?"),
    ({"engine": "deepspeed", "deepspeed_config": "zero4"}, "trainer.deepspeed_config='zero4': no file"),
])
def test_bad_settings_fail_in_one_line_before_any_work(trainer, needle):
    if trainer.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    with pytest.raises(EngineError) as e:
        setup(trainer)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert not torch.distributed.is_initialized()  # nothing was started


def test_layout_checks_world_size_against_cp_and_engine():
    cpu = torch.device("cpu")
    with pytest.raises(EngineError, match=r"trainer.cp=3 must divide the world size 4"):
        check_layout(TrainerSettings(engine="ddp", cp=3), 4, cpu)
    with pytest.raises(EngineError, match=r"trainer.engine=single but 2 processes were started"):
        check_layout(TrainerSettings(), 2, cpu)
    assert check_layout(TrainerSettings(engine="fsdp", cp=2), 4, cpu) == "gloo"


def test_global_batch_is_micro_times_accumulation_times_dp():
    assert split_batch("method.gan.batch", 8, None, 2) == (4, 1)
    assert split_batch("method.gan.batch", 8, 2, 2) == (2, 2)
    assert split_batch("method.gan.batch", 8, 1, 4) == (1, 2)
    with pytest.raises(EngineError, match=r"method.gan.batch=6 \(global batch\) is not divisible by "
                                          r"trainer.micro_batch \(4\) x data-parallel size \(1\)"):
        split_batch("method.gan.batch", 6, 4, 1)
    with pytest.raises(EngineError, match=r"method.gan.batch=3 \(global batch\) does not split over the "
                                          r"data-parallel size 2"):
        split_batch("method.gan.batch", 3, None, 2)
    engine = setup({"micro_batch": 4})
    with pytest.raises(EngineError, match="method.ode.batch=6"):
        engine.prepare(_model(), lambda m: torch.optim.AdamW(m.parameters()), name="student", batch=6,
                       batch_setting="method.ode.batch")


@pytest.mark.parametrize("preset", ["default", "ddp", "fsdp", "zero2", "zero3", "gpu"])
def test_trainer_presets_compose_and_validate(preset, tmp_path):
    from conftest import compose

    cfg = compose([f"trainer={preset}"], tmp_path)
    st = TrainerSettings.from_cfg(cfg.trainer)
    assert st.engine == {"default": "single", "ddp": "ddp", "fsdp": "fsdp", "gpu": "fsdp"}.get(preset, "deepspeed")
    assert st.zero_stage == {"zero2": 2, "zero3": 3}.get(preset, 0)


def test_single_handle_trains_exactly_like_plain_torch():
    """The ``single`` engine is the reference: its handle must not change a single bit of a plain loop."""
    plain, ref_opt = _model(), None
    ref_opt = torch.optim.AdamW(plain.parameters(), lr=1e-3)
    engine = setup(None)
    handle = engine.prepare(_model(), lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3), name="student",
                            batch=4, grad_clip=1.0)
    ema_ref, ema = EMA(plain, 0.9), ShardedEMA(handle, 0.9)
    for step in range(3):
        x, t = _batch(step)
        loss = plain(x, t, causal=True).pow(2).mean()
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_norm = float(torch.nn.utils.clip_grad_norm_(plain.parameters(), 1.0))
        ref_opt.step()
        ema_ref.update(plain)
        handle.backward(handle(x, t, causal=True).pow(2).mean())
        assert handle.step() == ref_norm
        ema.update()
    for (n, a), b in zip(plain.state_dict().items(), handle.full_state_dict().values()):
        assert torch.equal(a, b), n
    assert all(torch.equal(ema_ref.shadow[n], ema.shadow[n]) for n in ema.shadow)


def test_accumulation_counts_micro_batches():
    engine = setup({"micro_batch": 2})
    handle = engine.prepare(_model(), lambda m: torch.optim.AdamW(m.parameters()), name="student", batch=4)
    assert (handle.micro, handle.accum) == (2, 2)
    x, t = _batch(0)
    handle.backward(handle(x[:2], t[:2]).mean())
    with pytest.raises(EngineError, match="student: step\\(\\) after 1 of 2 micro-batches"):
        handle.step()
    frozen = engine.prepare(_model(), None, name="teacher")
    with pytest.raises(EngineError, match="teacher was prepared frozen"):
        frozen.backward(frozen(x, t).mean())


def test_single_process_sharded_checkpoint_resumes_and_consolidates(tmp_path):
    engine = setup(None)
    mk = lambda: engine.prepare(_model(), lambda m: torch.optim.AdamW(m.parameters(), lr=1e-2),  # noqa: E731
                                name="student", batch=4)
    h = mk()
    ema = ShardedEMA(h, 0.5)

    def step(handle, e, s):
        x, t = _batch(s)
        handle.backward(handle(x, t).pow(2).mean())
        handle.step()
        e.update()

    step(h, ema, 0)
    ckpt = save_sharded(tmp_path, "0001-ode-0000001", engine.rt, {"student": h}, {"student_ema": ema},
                        extra={"step": 1})
    step(h, ema, 1)
    h2 = mk()
    ema2 = ShardedEMA(h2, 0.5)
    assert load_sharded(ckpt, engine.rt, {"student": h2}, {"student_ema": ema2}) == {"step": 1}
    step(h2, ema2, 1)
    assert all(torch.equal(a, b) for a, b in zip(h.full_state_dict().values(), h2.full_state_dict().values()))
    assert all(torch.equal(ema.shadow[n], ema2.shadow[n]) for n in ema.shadow)
    out = consolidate(ckpt, tmp_path / "full.pt")
    full = torch.load(out, weights_only=True)
    assert set(full) == {"student", "student_ema", "meta"} and full["meta"]["world_size"] == 1
    model = VideoDiT(DiTConfig(height=16, width=16, patch=4, dim=32, depth=2, heads=2, chunk=4))
    model.load_state_dict(full["student"])  # a plain module samples from the consolidated file
    assert not list(tmp_path.glob(".*partial"))


def test_checkpoint_from_another_world_size_fails_naming_it(tmp_path):
    engine = setup(None)
    h = engine.prepare(_model(), lambda m: torch.optim.AdamW(m.parameters()), name="student", batch=4)
    ckpt = save_sharded(tmp_path, "c", engine.rt, {"student": h})
    meta = read_meta(ckpt)
    meta["world_size"] = 2
    (ckpt / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(EngineError, match=r"sharded checkpoint from world_size=2 but this run has world_size=1"):
        load_sharded(ckpt, engine.rt, {"student": h})
    other = Runtime(TrainerSettings(engine="fsdp"), torch.device("cpu"), world=2)
    with pytest.raises(EngineError, match=r"engine=single but this run has engine=fsdp"):
        check_compatible({**meta, "world_size": 2}, other, ckpt)
    with pytest.raises(EngineError, match="not a sharded checkpoint"):
        read_meta(tmp_path)


def test_tensorboard_events_and_videos(tmp_path):
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from aad_bench.engine.tracking import Tracker

    tr = Tracker(tmp_path, TrainerSettings().tracking)
    for step in range(1, 4):
        tr.log("gan", step, {"loss/d": 1.0 / step, "d_acc": 0.5})
    tr.video("samples/long", np.zeros((4, 8, 8, 3), dtype=np.uint8), step=3)
    from aad_bench.video.io import Mp4Writer

    w = Mp4Writer(tmp_path / "videos" / "clip.mp4", 8)
    w.write(np.random.default_rng(0).integers(0, 255, (5, 16, 16, 3), dtype=np.uint8))
    w.close()
    tr.video_set(tmp_path / "videos", "samples/train_len")
    tr.close()
    acc = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert [round(e.value, 4) for e in acc.Scalars("gan/loss/d")] == [1.0, 0.5, 0.3333]
    assert acc.Images("samples/long")[0].encoded_image_string[:6] == b"GIF89a"
    assert acc.Images("samples/train_len/clip")[0].encoded_image_string[:6] == b"GIF89a"
    Tracker(tmp_path / "r1", TrainerSettings().tracking, enabled=False).log("gan", 1, {"x": 1.0})
    assert not (tmp_path / "r1").exists()  # ranks other than 0 write nothing


def test_wandb_offline_when_installed(tmp_path):
    pytest.importorskip("wandb")
    from aad_bench.engine.settings import TrackingSettings
    from aad_bench.engine.tracking import Tracker

    tr = Tracker(tmp_path, TrackingSettings(tensorboard=False, wandb=True), config={"a": 1}, name="run-x")
    tr.log("ode", 1, {"loss/ode": 0.5})
    tr.video("samples/long", __import__("numpy").zeros((4, 8, 8, 3), dtype="uint8"))
    tr.close()
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    assert list(run.glob("files/media/videos/samples/long_*.gif"))


def test_activation_checkpointing_changes_no_number():
    """Recomputed blocks give the same gradients; rollouts and frozen passes are left alone."""
    from aad_bench.sampling.samplers import causal_rollout

    grads = []
    for ckpt in (False, True):
        engine = setup({"activation_checkpointing": ckpt})
        gen = engine.prepare(_model(0), lambda m: torch.optim.SGD(m.parameters(), lr=0.0), name="gen", batch=4)
        disc = engine.prepare(_model(1), lambda m: torch.optim.SGD(m.parameters(), lr=0.0), name="disc", batch=4)
        x, t = _batch(0)
        fake = torch.cat([x[:, :1], causal_rollout(gen, x[:, 0], 2, noise=x[:, 1:], grad_chunks={0, 1})], 1)
        disc.backward(disc(fake.detach(), t).pow(2).mean())
        with disc.frozen():
            loss = disc(fake, t).pow(2).mean() + gen(fake, t, causal=True).pow(2).mean()
        gen.backward(loss)
        grads.append([p.grad.clone() for m in (gen, disc) for p in m.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) and all(torch.equal(a, b) for a, b in zip(*grads))


def test_run_checks_every_stage_batch_before_any_work(tmp_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "aad_bench.cli", "task=distill", "size=tiny", "progress=false",
                        f"paths.out={tmp_path}", "trainer.micro_batch=3"], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "error: method.ode.batch=2 (global batch) is not divisible by trainer.micro_batch (3)" in p.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()  # nothing was built or trained


def test_fsdp_units_are_modules_that_get_called():
    """FSDP gathers weights in a unit's __call__: DiT blocks are called, Wan runs its blocks' layers itself."""
    from aad_bench.engine.engines import fsdp_units
    from aad_bench.models.backbones import build_backbone
    from aad_bench.models.dit import Block

    dit = _model()
    assert fsdp_units(dit) == list(dit.blocks) and all(isinstance(u, Block) for u in fsdp_units(dit))
    from conftest import compose

    wan = build_backbone(compose(["model=wan_tiny"], Path("/tmp")).model)
    units = fsdp_units(wan)
    assert units and not any(u in list(wan.blocks) for u in units)
    assert {type(u).__name__ for u in units} >= {"FeedForward"} and all(any(True for _ in u.parameters())
                                                                        for u in units)

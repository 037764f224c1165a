"""Wan weights from local files: diffusers round trip, Self-Forcing / original Wan layouts, LoRA, I2V, bad files."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from wan_helpers import tiny_inputs, tiny_model, tiny_settings

from aad_bench.models.wan import build_wan
from aad_bench.models.wan.checkpoints import (
    CheckpointError,
    merge_lora,
    save_diffusers,
    to_diffusers,
    to_original,
)
from aad_bench.sampling.samplers import causal_rollout


def _same(a, b, ctx=None):
    x, t, c = tiny_inputs(a.cfg)
    c = ctx if ctx is not None else c
    with torch.no_grad():
        torch.testing.assert_close(a(x, t, causal=True, context=c), b(x, t, causal=True, context=c))


def test_diffusers_round_trip(tmp_path):
    m = tiny_model(seed=3)
    save_diffusers(m.net, tmp_path / "wan")
    assert (tmp_path / "wan" / "transformer" / "config.json").is_file()
    _same(m, build_wan(tiny_settings(checkpoint={"path": str(tmp_path / "wan")})))
    with pytest.raises(CheckpointError, match=r"num_layers=3 \(model config says 4\)"):
        build_wan(tiny_settings(depth=4, checkpoint={"path": str(tmp_path / "wan")}))


def test_self_forcing_generator_checkpoint_loads_and_samples(tmp_path):
    """A tiny checkpoint synthesised in Self-Forcing's layout: {'generator', 'generator_ema'} of 'model.'-keys."""
    gen, ema = tiny_model(seed=4), tiny_model(seed=5)
    sd = to_original(gen.net.state_dict(), prefix="model.")
    assert "model.blocks.0.self_attn.q.weight" in sd and "model.head.modulation" in sd
    assert "model.blocks.0.norm3.weight" in sd and "model.time_projection.1.weight" in sd
    torch.save({"generator": sd, "generator_ema": to_original(ema.net.state_dict(), "model.")}, tmp_path / "sf.pt")
    loaded = build_wan(tiny_settings(checkpoint={"path": str(tmp_path / "sf.pt"), "format": "self_forcing"}))
    _same(gen, loaded)
    _same(ema, build_wan(tiny_settings(checkpoint={"path": str(tmp_path / "sf.pt"), "ema": True})))
    cond = torch.randn(1, 16, 8, 8)
    torch.manual_seed(0)  # the sampler re-noises between steps with the global generator
    a = causal_rollout(gen, cond, 3, generator=torch.Generator().manual_seed(0), steps=(1.0, 0.5))
    torch.manual_seed(0)
    b = causal_rollout(loaded, cond, 3, generator=torch.Generator().manual_seed(0), steps=(1.0, 0.5))
    torch.testing.assert_close(a, b)
    torch.save({"generator": sd}, tmp_path / "no_ema.pt")
    with pytest.raises(CheckpointError, match="no 'generator_ema'.*set model.checkpoint.ema=False"):
        build_wan(tiny_settings(checkpoint={"path": str(tmp_path / "no_ema.pt"), "ema": True}))


def test_original_wan_single_file_and_shards(tmp_path):
    m = tiny_model(seed=6)
    sd = {k: v.contiguous() for k, v in to_original(m.net.state_dict()).items()}
    save_file(sd, tmp_path / "wan.safetensors")
    _same(m, build_wan(tiny_settings(checkpoint={"path": str(tmp_path / "wan.safetensors")})))
    keys = sorted(sd)
    (tmp_path / "shards").mkdir()
    save_file({k: sd[k] for k in keys[::2]}, tmp_path / "shards" / "part-1.safetensors")
    save_file({k: sd[k] for k in keys[1::2]}, tmp_path / "shards" / "part-2.safetensors")
    _same(m, build_wan(tiny_settings(checkpoint={"path": str(tmp_path / "shards"), "format": "wan"})))
    # ComfyUI-style prefix
    save_file({f"model.diffusion_model.{k}": v for k, v in sd.items()}, tmp_path / "comfy.safetensors")
    _same(m, build_wan(tiny_settings(checkpoint={"path": str(tmp_path / "comfy.safetensors")})))


def test_bad_checkpoints_list_keys(tmp_path):
    sd = to_original(tiny_model().net.state_dict(), prefix="model.")
    sd.pop("model.blocks.1.cross_attn.k.weight")
    sd["model.blocks.0._register_tokens"] = torch.zeros(3)
    sd["model.head.head.weight"] = torch.zeros(3, 3)
    torch.save({"generator": sd}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as e:
        build_wan(tiny_settings(checkpoint={"path": str(tmp_path / "bad.pt")}))
    msg = str(e.value)
    assert "1 missing: blocks.1.attn2.to_k.weight" in msg
    assert "1 unexpected: blocks.0._register_tokens" in msg
    assert "shape mismatch: proj_out.weight (3, 3) vs model (64, 64)" in msg
    with pytest.raises(CheckpointError, match="model.checkpoint.path=.*does not exist"):
        build_wan(tiny_settings(checkpoint={"path": str(tmp_path / "nope.pt")}))
    with pytest.raises(CheckpointError, match="format='sf'"):
        build_wan(tiny_settings(checkpoint={"path": str(tmp_path / "bad.pt"), "format": "sf"}))


def test_key_maps_are_inverse_including_i2v():
    m = tiny_model(image_dim=48, text_len=512)
    sd = m.net.state_dict()
    orig = to_original(sd, prefix="model.")
    assert "model.blocks.0.cross_attn.k_img.weight" in orig and "model.img_emb.proj.1.weight" in orig
    assert set(to_diffusers(orig)) == set(sd)


def test_lora_merge():
    m = tiny_model()
    sd = dict(m.net.state_dict())
    before = sd["blocks.0.attn1.to_q.weight"].clone()
    a, b = torch.randn(4, 64), torch.randn(64, 4)
    lora = {"generator_lora": {"base_model.model.blocks.0.self_attn.q.lora_A.weight": a,
                               "base_model.model.blocks.0.self_attn.q.lora_B.weight": b}}
    assert merge_lora(sd, lora, alpha=8) == 1
    torch.testing.assert_close(sd["blocks.0.attn1.to_q.weight"], before + 2.0 * b @ a)
    with pytest.raises(CheckpointError, match="no '\\*.lora_A.weight' keys"):
        merge_lora(sd, {"x": a})


def test_i2v_checkpoint_image_tokens_and_streaming():
    m = tiny_model(seed=7, image_dim=48, text_len=512)
    assert m.cfg.in_channels == 36
    x, t, _ = tiny_inputs(m.cfg)
    from aad_bench.models.wan import WanContext

    ctx = WanContext(text=torch.randn(2, 20, 32), image=torch.randn(2, 257, 48))
    with pytest.raises(ValueError, match="I2V Wan checkpoint needs CLIP image tokens"):
        m(x, t)
    with torch.no_grad():
        full = m(x, t, causal=True, context=ctx)
        cache = m.new_cache()
        outs = [m.forward_cached(x[:, :3], t[:, :3], cache, write_frames=1, context=ctx)]
        for k in (1, 3):  # [clean previous chunk, next chunk], the previous one written to the cache
            outs.append(m.forward_cached(x[:, k:k + 4], t[:, k:k + 4], cache, write_frames=2)[:, 2:])
        torch.testing.assert_close(torch.cat(outs, 1), full, atol=2e-5, rtol=1e-4)
        other = m(x, t, causal=True, context=WanContext(ctx.text, ctx.image.flip(0)))
        assert (other - full).abs().max() > 1e-4


@pytest.mark.parametrize("over", [{}, {"image_dim": 24, "text_len": 512}], ids=["t2v", "i2v"])
def test_original_names_are_what_diffusers_converts(over):
    """Our Wan-layout names (Self-Forcing's, without the 'model.' wrapper) are the ones diffusers' own converter of
    original Wan checkpoints reads: an independent check of the mapping table, for T2V and I2V."""
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    sd = tiny_model(**over).net.state_dict()
    theirs = convert_wan_transformer_to_diffusers(to_original(sd, prefix="model.diffusion_model."))
    assert set(theirs) == set(sd)
    assert all(torch.equal(theirs[k], sd[k]) for k in sd)

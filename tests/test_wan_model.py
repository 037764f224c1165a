"""wan_tiny behind the toy backbone's interface: same numbers as diffusers' own forward, block-causality,
streaming = full block-causal forward, bounded cache, features for discriminator heads, text conditioning."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from wan_helpers import tiny_inputs, tiny_model

from aad_bench.models.discriminator import Discriminator
from aad_bench.models.rectified_flow import add_noise
from aad_bench.sampling.samplers import causal_rollout


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_wan_tiny_size_and_interface(model):
    n = sum(p.numel() for p in model.parameters())
    assert 150_000 < n < 250_000
    c = model.cfg
    assert (c.tokens_per_frame, c.depth, c.dim, len(model.blocks)) == (16, 3, 64, 3)
    c.check_frames(7)
    with pytest.raises(ValueError, match="model.chunk=2 must divide"):
        c.check_frames(6)


def test_matches_diffusers_forward(model):
    """Per-frame modulation + our processor = diffusers' WanTransformer3DModel with a per-token 2-D timestep."""
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor

    ref = copy.deepcopy(model.net)
    for blk in ref.blocks:
        blk.attn1.set_processor(WanAttnProcessor())
    x, t, ctx = tiny_inputs(model.cfg)
    with torch.no_grad():
        ours = model(x, t, context=ctx)
        per_token = (1000 * t).repeat_interleave(model.cfg.tokens_per_frame, dim=1)
        theirs = ref(x.transpose(1, 2), per_token, ctx, return_dict=False)[0].transpose(1, 2)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_block_causal_vs_bidirectional(model):
    x, t, ctx = tiny_inputs(model.cfg)
    x2 = x.clone()
    x2[:, 5:] += 1.0  # change the last chunk (frames 5-6)
    with torch.no_grad():
        a, b = model(x, t, causal=True, context=ctx), model(x2, t, causal=True, context=ctx)
        assert torch.equal(a[:, :5], b[:, :5])
        assert (a[:, 5:] - b[:, 5:]).abs().max() > 1e-3
        a, b = model(x, t, context=ctx), model(x2, t, context=ctx)
        assert (a[:, :5] - b[:, :5]).abs().max() > 1e-4


def test_streaming_equals_full_causal(model):
    x, t, ctx = tiny_inputs(model.cfg)  # 7 frames = image + 3 chunks of 2; window 4 keeps 2 chunks
    with torch.no_grad():
        full = model(x, t, causal=True, context=ctx)
        cache = model.new_cache(window=False)
        outs = [model.forward_cached(x[:, :1], t[:, :1], cache, write_frames=1, context=ctx)]
        for k in range(3):
            sl = slice(1 + 2 * k, 3 + 2 * k)
            outs.append(model.forward_cached(x[:, sl], t[:, sl], cache, write_frames=2))
        torch.testing.assert_close(torch.cat(outs, 1), full, atol=2e-5, rtol=1e-4)
        # Self-Forcing's cache refresh in the same pass: [previous clean chunk, next noisy chunk]
        cache = model.new_cache()
        first = model.forward_cached(x[:, :3], t[:, :3], cache, write_frames=1, context=ctx)
        nxt = model.forward_cached(x[:, 1:5], t[:, 1:5], cache, write_frames=2)
        torch.testing.assert_close(first, full[:, :3], atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(nxt, full[:, 1:5], atol=2e-5, rtol=1e-4)


def test_cache_bounded_over_long_rollout(model):
    cfg = model.cfg
    cond = torch.randn(1, cfg.channels, cfg.height, cfg.width)
    chunks = 10 * 3  # 10x the training length (3 chunks)
    sizes = []
    with torch.no_grad():
        cache = model.new_cache()
        x = torch.randn(1, 1, cfg.channels, cfg.height, cfg.width)
        model.forward_cached(cond[:, None], torch.zeros(1, 1), cache, write_frames=1)
        for _ in range(chunks):
            x = torch.randn(1, cfg.chunk, cfg.channels, cfg.height, cfg.width)
            v = model.forward_cached(x, torch.ones(1, cfg.chunk), cache, write_frames=cfg.chunk)
            sizes.append(cache.tokens())
            assert torch.isfinite(v).all()
    bound = (1 + cfg.window_frames) * cfg.tokens_per_frame
    assert max(sizes) <= bound and sizes[-1] == sizes[-5]  # flat once the window is full
    out = causal_rollout(model, cond, chunks, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, chunks * cfg.chunk, cfg.channels, cfg.height, cfg.width) and torch.isfinite(out).all()


def test_features_feed_the_discriminator(model):
    x, t, _ = tiny_inputs(model.cfg)
    out, feats = model(x, t, features=(0, 2))
    assert out.shape == x.shape and [f.shape for f in feats] == [(2, 7 * 16, 64)] * 2
    with pytest.raises(ValueError, match="feature depths"):
        model(x, t, features=(5,))
    for head in ("video", "frame", "patch"):
        d = Discriminator(model, "bidirectional", head, [1, 2])
        logits = d(x, t)
        assert torch.isfinite(logits).all()
        logits.sum().backward()
        assert d.backbone.net.blocks[0].attn1.to_q.weight.grad is not None


def test_text_conditioning(model):
    x, t, ctx = tiny_inputs(model.cfg)
    with torch.no_grad():
        a, b = model(x, t, context=ctx), model(x, t, context=ctx.flip(0))
        assert (a - b).abs().max() > 1e-4
        none = model(x, t)
        dropped = model(x, t, context=ctx, cond_drop=torch.ones(2, dtype=torch.bool))
        torch.testing.assert_close(none, dropped)
        short = model(x, t, context=ctx[:, :5])  # shorter prompts are zero-padded, as Wan pads them
        torch.testing.assert_close(short, model(x, t, context=torch.cat([ctx[:, :5], 0 * ctx[:, 5:]], 1)))
    with pytest.raises(ValueError, match=r"text embeddings must be \[B, L, 32\] \(model.text_dim\)"):
        model(x, t, context=torch.randn(2, 4, 48))
    with pytest.raises(ValueError, match="more than model.text_len=16"):
        model(x, t, context=torch.randn(2, 17, 32))


def test_bad_shapes(model):
    x, t, _ = tiny_inputs(model.cfg)
    with pytest.raises(ValueError, match="model expects latents 16x8x8"):
        model(x[..., :4], t)
    with pytest.raises(ValueError, match="not divisible by patch x VAE factor"):
        model.cfg.check_resolution(60, 64, 8)
    with pytest.raises(ValueError, match="gives latents 4x4"):
        model.cfg.check_resolution(32, 32, 8)


def test_grad_checkpointing_same_gradients():
    x, t, ctx = tiny_inputs(tiny_model().cfg)
    grads = []
    for ckpt in (False, True):
        m = tiny_model(grad_ckpt=ckpt).train()
        cache = m.new_cache()
        m.forward_cached(x[:, :1], t[:, :1], cache, write_frames=1, context=ctx)
        loss = m(x, t, causal=True, context=ctx).square().mean()
        loss = loss + m.forward_cached(x[:, 1:5], t[:, 1:5], cache, write_frames=2).square().mean()
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_wan_flow_convention_matches_rectified_flow():
    """diffusers' FlowMatch scheduler (Wan's): x_t = (1 - sigma) x0 + sigma noise, Euler on the velocity."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(shift=1.0)
    sched.set_timesteps(4)
    x0, noise = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    ts = sched.timesteps
    sigma = float(ts[1]) / 1000
    torch.testing.assert_close(sched.scale_noise(x0, ts[1:2], noise), add_noise(x0, noise, torch.tensor([sigma])))
    v = noise - x0
    x_t = add_noise(x0, noise, torch.tensor([sigma]))
    stepped = sched.step(v, ts[1], x_t).prev_sample
    nxt = float(sched.sigmas[2])
    torch.testing.assert_close(stepped, x_t + (nxt - sigma) * v)


@pytest.mark.filterwarnings("ignore:.*flex_attention.*:UserWarning")
def test_flex_block_mask_matches_sdpa_mask(model):
    """The BlockMask used on CUDA encodes the same visibility as the SDPA boolean mask (eager flex, CPU)."""
    flex = copy.deepcopy(model)
    flex.cfg = dataclasses.replace(model.cfg, attention="flex")
    x, t, ctx = tiny_inputs(model.cfg)
    with torch.no_grad():
        torch.testing.assert_close(flex(x, t, causal=True, context=ctx), model(x, t, causal=True, context=ctx),
                                   atol=2e-5, rtol=1e-4)
        caches = [m.new_cache() for m in (flex, model)]
        outs = [[m.forward_cached(x[:, :3], t[:, :3], c, write_frames=1, context=ctx),
                 m.forward_cached(x[:, 1:5], t[:, 1:5], c, write_frames=2)] for m, c in zip((flex, model), caches)]
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)

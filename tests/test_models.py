"""The video DiT: block-causal masking, streaming with the KV cache, bounded sink + window."""

import pytest
import torch

from aad_bench.models.attention import block_causal_mask, chunk_ids
from aad_bench.models.dit import DiTConfig, VideoDiT


def _model(**kw) -> VideoDiT:
    torch.manual_seed(0)
    m = VideoDiT(DiTConfig(height=16, width=16, patch=4, dim=32, depth=2, heads=2, **kw)).double()
    # the adaLN-zero init makes a fresh model output zeros; give every weight a value so the tests can fail
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.1)
    return m


def _inputs(frames: int = 13, b: int = 2):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, frames, 3, 16, 16, generator=g, dtype=torch.float64)
    t = torch.rand(b, frames, generator=g, dtype=torch.float64)
    t[:, 0] = 0
    return x, t


def test_chunk_layout_puts_the_image_in_its_own_chunk():
    assert chunk_ids(9, 4).tolist() == [0, 1, 1, 1, 1, 2, 2, 2, 2]
    m = block_causal_mask(3, 2, 1)  # frames: image | chunk(1,2)
    assert m.tolist() == [[True, False, False], [True, True, True], [True, True, True]]


@pytest.mark.parametrize("k,mlp", [(0, "linear"), (1, "linear"), (2, "linear"), (1, "conv")])
def test_block_causal_output_ignores_later_frames(k, mlp):
    m = _model(mlp=mlp)
    x, t = _inputs()
    end = 1 + 4 * k  # frames of chunks 0..k
    y = m(x, t, causal=True)
    x2 = x.clone()
    x2[:, end:] += torch.randn_like(x2[:, end:])
    y2 = m(x2, t, causal=True)
    assert torch.allclose(y[:, :end], y2[:, :end], atol=1e-6)
    assert not torch.allclose(y[:, end:], y2[:, end:], atol=1e-3)


def test_bidirectional_output_sees_later_frames():
    m = _model()
    x, t = _inputs()
    x2 = x.clone()
    x2[:, 9:] += 1.0
    assert not torch.allclose(m(x, t)[:, :9], m(x2, t)[:, :9], atol=1e-4)


@pytest.mark.parametrize("image_cond,predict,skip,pos,mlp", [
    ("concat", "v", False, False, "linear"), ("chunk0", "v", False, False, "linear"),
    ("concat", "x0", False, True, "linear"), ("chunk0", "x0", True, True, "linear"),
    ("concat", "v", False, True, "conv")])
@pytest.mark.parametrize("pos_frames", [True, False])
def test_streaming_equals_full_block_causal_forward(image_cond, predict, skip, pos, mlp, pos_frames):
    m = _model(window_frames=64, image_cond=image_cond, predict=predict, image_skip=skip, pos_embed=pos,
               precond=skip, mlp=mlp, pos_frames=pos_frames)
    x, t = _inputs()
    full = m(x, t, causal=True)
    cache = m.new_cache()
    outs = [m.forward_cached(x[:, :1], t[:, :1], cache, write_frames=1)]
    for s in range(1, 13, 4):
        outs.append(m.forward_cached(x[:, s:s + 4], t[:, s:s + 4], cache, write_frames=4))
    assert torch.allclose(torch.cat(outs, 1), full, atol=1e-9)


@pytest.mark.parametrize("image_cond", ["concat", "chunk0"])
def test_fused_cache_refresh_equals_separate_passes(image_cond):
    m = _model(window_frames=64, image_cond=image_cond)
    x, t = _inputs()
    full = m(x, t, causal=True)
    cache = m.new_cache()
    m.forward_cached(x[:, :1], t[:, :1], cache, write_frames=1)
    y = m.forward_cached(x[:, 1:9], t[:, 1:9], cache, write_frames=4)  # chunk 1 written, chunk 2 generated
    assert torch.allclose(y, full[:, 1:9], atol=1e-9)
    assert cache.chunks == [1, 4]


def test_sink_and_window_keep_the_cache_bounded():
    m = _model(window_frames=8, sink_chunks=1)
    from aad_bench.sampling.samplers import causal_rollout

    sizes = []
    cond = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    m.float()
    train_chunks = 4
    out = causal_rollout(m, cond.float(), 10 * train_chunks,
                         on_chunk=lambda _: sizes.append(None))
    assert out.shape[1] == 10 * train_chunks * 4
    cache = m.new_cache()
    x = torch.randn(1, 1, 3, 16, 16)
    m.forward_cached(x, torch.zeros(1, 1), cache, write_frames=1)
    tokens = []
    for _ in range(10 * train_chunks):
        m.forward_cached(torch.randn(1, 4, 3, 16, 16), torch.zeros(1, 4), cache, write_frames=4)
        tokens.append(cache.tokens())
    per_frame = m.cfg.tokens_per_frame
    assert max(tokens) == (1 + 8) * per_frame  # sink (image) + 8-frame window
    assert tokens[-1] == tokens[5]
    assert cache.frames_seen == 1 + 40 * 4


@pytest.mark.parametrize("image_cond,local", [("concat", True), ("chunk0", False)])
def test_image_reaches_later_frames_only_through_attention_in_chunk0(image_cond, local):
    m = _model(image_cond=image_cond)
    with torch.no_grad():
        for blk in m.blocks:  # no attention: every token sees only itself
            blk.attn.out.weight.zero_()
            blk.attn.out.bias.zero_()
    x, t = _inputs(frames=5)
    x2 = x.clone()
    x2[:, 0] += 1.0  # another conditioning image
    changed = not torch.allclose(m(x, t)[:, 1:], m(x2, t)[:, 1:], atol=1e-6)
    assert changed == local


def test_unknown_image_cond_names_the_setting():
    with pytest.raises(ValueError, match="model.image_cond"):
        DiTConfig(image_cond="chunk")
    with pytest.raises(ValueError, match="model.predict"):
        DiTConfig(predict="eps")
    with pytest.raises(ValueError, match="model.mlp"):
        DiTConfig(mlp="dw")


def test_preconditioned_x0_keeps_clean_frames_and_is_linear_at_init():
    """precond: a clean frame (t = 0) comes back unchanged (v = 0) and a zero head gives the linear estimate."""
    m = _model(predict="x0", precond=True, image_skip=True)
    with torch.no_grad():
        m.patch_out.weight.zero_()
        m.patch_out.bias.zero_()
    x, t = _inputs(frames=5)
    t[:, 1] = 0.0
    v = m(x, t)
    assert torch.allclose(v[:, :2], torch.zeros_like(v[:, :2]), atol=1e-12)
    from aad_bench.models.rectified_flow import x0_from_v

    x0 = x0_from_v(x, v, t.clamp_min(0.05))[:, 2:]
    tt, img = t[:, 2:, None, None, None], x[:, :1]
    a = 1 - tt
    expect = img + a * 0.25 / (a * a * 0.25 + tt * tt) * (x[:, 2:] - a * img)
    assert torch.allclose(x0, expect, atol=1e-9)


def test_x0_prediction_is_returned_as_the_matching_velocity():
    """predict=x0: the head's output is the clean estimate; callers get v with x_t - t*v = that estimate."""
    from aad_bench.models.rectified_flow import x0_from_v

    m = _model(predict="x0")
    x, t = _inputs(frames=5)
    t = t.clamp_min(0.1)
    v = m(x, t)
    m.cfg.predict = "v"  # the same weights, raw head output
    raw = m(x, t)
    assert torch.allclose(x0_from_v(x, v, t), raw, atol=1e-9)
    m.cfg.predict, m.cfg.image_skip = "x0", True  # the head predicts the change from the image
    assert torch.allclose(x0_from_v(x, m(x, t), t), raw + x[:, :1], atol=1e-9)
    drop = torch.tensor([True, False])  # CFG's unconditional branch gets no image through the skip either
    x0 = x0_from_v(x, m(x, t, cond_drop=drop), t)
    m.cfg.image_skip = False
    assert torch.allclose(x0[0], x0_from_v(x, m(x, t, cond_drop=drop), t)[0], atol=1e-9)


def test_features_are_reachable_at_chosen_depths():
    m = _model()
    x, t = _inputs(frames=5)
    out, feats = m(x, t, features=(0, 1))
    assert out.shape == x.shape and len(feats) == 2 and feats[0].shape == (2, 5 * 16, 32)
    with pytest.raises(ValueError, match="feature depths"):
        m(x, t, features=(5,))


@pytest.mark.parametrize("kw,msg", [(dict(chunk=5, window_frames=8), "must divide the generated frame count"),
                                    (dict(window_frames=2), "smaller than a chunk"),
                                    (dict(patch=5), "must divide the frame size")])
def test_impossible_shapes_fail_with_the_setting_named(kw, msg):
    with pytest.raises(ValueError, match=msg):
        cfg = DiTConfig(height=16, width=16, **kw)
        cfg.check_frames(13)


def test_codec_interface_and_unknown_name():
    from aad_bench.models.codec import build_codec
    from aad_bench.registry import UnknownNameError

    codec = build_codec("identity")
    x = torch.rand(2, 5, 3, 16, 16) * 2 - 1
    assert torch.equal(codec.decode(codec.encode(x)), x)
    with pytest.raises(ValueError, match=r"\[B,T,3,H,W\]"):
        codec.encode(torch.rand(5, 3, 16, 16))
    with pytest.raises(UnknownNameError, match="Did you mean 'identity'"):
        build_codec("identty")


def test_training_rollout_refreshes_the_cache_without_gradient():
    """Self-Forcing's cache refresh runs without gradient: a chunk's loss reaches the weights only through that
    chunk's own pass (the fused refresh+generate pass of ``refresh_grad=True`` also sends it through the
    refreshed keys/values)."""
    from aad_bench.sampling.samplers import causal_rollout

    m = _model(window_frames=64)
    g = torch.Generator().manual_seed(2)
    cond = torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64)
    noise = torch.randn(2, 8, 3, 16, 16, generator=g, dtype=torch.float64)
    w = torch.randn(2, 4, 3, 16, 16, generator=g, dtype=torch.float64)

    def grads(loss):
        m.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None])

    # reference: the context (image, chunk 1) cached under no_grad, then chunk 2 generated with gradient
    with torch.no_grad():
        first = causal_rollout(m, cond, 1, noise=noise[:, :4])
        cache = m.new_cache()
        m.forward_cached(cond[:, None], torch.zeros(2, 1, dtype=torch.float64), cache, write_frames=1)
        m.forward_cached(first, torch.zeros(2, 4, dtype=torch.float64), cache, write_frames=4)
    t1 = torch.ones(2, 4, dtype=torch.float64)
    ref = grads(((noise[:, 4:] - m.forward_cached(noise[:, 4:], t1, cache)) * w).sum())
    for refresh_grad, same in ((False, True), (True, False)):
        out = causal_rollout(m, cond, 2, noise=noise, grad_chunks={1}, refresh_grad=refresh_grad)
        assert torch.allclose(out[:, :4], first, atol=1e-12)
        got = grads((out[:, 4:] * w).sum())
        assert torch.allclose(got, ref, atol=1e-10) == same


def test_cached_keys_carry_no_frame_position_without_pos_frames():
    """A streaming cache keeps keys and values computed when a chunk was written; after the window evicts chunks the
    cache is laid out anew (RoPE follows, at attention time). With ``pos_frames=False`` nothing baked into a cached
    key depends on where its frame was: the same chunk written at two places gives the same keys."""
    for pos_frames, same in ((False, True), (True, False)):
        m = _model(pos_embed=True, pos_frames=pos_frames, chunk=2, window_frames=64)
        x, _ = _inputs(frames=5)
        keys = []
        for lead in (1, 3):  # the same chunk after the image (+ one chunk of other frames)
            cache = m.new_cache()
            seq = torch.cat([x[:, :lead], x[:, 1:3]], 1)
            m.forward_cached(seq, torch.zeros(seq.shape[:2], dtype=seq.dtype), cache, write_frames=lead + 2)
            keys.append(cache.k[0][:, :, -2 * m.cfg.tokens_per_frame:])
        assert torch.allclose(keys[0], keys[1]) == same

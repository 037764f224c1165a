"""codec=wan_vae (tiny random Wan VAE) and the cached umT5 / CLIP encoders built from local folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from wan_helpers import tiny_text_encoder

from aad_bench.models.codec import CODECS, build_codec
from aad_bench.models.encoders import ImageEncoder, TextEncoder
from aad_bench.models.wan_vae import wan_vae_codec


@pytest.fixture(scope="module")
def codec():
    return wan_vae_codec(random="tiny", batch=2, seed=0)


def test_wan_vae_shapes_and_rules(codec):
    assert "wan_vae" in CODECS.names()
    video = torch.rand(3, 9, 3, 32, 48) * 2 - 1
    z = codec.encode(video)
    assert z.shape == (3, 3, 16, 4, 6) and codec.latent_frames(9) == 3 and codec.pixel_frames(3) == 9
    back = codec.decode(z)
    assert back.shape == video.shape and back.abs().max() <= 1
    # the first frame is encoded on its own: a conditioning image is exactly latent frame 0
    torch.testing.assert_close(codec.encode(video[:, :1])[:, 0], z[:, 0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="a clip of 10 frames; the Wan VAE needs 1 \\+ 4k frames"):
        codec.encode(torch.zeros(1, 10, 3, 32, 32))
    with pytest.raises(ValueError, match="frame size 30x32 is not divisible by the VAE factor 8"):
        codec.encode(torch.zeros(1, 5, 3, 30, 32))
    with pytest.raises(ValueError, match="codec=wan_vae needs model.vae.path"):
        build_codec("wan_vae")


def test_wan_vae_from_local_folder(tmp_path):
    codec = wan_vae_codec(random="tiny", seed=1)
    codec.vae.save_pretrained(tmp_path / "wan" / "vae")
    loaded = wan_vae_codec(path=str(tmp_path / "wan"))
    video = torch.rand(1, 5, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(codec.encode(video), loaded.encode(video))
    with pytest.raises(ValueError, match="model.vae.path=.*does not exist"):
        wan_vae_codec(path=str(tmp_path / "missing"))


def test_text_encoder_cached_on_disk(tmp_path):
    tiny_text_encoder(tmp_path / "wan")
    enc = TextEncoder(str(tmp_path / "wan"), cache=tmp_path / "cache", text_len=16)
    emb = enc.encode(["a red ball moves left", "a cat sits", "a red ball moves left"])
    assert emb.shape == (3, 16, 32)
    assert (emb[0, 5:] == 0).all() and (emb[0, :5] != 0).any()  # 5 tokens, zero padded to text_len
    torch.testing.assert_close(emb[0], emb[2])
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 2
    again = TextEncoder(str(tmp_path / "wan"), cache=tmp_path / "cache", text_len=16)
    torch.testing.assert_close(again.encode(["a  cat\nsits"]), emb[1:2])  # same after cleaning, from disk
    assert again._model is None  # the encoder was never loaded
    with pytest.raises(ValueError, match="model.encoders.text is not set"):
        TextEncoder(None)
    with pytest.raises(ValueError, match="model.encoders.text=.*does not exist"):
        TextEncoder(str(tmp_path / "none"))


def test_image_encoder_cached_on_disk(tmp_path):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8)
    CLIPVisionModel(cfg).save_pretrained(tmp_path / "wan" / "image_encoder")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path / "wan" / "image_processor")
    enc = ImageEncoder(str(tmp_path / "wan"), cache=tmp_path / "cache")
    imgs = np.random.default_rng(0).integers(0, 255, (2, 40, 48, 3), dtype=np.uint8)
    emb = enc.encode(imgs)
    assert emb.shape == (2, 17, 32)  # 16 patches + CLS, penultimate layer
    again = ImageEncoder(str(tmp_path / "wan"), cache=tmp_path / "cache")
    torch.testing.assert_close(again.encode(imgs[1:]), emb[1:])
    assert again._model is None
    assert json.loads((tmp_path / "wan" / "image_encoder" / "config.json").read_text())["hidden_size"] == 32

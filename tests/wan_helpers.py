"""Shared builders for the Wan tests: the wan_tiny config from the real conf file, random inputs."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from aad_bench.models.wan import WanConfig, build_wan

CONF = Path(__file__).resolve().parents[1] / "aad_bench" / "conf" / "model" / "wan_tiny.yaml"


def tiny_settings(**over) -> dict:
    """``conf/model/wan_tiny.yaml`` as a dict (interpolations left as they are), with overrides."""
    d = OmegaConf.to_container(OmegaConf.load(CONF), resolve=False)
    d.update(over)
    return d


def tiny_model(seed: int = 0, **over):
    torch.manual_seed(seed)
    return build_wan(tiny_settings(**over)).eval()


def tiny_inputs(cfg: WanConfig, b: int = 2, frames: int = 7, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, frames, cfg.channels, cfg.height, cfg.width, generator=g)
    t = torch.rand(b, frames, generator=g)
    t[:, 0] = 0
    ctx = torch.randn(b, cfg.text_len, cfg.text_dim, generator=g)
    return x, t, ctx


def tiny_text_encoder(folder: Path) -> Path:
    """A random umT5 encoder (width 32 = wan_tiny's text_dim) + a word-level tokenizer, as a diffusers folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    words = ["<pad>", "</s>", "<unk>", "a", "red", "ball", "moves", "left", "cat", "sits"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder / "tokenizer")
    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=len(words), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4)
    UMT5EncoderModel(cfg).save_pretrained(folder / "text_encoder")
    return folder


def self_forcing_checkpoint(path: Path, seed: int = 4, **over) -> Path:
    """A tiny generator saved in Self-Forcing's layout ({'generator', 'generator_ema'} of 'model.'-keys)."""
    from aad_bench.models.wan.checkpoints import to_original

    sd = to_original(tiny_model(seed=seed, **over).net.state_dict(), prefix="model.")
    torch.save({"generator": sd, "generator_ema": sd}, path)
    return path


def spy_wan_context(monkeypatch, stages: tuple[str, ...]) -> list[tuple]:
    """Record every Wan forward / forward_cached as (stage, method, batch, context or None) during a distillation.

    ``stages`` are the ``training.distill`` stage functions to label (``ode_stage`` ...); calls before the first
    are labelled ``teacher``.
    """
    from aad_bench.models.wan.model import WanVideo
    from aad_bench.training import distill as distill_driver

    stage, calls = ["teacher"], []

    def spy(name):
        real = getattr(WanVideo, name)

        def wrapped(self, x, t, *a, context=None, **k):
            calls.append((stage[0], name, x.shape[0], None if context is None else context.detach().clone()))
            return real(self, x, t, *a, context=context, **k)
        return wrapped

    for name in ("forward", "forward_cached"):
        monkeypatch.setattr(WanVideo, name, spy(name))
    for name in stages:
        real_stage = getattr(distill_driver, name)

        def run_stage(*a, _real=real_stage, _name=name, **k):
            stage[0] = _name.split("_")[0]
            return _real(*a, **k)
        monkeypatch.setattr(distill_driver, name, run_stage)
    return calls

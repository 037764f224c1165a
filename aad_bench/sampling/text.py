"""Prompts at sampling time: captions → text embeddings for text-conditioned backbones (Wan).

The toy DiT has no text input and never gets any. A Wan backbone gets umT5 embeddings of each video's caption
from :class:`~aad_bench.models.encoders.TextEncoder` (``model.encoders.text``, cached on disk per prompt under
``model.encoders.cache``), following ``sample.text``:

* ``auto`` (default): encode the captions when ``model.encoders.text`` is set; without an encoder, sample with
  the empty prompt, say so in one line and record it in the video set's ``index.json`` (``sampling.prompts``);
* ``required``: captions without ``model.encoders.text`` is an error naming the setting (public T2V checkpoints);
* ``empty``: always the empty prompt.

Videos without a caption in a set where others have one get the encoded empty string.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

TEXT_MODES = ("auto", "required", "empty")
_ENCODERS: dict[tuple, Any] = {}  # one encoder per settings in a process (loaded lazily, on a cache miss)


def text_conditioned(model: torch.nn.Module) -> bool:
    """Whether the backbone takes text embeddings (it declares a ``text_dim``)."""
    return getattr(getattr(model, "cfg", None), "text_dim", None) is not None


def text_mode(cfg: DictConfig) -> str:
    """``sample.text``, checked (one line naming the setting otherwise)."""
    mode = str((cfg.get("sample") or {}).get("text", "auto"))
    if mode not in TEXT_MODES:
        raise ValueError(f"sample.text={mode!r}: one of {', '.join(TEXT_MODES)}")
    return mode


def check_text(cfg: DictConfig, captions: bool) -> None:
    """Under ``sample.text=required``, captions without ``model.encoders.text`` are an error (before any work)."""
    if captions and text_mode(cfg) == "required" and not (cfg.model.get("encoders") or {}).get("text"):
        raise ValueError("these videos have captions but model.encoders.text is not set: give the local Wan "
                         "folder with text_encoder/ + tokenizer/ (public models: public.base or its env var), "
                         "or sample.text=empty to sample with the empty prompt")


def _encoder(cfg: DictConfig, text_len: int, device: torch.device):
    from aad_bench.models.encoders import TextEncoder

    enc = OmegaConf.to_container(cfg.model.get("encoders") or {}, resolve=True)
    dev = str(enc.get("device") or device)
    key = (enc.get("text"), enc.get("cache"), text_len, dev, enc.get("dtype", "float32"))
    if key not in _ENCODERS:
        _ENCODERS[key] = TextEncoder(enc.get("text"), enc.get("cache"), text_len, dev, enc.get("dtype", "float32"))
    return _ENCODERS[key]


def caption_context(cfg: DictConfig, model: torch.nn.Module, captions: list[str | None],
                    device: torch.device | str = "cpu") -> tuple[torch.Tensor | None, dict[str, Any]]:
    """Text embeddings ``[B, text_len, text_dim]`` for ``captions`` (on ``device``) and what was used.

    Returns ``(None, record)`` for backbones without text, sets without captions, or the empty-prompt
    fallback; ``record`` goes into the video set's ``sampling`` entry (``{"prompts": ...}``).
    """
    if not text_conditioned(model):
        return None, {}
    mode = text_mode(cfg)
    if not any(captions):
        return None, {"prompts": "empty (no captions)"}
    if mode == "empty":
        return None, {"prompts": "empty (sample.text=empty)"}
    if not (cfg.model.get("encoders") or {}).get("text"):
        check_text(cfg, True)
        print("note: captions present but model.encoders.text is not set: sampling with the empty prompt "
              "(sample.text=auto; set model.encoders.text, or sample.text=required to make this an error)")
        return None, {"prompts": "empty (model.encoders.text not set)"}
    enc = _encoder(cfg, int(model.cfg.text_len), torch.device(device))
    emb = enc.encode([c or "" for c in captions])
    if emb.shape[-1] != model.cfg.text_dim:
        raise ValueError(f"model.encoders.text gives {emb.shape[-1]}-wide embeddings but model.text_dim="
                         f"{model.cfg.text_dim}")
    return emb.to(device), {"prompts": "captions", "text_encoder": enc.fingerprint}

"""Conditioning encoders of Wan: umT5 text embeddings and CLIP image tokens, cached on disk.

Both load from local folders only (``model.encoders.text`` / ``model.encoders.image``): a diffusers Wan folder
(``text_encoder/`` + ``tokenizer/``, ``image_encoder/`` + ``image_processor/``) or a plain transformers folder.
Every embedding is stored once under ``<cache>/<encoder fingerprint>/<content hash>.pt``; the encoder itself is
loaded only when something is missing from the cache, so cached runs never touch the 11 GB umT5 weights.

Text follows Wan's pipeline: tokens up to ``text_len`` (512), the encoder's last hidden state trimmed to the
prompt's length and zero-padded back to ``text_len``. Images give CLIP's penultimate hidden state (257 tokens).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aad_bench.utils.io import atomic_write_bytes


def _resolve(path: str | None, setting: str, sub: str) -> Path:
    """The model folder for a setting; one clear line when it is unset or missing."""
    if not path:
        raise ValueError(f"{setting} is not set: give a local folder (a diffusers Wan folder or a transformers "
                         f"model folder); nothing is downloaded")
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"{setting}={p} does not exist (weights are never downloaded)")
    return p / sub if (p / sub / "config.json").is_file() else p


def _fingerprint(*folders: Path) -> str:
    """Identity of an encoder from its files: small files by content, weights by name and size."""
    h = hashlib.sha256()
    for folder in folders:
        for f in sorted(folder.rglob("*")):
            if not f.is_file():
                continue
            h.update(f.name.encode())
            big = f.suffix in (".safetensors", ".bin", ".pth", ".pt", ".gguf")
            h.update(str(f.stat().st_size).encode() if big else f.read_bytes())
    return h.hexdigest()[:16]


class _DiskCache:
    """``key -> tensor`` files (atomic writes) under one folder."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def path(self, key: str) -> Path | None:
        return None if self.root is None else self.root / key[:2] / f"{key}.pt"

    def get(self, key: str) -> torch.Tensor | None:
        p = self.path(key)
        return torch.load(p, map_location="cpu", weights_only=True) if p is not None and p.is_file() else None

    def put(self, key: str, value: torch.Tensor) -> None:
        p = self.path(key)
        if p is not None:
            buf = io.BytesIO()
            torch.save(value.detach().cpu().clone(), buf)
            atomic_write_bytes(p, buf.getvalue())


def clean_prompt(text: str) -> str:
    """Wan's prompt cleaning without ftfy: HTML entities unescaped, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(html.unescape(text))).strip()


class TextEncoder:
    """umT5 prompt embeddings ``[B, text_len, D]`` (transformers ``UMT5EncoderModel``).

    Args:
        path: ``model.encoders.text``.
        cache: folder for cached embeddings (``None`` = no cache).
        text_len: tokens per prompt (Wan: 512).
    """

    setting = "model.encoders.text"

    def __init__(self, path: str | None, cache: str | Path | None = None, text_len: int = 512,
                 device: str = "cpu", dtype: str = "float32") -> None:
        self.model_dir = _resolve(path, self.setting, "text_encoder")
        base = self.model_dir.parent if self.model_dir.name == "text_encoder" else self.model_dir
        self.tok_dir = base / "tokenizer" if (base / "tokenizer").is_dir() else self.model_dir
        self.text_len, self.device, self.dtype = text_len, device, getattr(torch, dtype)
        self.fingerprint = _fingerprint(self.model_dir, self.tok_dir) + f"-{text_len}"
        self.cache = _DiskCache(Path(cache) / "text" / self.fingerprint if cache else None)
        self._model: Any = None
        self._tok: Any = None

    def _load(self) -> None:
        from transformers import AutoTokenizer, UMT5EncoderModel

        self._tok = AutoTokenizer.from_pretrained(self.tok_dir, local_files_only=True)
        self._model = UMT5EncoderModel.from_pretrained(self.model_dir, local_files_only=True,
                                                       torch_dtype=self.dtype).to(self.device).eval()

    @torch.no_grad()
    def _run(self, prompts: list[str]) -> list[torch.Tensor]:
        if self._model is None:
            self._load()
        enc = self._tok(prompts, padding="max_length", max_length=self.text_len, truncation=True,
                        add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        mask = enc.attention_mask.to(self.device)
        out = self._model(enc.input_ids.to(self.device), mask).last_hidden_state.float().cpu()
        return [o[:n] for o, n in zip(out, mask.sum(1).tolist())]

    def encode(self, prompts: list[str]) -> torch.Tensor:
        """Embeddings ``[B, text_len, D]``, zero after each prompt's tokens; computed once per prompt."""
        prompts = [clean_prompt(p) for p in prompts]
        keys = [hashlib.sha256(p.encode()).hexdigest() for p in prompts]
        got = {k: self.cache.get(k) for k in dict.fromkeys(keys)}
        todo = [p for p, k in dict(zip(prompts, keys)).items() if got[k] is None]
        if todo:
            for p, emb in zip(todo, self._run(todo)):
                k = hashlib.sha256(p.encode()).hexdigest()
                got[k] = emb
                self.cache.put(k, emb)
        embs = [got[k].float() for k in keys]
        return torch.stack([torch.nn.functional.pad(e, (0, 0, 0, self.text_len - len(e))) for e in embs])


class ImageEncoder:
    """CLIP image tokens ``[B, 257, D]`` (penultimate hidden state, as Wan I2V uses).

    Args:
        path: ``model.encoders.image``.
        cache: folder for cached embeddings (``None`` = no cache).
    """

    setting = "model.encoders.image"

    def __init__(self, path: str | None, cache: str | Path | None = None, device: str = "cpu",
                 dtype: str = "float32") -> None:
        self.model_dir = _resolve(path, self.setting, "image_encoder")
        base = self.model_dir.parent if self.model_dir.name == "image_encoder" else self.model_dir
        self.proc_dir = base / "image_processor" if (base / "image_processor").is_dir() else self.model_dir
        self.device, self.dtype = device, getattr(torch, dtype)
        self.fingerprint = _fingerprint(self.model_dir, self.proc_dir)
        self.cache = _DiskCache(Path(cache) / "image" / self.fingerprint if cache else None)
        self._model: Any = None
        self._proc: Any = None

    @torch.no_grad()
    def _run(self, images: list[np.ndarray]) -> torch.Tensor:
        if self._model is None:
            from transformers import CLIPImageProcessor, CLIPVisionModel

            self._proc = CLIPImageProcessor.from_pretrained(self.proc_dir, local_files_only=True)
            self._model = CLIPVisionModel.from_pretrained(self.model_dir, local_files_only=True,
                                                          torch_dtype=self.dtype).to(self.device).eval()
        px = self._proc(images=images, return_tensors="pt").pixel_values.to(self.device, self.dtype)
        return self._model(pixel_values=px, output_hidden_states=True).hidden_states[-2].float().cpu()

    def encode(self, images: list[np.ndarray] | np.ndarray) -> torch.Tensor:
        """Tokens for uint8 RGB images ``[H, W, 3]``; computed once per distinct image."""
        images = [np.ascontiguousarray(np.asarray(im, dtype=np.uint8)) for im in images]
        keys = [hashlib.sha256(json.dumps(im.shape).encode() + im.tobytes()).hexdigest() for im in images]
        got = {k: self.cache.get(k) for k in dict.fromkeys(keys)}
        todo = {k: im for k, im in zip(keys, images) if got[k] is None}
        if todo:
            for k, emb in zip(todo, self._run(list(todo.values()))):
                got[k] = emb
                self.cache.put(k, emb)
        return torch.stack([got[k].float() for k in keys])

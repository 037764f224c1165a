"""Prompt sets: ``data=prompts`` for the data-free stages, and VBench-I2V-style image folders for sampling.

* A prompt list: ``.txt`` (one prompt a line), or ``.jsonl`` / ``.csv`` rows with ``prompt`` (| ``caption`` |
  ``text``) and an optional ``image`` path (relative to the file).
* A VBench-I2V-style folder: conditioning images whose file stem is the prompt (VBench's ``crop/<ratio>/``
  layout), or a folder with an ``info.json`` list of ``{"image_name", "prompt_en"}`` entries (VBench's
  ``vbench2_i2v_full_info.json`` shape). Sampling writes one video per (image, prompt, seed) so VBench-I2V's
  custom mode can match them back by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aad_bench.data.manifest import CAPTION_KEYS, _pick, _rows

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
NEEDS_TEACHER = ("data=prompts cannot train a teacher (no clips): set data.teacher (a finished teacher folder, "
                 "<paths.cache>/teacher/<hash>, e.g. from a data=folder run) or model.checkpoint.path")
BLANK_GREY = 128  # the conditioning frame of a prompt without an image: a mid-grey frame (0 in [-1, 1])


@dataclass(frozen=True)
class PromptItem:
    """One conditioning: a stable id (file-name safe), the prompt, and an optional image."""

    id: str
    prompt: str
    image: Path | None = None


def teacher_folder(folder: str | Path) -> Path:
    """``data.teacher`` checked: a finished teacher run folder (one line naming the setting otherwise)."""
    from aad_bench.runfolder import RunFolder

    path = Path(folder).expanduser()
    if not RunFolder(path).is_finished():
        raise ValueError(f"data.teacher={folder}: not a finished teacher folder (no results.json with status "
                         f"finished)")
    return path


def _safe(text: str, n: int) -> str:
    keep = "".join(ch if ch.isalnum() or ch in " -_," else "_" for ch in text).strip()
    return f"{n:05d}-{keep[:80]}"


def read_prompts(path: str | Path) -> list[PromptItem]:
    """Prompts (and images) of a ``.txt`` / ``.jsonl`` / ``.csv`` file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"data.path={path} does not exist (data=prompts: a prompt list)")
    if path.suffix == ".txt":
        rows = [{"prompt": line.strip()} for line in path.read_text().splitlines() if line.strip()]
    elif path.suffix in (".jsonl", ".csv"):
        rows = _rows(path)
    else:
        raise ValueError(f"data.path={path}: expected .txt, .jsonl or .csv (data=prompts)")
    items = []
    for i, row in enumerate(rows):
        prompt = _pick(row, ("prompt", *CAPTION_KEYS))
        if prompt is None:
            raise ValueError(f"{path}: entry {i + 1} has no prompt ({' | '.join(('prompt', *CAPTION_KEYS))})")
        image = row.get("image") or None
        img = (path.parent / image).resolve() if image else None
        if img is not None and not img.is_file():
            raise ValueError(f"{path}: entry {i + 1}: image {img} does not exist")
        items.append(PromptItem(_safe(prompt, i), prompt, img))
    if not items:
        raise ValueError(f"data.path={path}: no prompts")
    return items


def read_i2v_folder(folder: str | Path) -> list[PromptItem]:
    """Image + prompt pairs of a VBench-I2V-style folder (``info.json`` entries, else image stem = prompt)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ValueError(f"data.images={folder} is not a folder")
    info = folder / "info.json"
    if info.is_file():
        items = []
        for i, e in enumerate(json.loads(info.read_text())):
            img = folder / e["image_name"]
            if not img.is_file():
                raise ValueError(f"{info}: entry {i + 1}: image {img} does not exist")
            items.append(PromptItem(Path(e["image_name"]).stem, e.get("prompt_en") or e.get("prompt", ""), img))
        return items
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"data.images={folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return [PromptItem(p.stem, p.stem, p) for p in images]


class PromptConditions:
    """``data=prompts`` as a clip source of conditioning frames only: latent frame 0 of each prompt, and its caption.

    A prompt's image is resized to cover ``height x width``, centre-cropped and encoded by ``codec`` (as public
    sampling does); a prompt without an image gets a mid-grey frame (:data:`BLANK_GREY`), encoded the same way.
    :meth:`latents` gives ``[B, 1, c, h, w]``: there are no later frames (only the data-free stages use this).
    Each prompt is encoded once per process, on first use.

    Args:
        items: the prompt list (:func:`read_prompts`).
        codec: pixels → latents (``codec_for(cfg)``).
        height: pixel height of the conditioning frame.
        width: pixel width.
    """

    def __init__(self, items: list[PromptItem], codec: Any, height: int, width: int) -> None:
        self.items, self.codec, self.height, self.width = items, codec, height, width
        self._latents: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _pixels(self, item: PromptItem) -> np.ndarray:
        from aad_bench.data.decode import load_image

        if item.image is None:
            return np.full((self.height, self.width, 3), BLANK_GREY, np.uint8)
        return load_image(item.image, self.height, self.width)

    def latents(self, idx: torch.Tensor) -> torch.Tensor:
        """Conditioning latents of prompts ``idx`` as float ``[B, 1, c, h, w]``."""
        from aad_bench.video.io import clips_to_tensor

        todo = sorted({int(i) for i in idx} - self._latents.keys())
        if todo:
            px = clips_to_tensor(np.stack([self._pixels(self.items[i]) for i in todo])[:, None])
            with torch.no_grad():
                enc = self.codec.encode(px)[:, :1].float()
            self._latents.update(zip(todo, enc))
        return torch.stack([self._latents[int(i)] for i in idx])

    def captions(self, idx: torch.Tensor) -> list[str]:
        """Prompts ``idx``."""
        return [self.items[int(i)].prompt for i in idx]

    def ids(self, idx: torch.Tensor) -> list[str]:
        """Stable ids of prompts ``idx`` (file-name safe)."""
        return [self.items[int(i)].id for i in idx]

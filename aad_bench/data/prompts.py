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

from aad_bench.data.manifest import CAPTION_KEYS, _pick, _rows

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class PromptItem:
    """One conditioning: a stable id (file-name safe), the prompt, and an optional image."""

    id: str
    prompt: str
    image: Path | None = None


def _safe(text: str, n: int) -> str:
    keep = "".join(ch if ch.isalnum() or ch in " -_," else "_" for ch in text).strip()
    return f"{n:05d}-{keep[:80]}"


def read_prompts(path: str | Path) -> list[PromptItem]:
    """Prompts (and images) of a ``.txt`` / ``.jsonl`` / ``.csv`` file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"data.prompts={path} does not exist")
    if path.suffix == ".txt":
        rows = [{"prompt": line.strip()} for line in path.read_text().splitlines() if line.strip()]
    elif path.suffix in (".jsonl", ".csv"):
        rows = _rows(path)
    else:
        raise ValueError(f"data.prompts={path}: expected .txt, .jsonl or .csv")
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
        raise ValueError(f"data.prompts={path}: no prompts")
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

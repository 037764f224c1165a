"""Clip lists for ``data=folder``: a folder of mp4s with captions, or a CSV / JSONL manifest.

* folder: every ``*.mp4`` below it (sorted); the caption of ``a/b.mp4`` is ``a/b.txt`` beside it, or the entry
  for ``a/b.mp4`` in ``captions.jsonl`` / ``captions.csv`` at the folder's top.
* manifest: one row per clip with a path column (``path`` | ``video`` | ``file``; relative to the manifest) and a
  caption column (``caption`` | ``text`` | ``prompt``).

A clip without a caption is an error naming it (``data.caption_missing=error``), a recorded skip (``skip``), or
gets the empty prompt (``empty``, e.g. for unconditional data).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

PATH_KEYS = ("path", "video", "file")
CAPTION_KEYS = ("caption", "text", "prompt")
CAPTION_MISSING = ("error", "skip", "empty")


@dataclass(frozen=True)
class Clip:
    """One training clip: a stable id (path relative to the data root), its file and caption."""

    id: str
    path: Path
    caption: str


def _pick(row: dict, keys: tuple[str, ...]) -> str | None:
    for k in keys:
        if row.get(k) not in (None, ""):
            return str(row[k])
    return None


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        rows = []
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{i}: not JSON ({e.msg})") from None
        return rows
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _caption_table(folder: Path) -> dict[str, str]:
    for name in ("captions.jsonl", "captions.csv"):
        if (folder / name).is_file():
            table = {}
            for row in _rows(folder / name):
                p, c = _pick(row, PATH_KEYS), _pick(row, CAPTION_KEYS)
                if p is not None and c is not None:
                    table[Path(p).as_posix()] = c
            return table
    return {}


def read_clips(source: str | Path, caption_missing: str = "error") -> tuple[list[Clip], list[dict]]:
    """Clips of a folder or manifest, and the skipped ones as ``{"id", "reason"}`` records."""
    if caption_missing not in CAPTION_MISSING:
        raise ValueError(f"data.caption_missing={caption_missing!r}: one of {CAPTION_MISSING}")
    source = Path(source).expanduser()
    if not source.exists():
        raise ValueError(f"data.path={source} does not exist")
    if source.is_dir():
        root, table = source, _caption_table(source)
        entries = []
        for p in sorted(source.rglob("*.mp4")):
            rel = p.relative_to(source).as_posix()
            side = p.with_suffix(".txt")
            entries.append((rel, p, side.read_text().strip() if side.is_file() else table.get(rel)))
    elif source.suffix in (".csv", ".jsonl"):
        root, entries = source.parent, []
        for i, row in enumerate(_rows(source), 1):
            p = _pick(row, PATH_KEYS)
            if p is None:
                raise ValueError(f"{source}: row {i} has no path column ({' | '.join(PATH_KEYS)})")
            entries.append((Path(p).as_posix(), (root / p).resolve(), _pick(row, CAPTION_KEYS)))
    else:
        raise ValueError(f"data.path={source}: expected a folder or a .csv / .jsonl manifest")
    clips, skipped = [], []
    for rel, path, caption in entries:
        if caption is None or not caption.strip():
            if caption_missing == "error":
                raise ValueError(f"clip {rel} has no caption (data.caption_missing=error; 'skip' records and skips "
                                 f"it, 'empty' uses the empty prompt)")
            if caption_missing == "skip":
                skipped.append({"id": rel, "reason": "no caption"})
                continue
            caption = ""
        clips.append(Clip(rel, Path(path), caption.strip()))
    if not clips and not skipped:
        raise ValueError(f"data.path={source}: no .mp4 clips found")
    return clips, skipped


def write_folder_set(folder: str | Path, videos, captions: list[str], fps: float = 16.0) -> list[Path]:
    """Write uint8 clips ``[T,H,W,3]`` as ``clip-00000.mp4`` + ``.txt`` captions: a ``data=folder`` set."""
    from aad_bench.utils.io import atomic_write_text
    from aad_bench.video.io import write_mp4

    folder = Path(folder)
    paths = []
    for i, (v, c) in enumerate(zip(videos, captions, strict=True)):
        p = write_mp4(folder / f"clip-{i:05d}.mp4", v, fps=fps, pix_fmt="yuv420p", quality=12)
        atomic_write_text(p.with_suffix(".txt"), c)
        paths.append(p)
    return paths

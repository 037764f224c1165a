"""What a model is sampled on when it is compared with a run: conditioning images, captions, seeds, lengths.

Two sources, both read from files (nothing is regenerated):

* a run folder (``--like RUN``): each of its video sets (``videos/<set>/index.json``) gives, per video, the
  file name, the conditioning image (``images/<stem>.png``), the caption when the set has one, the seed and the
  length, so the new videos pair one to one with the run's;
* a VBench-I2V-style folder of images + prompts (:func:`aad_bench.data.prompts.read_i2v_folder`): one set
  ``i2v`` of ``<image stem>-0.mp4`` videos (VBench-I2V's naming).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aad_bench.video.sets import INDEX, load_index, video_name

KEEP = ("gt", "clip")  # index fields of the source video that stay true for a video on the same image


@dataclass
class CondItem:
    """One video to generate: its file name, conditioning image, caption and noise seed."""

    video: str
    image: Path
    caption: str | None
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CondSet:
    """A video set to generate: its name, frame rate, pixel frames per video, and items."""

    name: str
    fps: float
    frames: int
    items: list[CondItem]
    source: str


def _image_of(set_dir: Path, name: str, entry: dict[str, Any]) -> Path:
    rel = entry.get("image") or f"images/{Path(name).stem.rsplit('-', 1)[0]}.png"
    path = set_dir / str(rel)
    if not path.is_file():
        raise ValueError(f"{set_dir / INDEX}: {name}: conditioning image {path} does not exist")
    return path


def read_set(set_dir: Path) -> CondSet:
    """The conditionings of one video set folder (its ``index.json``; every video must name its image)."""
    index = load_index(set_dir)
    videos = index.get("videos") or {}
    if not videos:
        raise ValueError(f"{set_dir}: no videos in {INDEX}")
    items, lengths = [], set()
    for i, (name, entry) in enumerate(videos.items()):
        entry = entry if isinstance(entry, dict) else {}
        seed = entry.get("seed")
        items.append(CondItem(name, _image_of(set_dir, name, entry), entry.get("caption"),
                              int(seed) if isinstance(seed, int) else i, {k: entry[k] for k in KEEP if k in entry}))
        if isinstance(entry.get("frames"), int):
            lengths.add(entry["frames"])
    if not lengths:
        raise ValueError(f"{set_dir / INDEX}: no 'frames' entries: cannot tell how long the videos are")
    fps = index.get("fps")
    if not isinstance(fps, int | float) or fps <= 0:
        raise ValueError(f"{set_dir / INDEX}: no valid 'fps'")
    return CondSet(str(index.get("set") or set_dir.name), float(fps), max(lengths), items, str(set_dir))


def from_run(path: str | Path, sets: list[str] | None = None) -> list[CondSet]:
    """Every video set of a run folder (or one set folder), optionally only the named ``sets``."""
    path = Path(path).expanduser()
    if (path / INDEX).is_file():
        found = [read_set(path)]
    elif (path / "videos").is_dir():
        found = [read_set(d) for d in sorted((path / "videos").iterdir()) if (d / INDEX).is_file()]
    else:
        raise ValueError(f"public.like={path}: not a run folder with videos/<set>/{INDEX} (sample the run first: "
                         f"aad-bench sample {path})")
    if not found:
        raise ValueError(f"public.like={path}: no video sets with {INDEX} under {path / 'videos'}")
    if sets:
        names = [s.name for s in found]
        unknown = [s for s in sets if s not in names]
        if unknown:
            raise ValueError(f"public.sets={unknown}: {path} has the sets {names}")
        found = [s for s in found if s.name in sets]
    return found


def from_images(folder: str | Path, frames: int, fps: float, seed: int) -> list[CondSet]:
    """One set ``i2v`` from a VBench-I2V-style folder: one video per image, seeds ``seed, seed + 1, ...``."""
    from aad_bench.data.prompts import read_i2v_folder

    items = [CondItem(video_name(it.id), Path(it.image), it.prompt, seed + i) for i, it in
             enumerate(read_i2v_folder(folder))]
    return [CondSet("i2v", float(fps), int(frames), items, str(Path(folder).expanduser()))]


def like_seed(path: str | Path) -> int | None:
    """The training seed of the run sampled ``like`` (reports pair arms by seed), if it says."""
    from aad_bench.utils.io import read_json

    res = Path(path).expanduser() / "results.json"
    try:
        seed = read_json(res).get("seed") if res.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return seed if isinstance(seed, int) else None

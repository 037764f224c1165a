"""Atomic writes (temp file in the same folder + rename) and tolerant JSON/JSONL reading."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class MalformedFileError(ValueError):
    """A JSON / JSONL file that cannot be parsed; the message names the file and line."""


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    """Replace NaN/inf floats by None: JSON has no NaN and readers must not see a silent number."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see either the old or the new file, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (NaN/inf become null)."""
    text = json.dumps(_clean(obj), indent=2, sort_keys=False, default=_json_default)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; malformed content raises :class:`MalformedFileError` naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise MalformedFileError(f"{path}: malformed JSON ({e.msg} at line {e.lineno})") from None


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line; a single ``write`` of a full line keeps concurrent appends line-atomic.

    After a crash mid-append the file ends in a torn line without its newline: the new line then starts with a
    newline of its own, so it is not glued onto the torn one (and lost with it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(_clean(record), default=_json_default) + "\n"
    with open(path, "ab+") as f:
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode("utf-8"))


def scan_jsonl(path: str | os.PathLike) -> tuple[list[tuple[int, Any]], list[int]]:
    """``(line number, value)`` of every parseable line (any JSON value), and the numbers of the torn lines.

    Line numbers are 1-based. For append-only logs that must survive torn lines anywhere (a crash mid-append
    followed by more appends): the caller skips them and reports how many there were.
    """
    path = Path(path)
    if not path.exists():
        return [], []
    values: list[tuple[int, Any]] = []
    bad: list[int] = []
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append((i, json.loads(line)))
        except json.JSONDecodeError:
            bad.append(i)
    return values, bad


def read_jsonl(path: str | os.PathLike, strict: bool = False) -> list[dict[str, Any]]:
    """Read a JSONL file. A torn last line (crash mid-append) is skipped unless ``strict``."""
    path = Path(path)
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if strict or i < len(lines):
                raise MalformedFileError(f"{path}:{i}: malformed JSON line ({e.msg})") from None
    return rows


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> Path:
    """Atomically (re)write a whole JSONL file."""
    text = "".join(json.dumps(_clean(r), default=_json_default) + "\n" for r in rows)
    return atomic_write_text(path, text)

"""Clip decoding for real data: decord, frame-rate resampling, resize + centre crop to the model's resolution."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from aad_bench.video.io import VideoReadError, _open_reader, _unpad


def frame_indices(n_src: int, src_fps: float, fps: float | None, frames: int, start: int = 0) -> list[int]:
    """Source frames nearest to ``frames`` instants at ``fps`` (``None`` = every source frame)."""
    step = 1.0 if not fps else src_fps / fps
    idx = [start + int(math.floor(i * step + 0.5)) for i in range(frames)]
    if idx[-1] >= n_src:
        have = 1 + int((n_src - 1 - start) / step) if n_src > start else 0
        raise VideoReadError(f"too short: {n_src} frames at {src_fps:g} fps give {have} frames at "
                             f"{fps or src_fps:g} fps, {frames} needed")
    return idx


def cover_size(h0: int, w0: int, height: int, width: int) -> tuple[int, int]:
    """The smallest size with the source aspect ratio that covers ``height x width``."""
    s = max(height / h0, width / w0)
    return max(height, math.ceil(h0 * s - 1e-6)), max(width, math.ceil(w0 * s - 1e-6))


def load_clip(path: str | Path, frames: int, height: int, width: int, fps: float | None = None) -> np.ndarray:
    """``frames`` RGB frames ``uint8 [T, height, width, 3]`` from the start of ``path``.

    The video is resampled to ``fps`` by nearest frame, scaled (while decoding) to cover the target size with its
    own aspect ratio, and centre-cropped. Raises :class:`VideoReadError` (naming the file) when it cannot be read
    or is too short.
    """
    probe = _open_reader(path)
    h0, w0 = probe[0].shape[:2]
    src_fps, n_src = float(probe.get_avg_fps()) or float(fps or 1.0), len(probe)
    del probe
    idx = frame_indices(n_src, src_fps, fps, frames)
    hh, ww = cover_size(h0, w0, height, width)
    vr = _open_reader(path, width=ww, height=hh)
    try:
        arr = vr.get_batch(idx).asnumpy()
    except Exception:
        try:  # decord's batched copy fails for some widths (row padding); frame by frame always works
            arr = np.stack([_unpad(vr[i].asnumpy()) for i in idx])
        except Exception as e:
            raise VideoReadError(f"{path}: truncated or corrupt video ({str(e).splitlines()[0][:160]})") from None
    if arr.shape[-1] != 3:
        arr = np.stack([_unpad(a) for a in arr])
    top, left = (arr.shape[1] - height) // 2, (arr.shape[2] - width) // 2
    return np.ascontiguousarray(arr[:, top:top + height, left:left + width])


def load_image(path: str | Path, height: int, width: int) -> np.ndarray:
    """An RGB image resized to cover ``height x width`` and centre-cropped: ``uint8 [H, W, 3]``."""
    from PIL import Image

    try:
        img = Image.open(path).convert("RGB")
    except Exception as e:
        raise VideoReadError(f"{path}: cannot read image ({str(e).splitlines()[0][:160]})") from None
    hh, ww = cover_size(img.height, img.width, height, width)
    img = img.resize((ww, hh), Image.BICUBIC)
    top, left = (hh - height) // 2, (ww - width) // 2
    return np.asarray(img.crop((left, top, left + width, top + height)), dtype=np.uint8)

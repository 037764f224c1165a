"""mp4 writing (ffmpeg via imageio-ffmpeg, streamed frame by frame) and reading (decord).

Frames are ``uint8`` arrays of shape ``[T, H, W, 3]`` (RGB). The same reader serves toy and real videos.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch


class VideoReadError(RuntimeError):
    """A video that cannot be decoded (corrupt, truncated, empty, missing); the message names the file."""


LOSSLESS_MAX = 64  # px: videos this small are written losslessly (see Mp4Writer)


class Mp4Writer:
    """Stream RGB frames into an mp4; the file appears under its final name only after :meth:`close`.

    Args:
        path: output file.
        fps: frame rate stored in the container.
        quality: x264 CRF (lower = better; 0 is lossless). None: 0 for frames up to ``LOSSLESS_MAX`` px (toy
            videos: at 16x16 compression noise is as large as the sprites' motion and flips the metrics' reading of
            near-frozen clips), 8 above.
        pix_fmt: ``yuv444p`` keeps colour at tiny resolutions; ``yuv420p`` plays everywhere.
    """

    def __init__(self, path: str | os.PathLike, fps: float, quality: int | None = None,
                 pix_fmt: str = "yuv444p") -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.quality = quality
        self.pix_fmt = pix_fmt
        self._tmp = self.path.with_name(f".{self.path.stem}.partial.mp4")
        self._gen: Any = None
        self._size: tuple[int, int] | None = None
        self.frames_written = 0

    def crf(self, h: int, w: int) -> int:
        """The x264 CRF used for ``h`` x ``w`` frames."""
        if self.quality is not None:
            return int(self.quality)
        return 0 if max(h, w) <= LOSSLESS_MAX else 8

    def _open(self, h: int, w: int) -> None:
        import imageio_ffmpeg

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.pix_fmt == "yuv420p" and (h % 2 or w % 2):
            raise ValueError(f"yuv420p needs even frame sizes, got {h}x{w}")
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp), (w, h), fps=self.fps, codec="libx264", pix_fmt_out=self.pix_fmt,
            output_params=["-crf", str(self.crf(h, w))], macro_block_size=1, ffmpeg_log_level="error")
        self._gen.send(None)
        self._size = (h, w)

    def write(self, frames: np.ndarray) -> None:
        """Append one frame ``[H, W, 3]`` or several ``[T, H, W, 3]`` (uint8)."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 [T,H,W,3], got {frames.dtype} {tuple(frames.shape)}")
        if self._gen is None:
            self._open(*frames.shape[1:3])
        elif frames.shape[1:3] != self._size:
            raise ValueError(f"frame size changed from {self._size} to {frames.shape[1:3]}")
        for f in frames:
            self._gen.send(np.ascontiguousarray(f))
            self.frames_written += 1

    def close(self) -> Path:
        """Finish the file and move it into place."""
        if self._gen is None:
            raise ValueError(f"{self.path}: no frames written")
        self._gen.close()
        os.replace(self._tmp, self.path)
        self._gen = None
        return self.path

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._gen is not None:
            try:
                self._gen.close()
            finally:
                self._tmp.unlink(missing_ok=True)


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float, **kw: Any) -> Path:
    """Write all ``frames`` (uint8 ``[T,H,W,3]``) to ``path`` atomically."""
    with Mp4Writer(path, fps, **kw) as w:
        w.write(frames)
    return Path(path)


def video_info(path: str | os.PathLike) -> dict[str, Any]:
    """Frame count, fps and size of a video, without decoding every frame."""
    vr = _open_reader(path)
    h, w = vr[0].shape[:2]
    return {"frames": len(vr), "fps": float(vr.get_avg_fps()), "height": h, "width": w}


def _open_reader(path: str | os.PathLike, width: int = -1, height: int = -1) -> Any:
    import decord

    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: empty file")
    try:
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), width=width, height=height, num_threads=1)
        if len(vr) == 0:
            raise VideoReadError(f"{path}: no decodable frames")
    except VideoReadError:
        raise
    except Exception as e:  # decord raises DECORDError / RuntimeError with C++ traces
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise VideoReadError(f"{path}: cannot decode video ({msg[:160]})") from None
    return vr


def read_video(path: str | os.PathLike, fps: float | None = None, size: tuple[int, int] | None = None,
               max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video with decord.

    Args:
        path: video file.
        fps: resample to about this frame rate by frame skipping (VBench-style); ``None`` keeps all frames.
        size: ``(height, width)`` to resize to while decoding.
        max_frames: keep at most this many (after resampling).

    Returns:
        ``(frames uint8 [T,H,W,3], fps of the returned frames)``.
    """
    h, w = size if size is not None else (-1, -1)
    vr = _open_reader(path, width=w, height=h)
    src_fps = float(vr.get_avg_fps()) or 1.0
    step = max(1, round(src_fps / fps)) if fps else 1
    idx = list(range(0, len(vr), step))
    if max_frames is not None:
        idx = idx[:max_frames]
    try:
        frames = vr.get_batch(idx).asnumpy()
    except Exception:
        # decord's batched copy fails for some frame widths (row padding); frame by frame always works
        try:
            frames = np.stack([_unpad(vr[i].asnumpy()) for i in idx])
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise VideoReadError(f"{path}: truncated or corrupt video ({msg[:160]})") from None
    return frames, src_fps / step


def _unpad(frame: np.ndarray) -> np.ndarray:
    """Undo decord's row padding.

    For widths whose RGB rows are not 32-byte aligned it returns
    ``[H, W, 3k]`` with each row padded; the real pixels are the first ``3W`` bytes of each row.
    """
    h, w = frame.shape[:2]
    if frame.shape[2] == 3:
        return frame
    return np.ascontiguousarray(frame.reshape(h, -1)[:, : w * 3].reshape(h, w, 3))


def to_uint8(video: Any) -> np.ndarray:
    """Convert a float video in [-1, 1] shaped ``[T,3,H,W]`` (torch or numpy) to uint8 ``[T,H,W,3]``."""
    arr = video.detach().cpu().float().numpy() if hasattr(video, "detach") else np.asarray(video, np.float32)
    arr = np.clip((arr + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr.transpose(0, 2, 3, 1))


def clips_to_tensor(clips: np.ndarray) -> torch.Tensor:
    """uint8 clips ``[N,T,H,W,3]`` → float tensor ``[N,T,3,H,W]`` in [-1, 1] (the inverse of :func:`to_uint8`)."""
    return torch.from_numpy(np.ascontiguousarray(clips)).permute(0, 1, 4, 2, 3).float().div_(127.5).sub_(1.0)


def contact_sheet(videos: list[np.ndarray], path: str | os.PathLike, max_frames: int = 16,
                  labels: list[str] | None = None, scale: int = 2) -> Path:
    """Save a PNG grid: one row per video (uint8 ``[T,H,W,3]``), up to ``max_frames`` evenly spaced columns."""
    from PIL import Image, ImageDraw

    rows = []
    for v in videos:
        idx = np.linspace(0, len(v) - 1, min(max_frames, len(v))).round().astype(int)
        rows.append(np.concatenate([np.pad(v[i], ((1, 1), (1, 1), (0, 0)), constant_values=255) for i in idx], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    img = Image.fromarray(np.concatenate(rows, 0))
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if labels:
        pad = 90
        canvas = Image.new("RGB", (img.width + pad, img.height), "white")
        canvas.paste(img, (pad, 0))
        draw = ImageDraw.Draw(canvas)
        row_h = img.height / len(videos)
        for i, lab in enumerate(labels):
            draw.text((4, int(i * row_h + row_h / 2 - 5)), str(lab)[:14], fill="black")
        img = canvas
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    img.save(tmp)
    os.replace(tmp, path)
    return path

"""Experiment tracking beside ``metrics.jsonl``: TensorBoard event files always, W&B offline when enabled.

Only rank 0 tracks (other ranks get a tracker that does nothing). Scalars are tagged ``<stage>/<name>`` with the
stage's own step; sample videos go to TensorBoard as animated GIFs (what its image plugin plays).
W&B runs in offline mode only (compute nodes have no network): ``wandb sync <run>/wandb/offline-run-*`` uploads
later.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from aad_bench.engine.settings import TrackingSettings

log = logging.getLogger(__name__)


def gif_bytes(clip: np.ndarray, fps: float) -> bytes:
    """An animated GIF of a uint8 clip ``[T, H, W, 3]``."""
    from PIL import Image

    frames = [Image.fromarray(f) for f in clip]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return buf.getvalue()


class Tracker:
    """Scalars and videos to TensorBoard (+ W&B offline) under a run folder.

    Args:
        run_path: the run folder (``tensorboard/`` and ``wandb/`` are created inside).
        settings: ``trainer.tracking``.
        enabled: False on ranks other than 0.
        config: the run's resolved config (W&B records it).
        name: run name shown by the trackers.
    """

    def __init__(self, run_path: Path, settings: TrackingSettings, enabled: bool = True,
                 config: dict[str, Any] | None = None, name: str | None = None) -> None:
        self.tb = self.wandb = None
        if not enabled:
            return
        if settings.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(Path(run_path) / "tensorboard"))
        if settings.wandb:
            self.wandb = self._wandb(Path(run_path), settings, config, name)

    @staticmethod
    def _wandb(run_path: Path, settings: TrackingSettings, config: dict | None, name: str | None) -> Any:
        try:
            import wandb
        except ImportError:
            log.warning("trainer.tracking.wandb=true but wandb is not installed: logging to TensorBoard only")
            print("warning: trainer.tracking.wandb=true but wandb is not installed (pip install wandb)")
            return None
        run_path.joinpath("wandb").mkdir(parents=True, exist_ok=True)
        return wandb.init(project=settings.wandb_project, dir=str(run_path), mode="offline", config=config,
                          name=name, id=name, resume="allow")

    def log(self, stage: str, step: int, values: dict[str, float]) -> None:
        """Scalars of one logged step of ``stage``."""
        for k, v in values.items():
            if self.tb is not None:
                self.tb.add_scalar(f"{stage}/{k}", float(v), step)
        if self.wandb is not None:
            self.wandb.log({**{f"{stage}/{k}": float(v) for k, v in values.items()}, f"{stage}/step": step})

    def video(self, tag: str, clip: np.ndarray, step: int = 0, fps: float = 8.0) -> None:
        """A uint8 clip ``[T, H, W, 3]`` as an animated GIF."""
        gif = gif_bytes(clip, fps)
        if self.tb is not None:
            from tensorboard.compat.proto.summary_pb2 import Summary

            t, h, w, c = clip.shape
            img = Summary.Image(height=h, width=w, colorspace=c, encoded_image_string=gif)
            self.tb._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=img)]), step)
        if self.wandb is not None:  # from a GIF file: raw arrays would need moviepy
            import tempfile

            import wandb

            with tempfile.NamedTemporaryFile(suffix=".gif") as f:
                f.write(gif)
                f.flush()
                self.wandb.log({tag: wandb.Video(f.name, format="gif")})

    def video_set(self, folder: Path, tag: str, n: int = 4) -> None:
        """The first ``n`` mp4s of a video set (e.g. ``<run>/videos/long``) under ``<tag>/<name>``."""
        if self.tb is None and self.wandb is None:
            return
        from aad_bench.video.io import read_video

        for path in sorted(Path(folder).glob("*.mp4"))[:n]:
            clip, fps = read_video(path)
            self.video(f"{tag}/{path.stem}", clip, fps=fps)

    def close(self) -> None:
        """Flush and close the trackers."""
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
        self.tb = self.wandb = None

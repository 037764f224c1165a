"""The token layout both backbone configs share: a patch grid per (latent) frame, 1 conditioning frame + chunks."""

from __future__ import annotations


class ChunkedFrames:
    """Mixin for backbone configs with ``height``, ``width``, ``patch`` and ``chunk`` fields.

    ``frame_unit`` names what a frame is in error messages (pixels for the toy DiT, latents for Wan).
    """

    height: int
    width: int
    patch: int
    chunk: int
    frame_unit = "frame"

    @property
    def grid(self) -> tuple[int, int]:
        """Token rows and columns of one frame."""
        return self.height // self.patch, self.width // self.patch

    @property
    def tokens_per_frame(self) -> int:
        """Tokens per frame."""
        return self.grid[0] * self.grid[1]

    def check_frames(self, frames: int) -> None:
        """Clips are 1 conditioning frame + whole chunks."""
        if frames < 2 or (frames - 1) % self.chunk:
            raise ValueError(f"model.chunk={self.chunk} must divide the generated {self.frame_unit} count "
                             f"{frames - 1} (clip = 1 conditioning frame + {frames - 1})")

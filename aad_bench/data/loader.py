"""What the training loops draw batches from: latent clips and, for text backbones, their captions' embeddings.

A :class:`TrainingSet` is backed by the toy world's tensor or by a ``data=folder`` latent cache, read clip by clip
from memory-mapped shards (never the whole set at once). A batch is drawn from the caller's generator only
(:meth:`TrainingSet.batch`), and the loops make that generator from (seed, stage, step): a resumed run, a run that
reuses a cached stage prefix and every rank of a distributed run draw the same batches as one uninterrupted
process.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from aad_bench.data.shards import dist_info

OPEN_SHARDS = 8  # memory-mapped shards kept open at once (the OS pages clips in and out)


class ShardReader:
    """Clips of a latent cache by global index, each shard memory-mapped on first use.

    Args:
        folder: the cache folder.
        shards: its non-empty shards as ``{"file", "n"}`` (``LatentSet.shards``), in index order.
    """

    def __init__(self, folder: str | Path, shards: list[dict[str, Any]]) -> None:
        self.folder, self.files = Path(folder), [s["file"] for s in shards]
        self.starts = torch.tensor([0] + [int(s["n"]) for s in shards]).cumsum(0)
        self._open: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return int(self.starts[-1])

    def shard(self, i: int) -> dict[str, Any]:
        """Shard ``i`` (tensors memory-mapped, lists in memory); the least recently used one is closed."""
        if i not in self._open:
            self._open[i] = torch.load(self.folder / self.files[i], map_location="cpu", weights_only=True,
                                       mmap=True)
            if len(self._open) > OPEN_SHARDS:
                self._open.popitem(last=False)
        self._open.move_to_end(i)
        return self._open[i]

    def _where(self, idx: torch.Tensor) -> list[tuple[int, int]]:
        s = torch.searchsorted(self.starts, idx, right=True) - 1
        return list(zip(s.tolist(), (idx - self.starts[s]).tolist()))

    def latents(self, idx: torch.Tensor) -> torch.Tensor:
        """Clips ``idx`` as float ``[B, F, c, h, w]``."""
        return torch.stack([self.shard(s)["latents"][j] for s, j in self._where(idx)]).float()

    def captions(self, idx: torch.Tensor) -> list[str | None]:
        """Captions of clips ``idx``."""
        return [self.shard(s)["captions"][j] for s, j in self._where(idx)]

    def ids(self, idx: torch.Tensor) -> list[str]:
        """Clip ids (file names) of clips ``idx``."""
        return [self.shard(s)["ids"][j] for s, j in self._where(idx)]


class TrainingSet:
    """Training clips ``[N, F, c, h, w]`` (latent space) and their text embeddings, drawn by index.

    Args:
        clips: the toy world's tensor, a :class:`ShardReader` over a latent cache, or ``data=prompts``'
            :class:`~aad_bench.data.prompts.PromptConditions` (conditioning frames only).
        text: encodes captions into ``[B, L, D]`` embeddings (the cached text encoder), or None: no text
            reaches the backbone (the toy world, a backbone without text, or no encoder set).
        frames: latent frames per training clip when ``clips`` holds only the conditioning frame (prompts):
            ``shape[1]`` says how long the stages roll out, while batches carry frame 0 alone.
    """

    def __init__(self, clips: torch.Tensor | ShardReader, text: Any = None, frames: int | None = None) -> None:
        self.source, self.text = clips, text
        first = clips[:1] if isinstance(clips, torch.Tensor) else clips.latents(torch.zeros(1, dtype=torch.long))
        self.shape = (len(clips), frames or first.shape[1], *first.shape[2:])
        self.has_clips = first.shape[1] == self.shape[1]  # False: conditioning frames only (data=prompts)

    @classmethod
    def of(cls, data: torch.Tensor | TrainingSet) -> TrainingSet:
        """``data`` as a training set (a tensor of clips becomes one without text)."""
        return data if isinstance(data, TrainingSet) else cls(data)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def has_text(self) -> bool:
        """Whether batches carry text embeddings."""
        return self.text is not None

    def require_clips(self, what: str) -> None:
        """One clear line when ``what`` (a stage that learns from real frames) gets conditioning frames only."""
        if not self.has_clips:
            raise ValueError(f"{what} needs real clips: data=prompts has only conditioning frames; use data=folder")

    def latents(self, idx: torch.Tensor) -> torch.Tensor:
        """Clips ``idx`` ``[B, F, c, h, w]`` (``[B, 1, c, h, w]`` without clips: the conditioning frames)."""
        src = self.source
        return src[idx] if isinstance(src, torch.Tensor) else src.latents(idx)

    def context(self, idx: torch.Tensor) -> torch.Tensor | None:
        """Text embeddings ``[B, L, D]`` of clips ``idx``'s captions (None without text)."""
        if self.text is None:
            return None
        return self.encode(self.source.captions(idx))

    def encode(self, captions: list[str | None]) -> torch.Tensor | None:
        """Embeddings of ``captions`` (a missing caption = the empty prompt); None without text."""
        return None if self.text is None else self.text([c or "" for c in captions])

    def batch(self, size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``size`` random clips (with replacement, so tiny sets work with any batch) and their text embeddings.

        Only ``g`` decides which: with a generator made from (seed, stage, step) the batch is a pure function of
        them. Returns ``(latents [B,F,c,h,w], context [B,L,D] or None)``; without clips (data=prompts) the
        latents are the conditioning frames ``[B,1,c,h,w]``.
        """
        idx = torch.randint(len(self), (size,), generator=g)
        return self.latents(idx), self.context(idx)


class _Text:
    """Captions → embeddings through the cached umT5 encoder (``model.encoders``), width checked once."""

    def __init__(self, cfg: DictConfig, text_len: int, text_dim: int) -> None:
        from aad_bench.models.encoders import TextEncoder

        enc = OmegaConf.to_container(cfg.model.encoders, resolve=True)
        self.encoder = TextEncoder(enc["text"], enc.get("cache"), text_len, str(enc.get("device") or "cpu"),
                                   enc.get("dtype", "float32"))
        self.text_dim = text_dim

    def __call__(self, captions: list[str]) -> torch.Tensor:
        emb = self.encoder.encode(captions)
        if emb.shape[-1] != self.text_dim:
            raise ValueError(f"model.encoders.text gives {emb.shape[-1]}-wide embeddings but model.text_dim="
                             f"{self.text_dim}")
        return emb


def _text_dims(cfg: DictConfig) -> tuple[int, int] | None:
    from aad_bench.models.backbones import backbone_config

    mcfg = backbone_config(cfg.model)
    return None if getattr(mcfg, "text_dim", None) is None else (int(mcfg.text_len), int(mcfg.text_dim))


def uses_text(cfg: DictConfig, captions: bool) -> bool:
    """Whether training feeds captions to the backbone: it takes text, the set has captions, an encoder is set."""
    return captions and _text_dims(cfg) is not None and bool((cfg.model.get("encoders") or {}).get("text"))


def text_for(cfg: DictConfig, captions: bool) -> _Text | None:
    """The caption encoder training uses (see :func:`uses_text`), or None.

    A text-conditioned backbone on captioned clips without ``model.encoders.text`` trains on the empty prompt
    (said once, as sampling does).
    """
    if uses_text(cfg, captions):
        return _Text(cfg, *_text_dims(cfg))
    if captions and _text_dims(cfg) is not None and dist_info()[0] == 0:
        print("note: the clips have captions but model.encoders.text is not set: training with the empty prompt")
    return None


def context_part(context: torch.Tensor | None, part: slice) -> torch.Tensor | None:
    """Rows ``part`` of a batch's text embeddings (None stays None)."""
    return None if context is None else context[part]

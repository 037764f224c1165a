"""Shape and streaming settings of a Wan 2.1 backbone (``model=wan_*``).

Field names shared with the toy :class:`~aad_bench.models.dit.DiTConfig` (``channels``, ``height``, ``width``,
``patch``, ``dim``, ``depth``, ``heads``, ``chunk``, ``sink_chunks``, ``window_frames``, ``tokens_per_frame``,
``check_frames``) mean the same thing, so discriminators, samplers and caches treat both backbones alike.
``height``/``width`` are in *latent* pixels (the VAE divides the video resolution by ``spatial_ratio``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from aad_bench.models.layout import ChunkedFrames

ARCH_VERSION = 1  # bump when an old adapter's weights or outputs can no longer be reused (cache keys include it)
ATTENTION_BACKENDS = ("auto", "sdpa", "flex")
CFG_DROPS = ("text", "image", "both")


@dataclass
class WanConfig(ChunkedFrames):
    """A diffusers ``WanTransformer3DModel`` plus the causal-streaming settings of aad_bench.

    Architecture fields map 1:1 onto diffusers' config (see :meth:`diffusers_kwargs`); ``image_dim`` set means
    an I2V checkpoint (CLIP image tokens + mask/image-latent channel concat, ``in_channels = 2*channels + 4``).
    """

    frame_unit = "latent frame"  # error messages (a class attribute, not a field)

    arch: str = "wan"
    channels: int = 16            # latent channels (VAE z_dim)
    height: int = 60              # latent rows (480p / 8)
    width: int = 104              # latent columns (832 / 8)
    patch: int = 2                # spatial patch; Wan 2.1 has temporal patch 1
    heads: int = 12
    head_dim: int = 128
    ffn_dim: int = 8960
    depth: int = 30
    text_dim: int = 4096          # umT5-XXL width
    text_len: int = 512           # Wan pads prompt embeddings with zeros to 512 tokens
    freq_dim: int = 256
    cross_attn_norm: bool = True
    eps: float = 1e-6
    image_dim: int | None = None  # CLIP ViT-H penultimate width (1280) for I2V checkpoints
    rope_max_seq_len: int = 1024
    chunk: int = 3                # latent frames per generated chunk (frame 0 = image, its own chunk)
    sink_chunks: int = 1
    window_frames: int = 21
    attention: str = "auto"       # auto = flex BlockMask on CUDA, SDPA boolean mask on CPU
    cfg_drop: str = "text"        # what cond_drop removes: text (Wan's CFG) | image (frame-0 latent) | both
    grad_ckpt: bool = False       # activation checkpointing per block (large models)
    dtype: str = "float32"
    checkpoint: dict[str, Any] = field(default_factory=dict)  # see aad_bench.models.wan.checkpoints
    vae: dict[str, Any] = field(default_factory=dict)         # settings of codec=wan_vae (aad_bench.models.wan_vae)
    encoders: dict[str, Any] = field(default_factory=dict)    # text/image encoder paths (aad_bench.models.encoders)

    def __post_init__(self) -> None:
        if self.arch != "wan":
            raise ValueError(f"WanConfig got model.arch={self.arch!r}; expected 'wan'")
        if self.height % self.patch or self.width % self.patch:
            raise ValueError(f"model.patch={self.patch} must divide the latent size {self.height}x{self.width} "
                             f"(video resolution must be divisible by patch x VAE factor = {self.patch} x 8)")
        if self.head_dim % 2 or self.head_dim < 12:
            raise ValueError(f"model.head_dim={self.head_dim} must be even and >= 12 (3-D RoPE splits it)")
        if self.chunk < 1 or self.window_frames < self.chunk:
            raise ValueError(f"model.chunk={self.chunk} must be >= 1 and <= model.window_frames={self.window_frames}")
        if self.attention not in ATTENTION_BACKENDS:
            raise ValueError(f"model.attention={self.attention!r}: one of {ATTENTION_BACKENDS}")
        if self.i2v and self.text_len != 512:  # diffusers' I2V cross-attention splits off the last 512 tokens
            raise ValueError(f"an I2V Wan (model.image_dim set) needs model.text_len=512, got {self.text_len}")
        if self.cfg_drop not in CFG_DROPS:
            raise ValueError(f"model.cfg_drop={self.cfg_drop!r}: one of {CFG_DROPS}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WanConfig:
        """Build from a (resolved) config mapping; unknown keys fail with the list of known ones."""
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ValueError(f"unknown model setting(s) {bad} for a Wan backbone; known: {sorted(known)}")
        return cls(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()})

    @property
    def dim(self) -> int:
        """Model width (heads x head_dim)."""
        return self.heads * self.head_dim

    @property
    def i2v(self) -> bool:
        """An I2V checkpoint (CLIP tokens + image channels)."""
        return self.image_dim is not None

    @property
    def in_channels(self) -> int:
        """Input channels of the patch embedding (I2V: latents + mask + image latents)."""
        return 2 * self.channels + 4 if self.i2v else self.channels

    def check_resolution(self, height: int, width: int, spatial_ratio: int) -> None:
        """A video resolution must map onto this latent grid exactly (one clear line otherwise)."""
        f = self.patch * spatial_ratio
        if height % f or width % f:
            raise ValueError(f"video resolution {height}x{width} is not divisible by patch x VAE factor = "
                             f"{self.patch} x {spatial_ratio} = {f}")
        if (height // spatial_ratio, width // spatial_ratio) != (self.height, self.width):
            raise ValueError(f"video resolution {height}x{width} gives latents {height // spatial_ratio}x"
                             f"{width // spatial_ratio}, but model.height x model.width = {self.height}x{self.width}")

    def diffusers_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of ``diffusers.WanTransformer3DModel`` for this shape."""
        return dict(patch_size=(1, self.patch, self.patch), num_attention_heads=self.heads,
                    attention_head_dim=self.head_dim, in_channels=self.in_channels, out_channels=self.channels,
                    text_dim=self.text_dim, freq_dim=self.freq_dim, ffn_dim=self.ffn_dim, num_layers=self.depth,
                    cross_attn_norm=self.cross_attn_norm, qk_norm="rms_norm_across_heads", eps=self.eps,
                    image_dim=self.image_dim, added_kv_proj_dim=self.dim if self.i2v else None,
                    rope_max_seq_len=self.rope_max_seq_len)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (for run configs and cache keys)."""
        return asdict(self)

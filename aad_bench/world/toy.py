"""Toy image-to-video world: 1–3 soft-edged sprites over a smooth, non-flat background, bouncing off the walls.

Every clip is a pure function of ``(world config, split, index)``; ground truth (sprite positions and velocities per
frame) comes with each clip. A configurable share of clips is static or slow, so that motion magnitude has a real
distribution (a generator that freezes everything is then visibly wrong, not just "a bit slow").
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SHAPES = ("circle", "square", "diamond", "triangle")
SPLITS = {"train": 0, "eval": 1, "long": 2}


@dataclass
class ToyWorldConfig:
    """Settings of the toy world (all sizes in pixels, speeds in pixels per frame)."""

    height: int = 32
    width: int = 32
    frames: int = 17  # 1 conditioning frame + 16 generated
    long_frames: int = 65  # >= 4x the generated length, for drift
    fps: float = 8.0
    n_train: int = 512
    n_eval: int = 32
    n_long: int = 8
    min_sprites: int = 1
    max_sprites: int = 3
    radius: tuple[float, float] = (2.5, 5.0)
    static_share: float = 0.15
    slow_share: float = 0.2
    slow_speed: tuple[float, float] = (0.15, 0.5)
    speed: tuple[float, float] = (0.8, 2.0)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.min_sprites <= self.max_sprites:
            raise ValueError(f"world: need 1 <= min_sprites <= max_sprites, got {self.min_sprites}, {self.max_sprites}")
        if self.static_share + self.slow_share > 1 or min(self.static_share, self.slow_share) < 0:
            raise ValueError("world: static_share + slow_share must lie in [0, 1]")
        if self.frames < 2 or self.height < 8 or self.width < 8:
            raise ValueError(f"world: need frames >= 2 and size >= 8, got {self.frames} {self.height}x{self.width}")
        self.radius = tuple(self.radius)
        self.slow_speed = tuple(self.slow_speed)
        self.speed = tuple(self.speed)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict."""
        return asdict(self)


def clip_seed(cfg: ToyWorldConfig, split: str, index: int) -> int:
    """The RNG seed of one clip (stable across processes and Python versions)."""
    return zlib.crc32(f"{cfg.seed}/{SPLITS[split]}/{index}".encode())


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bg = np.empty((h, w, 3), np.float32)
    base = rng.uniform(0.25, 0.6, 3)
    for c in range(3):
        wave = np.zeros((h, w), np.float32)
        for _ in range(2):
            fx, fy = rng.uniform(0.5, 2.0, 2) * 2 * np.pi / np.array([w, h])
            wave += np.sin(fx * xx + fy * yy + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.04, 0.1)
        bg[..., c] = base[c] + wave + (xx / w - 0.5) * rng.uniform(-0.15, 0.15)
    return np.clip(bg, 0.0, 1.0)


def _sample_sprites(cfg: ToyWorldConfig, rng: np.random.Generator) -> tuple[list[dict[str, Any]], str]:
    u = rng.uniform()
    kind = "static" if u < cfg.static_share else "slow" if u < cfg.static_share + cfg.slow_share else "moving"
    lo, hi = {"static": (0.0, 0.0), "slow": cfg.slow_speed, "moving": cfg.speed}[kind]
    sprites = []
    for _ in range(int(rng.integers(cfg.min_sprites, cfg.max_sprites + 1))):
        r = float(rng.uniform(*cfg.radius))
        angle = rng.uniform(0, 2 * np.pi)
        speed = float(rng.uniform(lo, hi))
        sprites.append({
            "shape": SHAPES[int(rng.integers(len(SHAPES)))],
            "radius": r,
            "color": rng.uniform(0, 1, 3) ** 0.7 * np.array([1, 1, 1]) * rng.choice([0.4, 1.0]),
            "pos": np.array([rng.uniform(r, cfg.width - r), rng.uniform(r, cfg.height - r)]),
            "vel": np.array([np.cos(angle), np.sin(angle)]) * speed,
        })
    return sprites, kind


def _sdf(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) of a centred shape of size ``r``."""
    if shape == "circle":
        return np.hypot(dx, dy) - r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * r
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy)) / np.sqrt(2) - 0.8 * r
    # equilateral triangle pointing up: max over three edge half-planes
    n = [(0.0, 1.0), (np.sqrt(3) / 2, -0.5), (-np.sqrt(3) / 2, -0.5)]
    return np.max([a * dx - b * dy for a, b in n], axis=0) - 0.55 * r


def _step(pos: np.ndarray, vel: np.ndarray, r: float, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Advance one frame with elastic reflection at the walls."""
    pos, vel = pos + vel, vel.copy()
    for k, size in enumerate((w, h)):
        lo, hi = r, size - r
        if pos[k] < lo:
            pos[k], vel[k] = 2 * lo - pos[k], -vel[k]
        elif pos[k] > hi:
            pos[k], vel[k] = 2 * hi - pos[k], -vel[k]
    return pos, vel


def render_clip(cfg: ToyWorldConfig, split: str, index: int, frames: int | None = None) -> tuple[np.ndarray, dict]:
    """Render one clip.

    Returns:
        ``(uint8 frames [T,H,W,3], ground truth)`` where ground truth holds ``positions`` and ``velocities``
        (``[T, n_sprites, 2]``, x/y in pixels), ``speed`` (mean |v| in px/frame), ``kind`` and sprite attributes.
    """
    t_len = frames or (cfg.long_frames if split == "long" else cfg.frames)
    rng = np.random.default_rng(clip_seed(cfg, split, index))
    h, w = cfg.height, cfg.width
    bg = _background(rng, h, w)
    sprites, kind = _sample_sprites(cfg, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5  # pixel centres
    video = np.empty((t_len, h, w, 3), np.float32)
    pos = np.zeros((t_len, len(sprites), 2))
    vel = np.zeros_like(pos)
    for t in range(t_len):
        img = bg.copy()
        for j, s in enumerate(sprites):
            if t > 0:
                s["pos"], s["vel"] = _step(s["pos"], s["vel"], s["radius"], w, h)
            pos[t, j], vel[t, j] = s["pos"], s["vel"]
            alpha = np.clip(0.5 - _sdf(s["shape"], xx - s["pos"][0], yy - s["pos"][1], s["radius"]), 0, 1)
            img = img * (1 - alpha[..., None]) + alpha[..., None] * s["color"]
        video[t] = img
    gt = {
        "kind": kind,
        "positions": pos.round(4).tolist(),
        "velocities": vel.round(4).tolist(),
        "speed": float(np.linalg.norm(vel, axis=-1).mean()),
        "sprites": [{"shape": s["shape"], "radius": round(s["radius"], 3), "color": s["color"].round(5).tolist()}
                    for s in sprites],
    }
    return (video * 255 + 0.5).astype(np.uint8), gt


def render_split(cfg: ToyWorldConfig, split: str, n: int | None = None) -> tuple[np.ndarray, list[dict]]:
    """Render ``n`` clips of a split as one uint8 array ``[N,T,H,W,3]`` plus their ground truths."""
    n = n if n is not None else {"train": cfg.n_train, "eval": cfg.n_eval, "long": cfg.n_long}[split]
    out = [render_clip(cfg, split, i) for i in range(n)]
    return np.stack([v for v, _ in out]), [g for _, g in out]

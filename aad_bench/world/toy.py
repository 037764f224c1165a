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
SPLITS = {"train": 0, "eval": 1, "long": 2, "val": 3}  # val: early-stopping probes, never scored
MAX_SPEED = 2.0  # px/frame: the motion measure (world.motion) searches and fits sprites up to this speed


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
    n_val: int = 16
    min_sprites: int = 1
    max_sprites: int = 3
    radius: tuple[float, float] = (2.5, 5.0)
    static_share: float = 0.15
    slow_share: float = 0.2
    slow_speed: tuple[float, float] = (0.15, 0.5)
    speed: tuple[float, float] = (0.8, 2.0)
    trail: float = 0.0  # frames of fading "comet tail" drawn behind a moving sprite (0 = none): a motion cue
    trail_alpha: float = 0.5  # opacity of the tail right behind the sprite (fades linearly to 0 at its end)
    edge: float = 1.0  # width (px) of a sprite's anti-aliased edge; wider = softer sprites
    bg_texture: float = 1.0  # amplitude of the background's waves (0 = a plain colour gradient)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.min_sprites <= self.max_sprites:
            raise ValueError(f"world: need 1 <= min_sprites <= max_sprites, got {self.min_sprites}, {self.max_sprites}")
        if self.static_share + self.slow_share > 1 or min(self.static_share, self.slow_share) < 0:
            raise ValueError("world: static_share + slow_share must lie in [0, 1]")
        if max(self.speed[1], self.slow_speed[1]) > MAX_SPEED or min(self.speed[0], self.slow_speed[0]) < 0:
            raise ValueError(f"world: speed and slow_speed must lie in [0, {MAX_SPEED}] px/frame (the motion measure "
                             f"follows sprites up to {MAX_SPEED}), got {list(self.speed)}, {list(self.slow_speed)}")
        if self.edge <= 0:
            raise ValueError(f"world: edge must be > 0 px, got {self.edge}")
        if self.trail < 0 or not 0 <= self.trail_alpha <= 1:
            raise ValueError(f"world: need trail >= 0 and trail_alpha in [0, 1], got {self.trail}, {self.trail_alpha}")
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


def _background(rng: np.random.Generator, h: int, w: int, texture: float = 1.0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bg = np.empty((h, w, 3), np.float32)
    base = rng.uniform(0.25, 0.6, 3)
    for c in range(3):
        wave = np.zeros((h, w), np.float32)
        for _ in range(2):
            fx, fy = rng.uniform(0.5, 2.0, 2) * 2 * np.pi / np.array([w, h])
            wave += np.sin(fx * xx + fy * yy + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.04, 0.1) * texture
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


def _coverage(sdf: np.ndarray, edge: float) -> np.ndarray:
    """Opacity of a shape from its signed distance: 1 inside, 0 outside, a linear ramp ``edge`` pixels wide."""
    return np.clip(0.5 - sdf / edge, 0, 1)


def reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Positions after elastic reflection between ``lo`` and ``hi`` (a triangle wave).

    That is where a sprite that would be at ``x`` without walls is, with them.
    """
    span = np.maximum(np.asarray(hi, np.float64) - lo, 1e-6)
    y = np.mod(np.asarray(x, np.float64) - lo, 2 * span)
    return lo + span - np.abs(y - span)


def _trail(s: dict[str, Any], t: int, cfg: ToyWorldConfig) -> list[tuple[np.ndarray, float]]:
    """Ghost positions and opacities of sprite ``s`` at frame ``t``.

    The ghosts sit where the sprite was over the last ``cfg.trail`` frames (continuous bounce-aware trajectory,
    sampled every half frame), fading with age.
    """
    if cfg.trail <= 0 or not s["vel0"].any():
        return []
    r, lo = s["radius"], np.array([s["radius"], s["radius"]])
    hi = np.array([cfg.width - r, cfg.height - r])
    ages = np.arange(cfg.trail, 0, -0.5)  # oldest first, so newer ghosts are drawn over older ones
    return [(reflect(s["pos0"] + s["vel0"] * (t - a), lo, hi), cfg.trail_alpha * (1 - a / (cfg.trail + 0.5)))
            for a in ages]


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
    bg = _background(rng, h, w, cfg.bg_texture)
    sprites, kind = _sample_sprites(cfg, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5  # pixel centres
    video = np.empty((t_len, h, w, 3), np.float32)
    pos = np.zeros((t_len, len(sprites), 2))
    vel = np.zeros_like(pos)
    for s in sprites:
        s["pos0"], s["vel0"] = s["pos"].copy(), s["vel"].copy()
    for t in range(t_len):
        img = bg.copy()
        for j, s in enumerate(sprites):
            if t > 0:
                s["pos"], s["vel"] = _step(s["pos"], s["vel"], s["radius"], w, h)
            pos[t, j], vel[t, j] = s["pos"], s["vel"]
            for p, a in _trail(s, t, cfg):
                ghost = a * _coverage(_sdf(s["shape"], xx - p[0], yy - p[1], s["radius"]), cfg.edge)
                img = img * (1 - ghost[..., None]) + ghost[..., None] * s["color"]
            alpha = _coverage(_sdf(s["shape"], xx - s["pos"][0], yy - s["pos"][1], s["radius"]), cfg.edge)
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
    n = n if n is not None else {"train": cfg.n_train, "eval": cfg.n_eval, "long": cfg.n_long, "val": cfg.n_val}[split]
    out = [render_clip(cfg, split, i) for i in range(n)]
    return np.stack([v for v, _ in out]), [g for _, g in out]

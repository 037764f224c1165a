"""Toy-world motion that noise cannot fake.

Each sprite is followed from its first-frame appearance, then one velocity is fitted to its whole track.

A clip's index entry carries the ground truth of its *data* clip (``gt.positions``, ``gt.sprites``), and a
generated clip shares that clip's first frame. So every sprite's frame-0 position, size and shape are known:

1. **Follow**: cut the sprite out of frame 0 (its own shape as the mask) and find it again in every later frame
   by masked sum-of-squared-differences template matching in a window around where its last velocity takes it
   (sub-pixel by a parabola through the best match). A match is the sprite only if its RMS mismatch is well below
   the sprite's contrast to its surroundings (``FOUND_FRAC``): speckles, flicker, colour noise and a sprite faded
   into the background do not look like the sprite. While it is not found (hidden behind another sprite, or gone)
   the search coasts along the last velocity, so a sprite is found again after an occlusion.
2. **Fit**: per axis, the position of a toy sprite is ``reflect(x0 + v·t)`` between the walls (elastic bounces,
   as the world renders them). One ``v`` per axis is fitted to the whole track (robust loss: frames where the
   sprite was lost do not dominate), so match jitter averages out instead of adding up: a frozen sprite whose
   matches jitter by ±1 px reads ~0.03 px/frame over 16 frames, not the ~0.7 px/frame that summing frame-to-frame
   displacements would give.

The fitted speed of a clip is the mean over its sprites (px/frame). The same estimator applied to the data
clips reads their ground-truth speed to within a few per cent (tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import binary_dilation

from aad_bench.world.toy import MAX_SPEED, _sdf, reflect

VERSION = 7  # of the measure: bump when a change moves its numbers (stored scores of an older version are redone)
FROZEN_SPEED = 0.1  # px/frame: below this a sprite is not visibly moving
SEARCH = 5  # px searched around the last position per frame (the world's fastest sprite moves MAX_SPEED = 2 px/frame)
REACH = 2  # ... and only this far plus the last velocity from where that velocity takes the sprite (a bounce lands
           # it 2|v| away, covered while |v| <= REACH): a faded sprite's track does not jump onto another one 5 px away
V_MAX = MAX_SPEED  # px/frame: the largest speed the fit considers, the world's fastest sprite. Faster, the bounce model
                   # aliases: a smear's track that jumped to a wall and stuck there fitted 3.5 px/frame with two bounces
LOST_RMS = 0.2  # RMS template mismatch (pixel values in [0, 1]) above which a sprite is never found in a frame
FOUND_FRAC = 0.6  # ... nor above this share of its contrast (a match must look far more like it than its surroundings)
MIN_FOUND = 0.75  # a sprite found in fewer of the later frames than this has no visible motion: its speed counts as 0


def sprite_mask(shape: str, radius: float, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Boolean mask of a sprite in a square patch around ``round(pos)``; returns (mask, patch centre, half-size)."""
    half = int(np.ceil(radius)) + 1
    c = np.round(pos).astype(int)
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    dx, dy = xx + c[0] + 0.5 - pos[0], yy + c[1] + 0.5 - pos[1]  # pixel centres relative to the sprite centre
    mask = _sdf(shape, dx, dy, radius) < -0.25
    if mask.sum() < 4:  # tiny shapes: fall back to a disc so the template has enough pixels
        mask = np.hypot(dx, dy) <= max(radius, 1.5)
    return mask, c, half


def _patch(frame: np.ndarray, cx: int, cy: int, half: int) -> np.ndarray:
    """The ``(2·half+1)²`` patch centred on integer pixel ``(cx, cy)`` (edge-padded outside the frame)."""
    h, w = frame.shape[:2]
    ys = np.clip(np.arange(cy - half, cy + half + 1), 0, h - 1)
    xs = np.clip(np.arange(cx - half, cx + half + 1), 0, w - 1)
    return frame[np.ix_(ys, xs)]


def _subpixel(cost: np.ndarray, i: int) -> float:
    """Offset in (-0.5, 0.5) of the minimum of a parabola through ``cost[i-1:i+2]``."""
    if i <= 0 or i >= len(cost) - 1:
        return 0.0
    a, b, c = cost[i - 1], cost[i], cost[i + 1]
    if not np.isfinite(a + c):  # a neighbour outside the frame
        return 0.0
    den = a - 2 * b + c
    return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den > 1e-12 else 0.0


def _match_costs(frame: np.ndarray, centre: np.ndarray, span: np.ndarray, half: int, mask: np.ndarray,
                 tmpl: np.ndarray, hi: np.ndarray | None = None) -> np.ndarray:
    """Squared template mismatch at ``centre + (dx, dy)`` for ``dy``, ``dx`` in ``span`` (rows: dy).

    With ``hi`` (the frame's last pixel) centres outside the frame are inf: not candidates.
    """
    def cost(dx: int, dy: int) -> float:
        x, y = centre[0] + dx, centre[1] + dy
        if hi is not None and not (0 <= x <= hi[0] and 0 <= y <= hi[1]):
            return np.inf
        return float(((_patch(frame, x, y, half)[mask] - tmpl) ** 2).sum())

    return np.array([[cost(dx, dy) for dx in span] for dy in span])


def _subpixel_at(frame: np.ndarray, c: np.ndarray, half: int, mask: np.ndarray, tmpl: np.ndarray) -> np.ndarray:
    """The (x, y) sub-pixel offset the parabola reads for the template matched at integer pixel ``c``."""
    cost = _match_costs(frame, c, np.arange(-1, 2), half, mask, tmpl)
    return np.array([_subpixel(cost[1], 1), _subpixel(cost[:, 1], 1)])


def _contrast(patch: np.ndarray, mask: np.ndarray) -> float:
    """RMS difference between a sprite (``patch[mask]``) and the mean colour around it (pixel values in [0, 1]).

    This is the template mismatch a frame would give where the sprite has vanished into its surroundings, so a
    match is only the sprite when its mismatch is well below it (``FOUND_FRAC``).
    """
    ring = ~binary_dilation(mask)  # one pixel of margin: anti-aliased edges belong to neither
    around = patch[ring if ring.any() else ~mask].mean(0)
    return float(np.sqrt(((patch[mask] - around) ** 2).mean()))


def follow_sprite(frames: np.ndarray, pos0: np.ndarray, shape: str, radius: float, search: int = SEARCH
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Track one sprite through float frames ``[T,H,W,3]`` from its frame-0 position.

    Returns the track ``[T, 2]`` (x, y) and whether the sprite was found in each frame ``[T]`` (True at frame 0):
    the best match's RMS mismatch must be below ``LOST_RMS`` and below ``FOUND_FRAC`` of the sprite's contrast to
    its surroundings in frame 0, since a sprite dissolved into noise, blur or the background matches nothing well,
    whatever position the search returns. The search is centred where the sprite's last velocity takes it and
    reaches ``REACH`` px plus that velocity around it (a bounce reverses it), so a faded sprite's track does not
    jump onto a similar sprite nearby; a frame where it is not found (hidden behind another sprite, or gone) does
    not move the track off that path (the sub-pixel velocity, so the path stays true over several frames), so a
    sprite that reappears after an occlusion is found again.
    """
    mask, c0, half = sprite_mask(shape, radius, np.asarray(pos0, np.float64))
    patch0 = _patch(frames[0], c0[0], c0[1], half)
    tmpl = patch0[mask]
    limit = min(LOST_RMS, FOUND_FRAC * _contrast(patch0, mask))
    offset = np.asarray(pos0, np.float64) - c0  # sub-pixel position of the sprite inside its centre pixel
    # the parabola's sub-pixel estimate is biased for an asymmetric sprite: matched against frame 0 itself it reads
    # a shift of up to half a pixel, so the track's later points are measured from that reading (a sprite that stays
    # put reads exactly 0; the search itself is unchanged)
    bias = _subpixel_at(frames[0], c0, half, mask, tmpl)
    track, found = [np.asarray(pos0, np.float64)], [True]
    pos, vel = c0.astype(np.float64), np.zeros(2)  # sub-pixel position (of the centre pixel) and velocity
    hi = np.array([frames.shape[2] - 1, frames.shape[1] - 1])  # (x, y) of the last pixel
    for frame in frames[1:]:
        centre = np.clip(np.round(pos + vel).astype(int), 0, hi)
        reach = min(search, REACH + int(np.ceil(np.abs(vel).max())))
        span = np.arange(-reach, reach + 1)
        # centres outside the frame are not candidates: the edge padding there repeats a sprite at the border
        cost = _match_costs(frame, centre, span, half, mask, tmpl, hi)
        iy, ix = np.unravel_index(int(np.argmin(cost)), cost.shape)
        found.append(bool(np.sqrt(cost[iy, ix] / tmpl.size) < limit))
        if found[-1]:
            sub = np.array([_subpixel(cost[iy], ix), _subpixel(cost[:, ix], iy)])
            new = centre + np.array([span[ix], span[iy]]) + sub
            pos, vel = new, np.clip(new - pos, -search, search)
        else:  # not found: coast along the last velocity
            pos = pos + vel
        track.append(pos + offset - bias)
    return np.stack(track), np.asarray(found)


def fit_axis_velocity(track: np.ndarray, lo: float, hi: float, v_max: float = V_MAX, clip: float = 2.0) -> float:
    """Velocity ``v`` (px/frame) of ``reflect(x0 + v·t)`` that best explains a 1-D track.

    Robust: errors above ``clip`` px count as ``clip``, so frames where the sprite was lost do not dominate.
    """
    t = np.arange(len(track), dtype=np.float64)
    x0 = track[0]

    def best(grid: np.ndarray) -> float:
        pred = reflect(x0 + grid[:, None] * t[None], lo, hi)
        cost = np.minimum((pred - track[None]) ** 2, clip ** 2).sum(1)
        return float(grid[int(np.argmin(cost))])

    coarse = best(np.linspace(-v_max, v_max, int(20 * v_max) + 1))
    return best(np.linspace(coarse - 0.05, coarse + 0.05, 101))


def sprite_speeds(frames: np.ndarray, gt: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Fitted speed (px/frame) of every sprite of the data clip ``gt`` in ``frames`` (uint8 ``[T,H,W,3]``).

    Also returns the share of later frames in which each sprite was found (template mismatch below ``LOST_RMS``
    and below ``FOUND_FRAC`` of its contrast to its surroundings in frame 0); a sprite found in fewer than
    ``MIN_FOUND`` of them reads 0 px/frame: neither noise nor a sprite faded into the background can fake motion.
    """
    f = frames.astype(np.float32) / 255.0
    h, w = f.shape[1:3]
    pos0 = np.asarray(gt["positions"][0], np.float64).reshape(-1, 2)
    speeds, found = [], []
    for p0, sprite in zip(pos0, gt["sprites"]):
        r = float(sprite["radius"])
        track, seen = follow_sprite(f, p0, sprite["shape"], r)
        vx = fit_axis_velocity(track[:, 0], r, w - r)
        vy = fit_axis_velocity(track[:, 1], r, h - r)
        found.append(float(seen[1:].mean()) if len(seen) > 1 else 1.0)
        # a sprite that dissolved into noise or blur is not moving, whatever track the search wandered along
        speeds.append(float(np.hypot(vx, vy)) if found[-1] >= MIN_FOUND else 0.0)
    return np.asarray(speeds), np.asarray(found)


def clip_speed(frames: np.ndarray, gt: dict[str, Any]) -> float:
    """Mean fitted sprite speed of one clip (px/frame)."""
    return float(sprite_speeds(frames, gt)[0].mean())


def gt_speed(gt: dict[str, Any], frames: int | None = None) -> float:
    """The data clip's true mean sprite speed (px/frame) over its first ``frames`` frames."""
    vel = np.asarray(gt["velocities"], np.float64)
    vel = vel[1:frames] if frames else vel[1:]
    return float(np.linalg.norm(vel, axis=-1).mean()) if len(vel) else 0.0


def motion_summary(clips: list[np.ndarray], gts: list[dict[str, Any]]) -> dict[str, Any]:
    """Generated clips vs the data clips sharing their first frames.

    Returns ``speed_ratio`` (mean fitted speed of the clips / mean true speed of their data twins),
    ``frozen_share`` (among clips whose twin moves ≥ ``FROZEN_SPEED``, the share whose fitted speed is below it),
    ``found_share`` (share of sprite-frames where the sprite still looks like itself: speed read off noise or a
    dissolved sprite means nothing, so judge a speed ratio together with this), the per-clip ``speeds``,
    ``data_speeds`` and ``found``.
    """
    if len(clips) != len(gts) or not clips:
        raise ValueError(f"motion_summary: {len(clips)} clips for {len(gts)} ground truths")
    per_clip = [sprite_speeds(c, g) for c, g in zip(clips, gts)]
    speeds = np.array([s.mean() for s, _ in per_clip])
    found = np.array([f.mean() for _, f in per_clip])
    data = np.array([gt_speed(g, len(c)) for c, g in zip(clips, gts)])
    moving = data >= FROZEN_SPEED
    return {"speed_ratio": float(speeds.mean() / max(data.mean(), 1e-9)),
            "frozen_share": float((speeds[moving] < FROZEN_SPEED).mean()) if moving.any() else 0.0,
            "found_share": float(found.mean()),
            "speed": float(speeds.mean()), "data_speed": float(data.mean()),
            "speeds": speeds.round(4).tolist(), "data_speeds": data.round(4).tolist(),
            "found": found.round(3).tolist()}

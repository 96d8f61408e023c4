"""Perfectly elastic head-on collision of two balls (conservation of momentum and energy).

Parameters per video: ``(r1, r2, v1, v2)``. Ball 1 (red) starts on the left moving right at
``v1``; ball 2 (blue) starts on the right moving left at speed ``v2`` (its velocity is ``-v2``),
both at one height. Masses are proportional to ``r**2`` (one density). The trajectory is exact:
both move uniformly until contact at ``t_c = gap / (v1 + v2)``, then with the 1-D elastic
velocities, which conserve momentum and kinetic energy to float precision. In 1-D two balls
separate after an elastic collision, so there is at most one contact.

Placement (reference section 1.4) without the authors' dead branch: the gap is drawn so that
contact happens no earlier than ``MIN_PRE_FRAMES`` frames; a scene that needs more than
``MAX_TRIES`` draws is dropped (``valid`` False), as in the authors' code.
"""

from __future__ import annotations

import numpy as np

from phylaw.physics.state import FRAME_DT_S, NUM_FRAMES, WORLD_SIZE, Colour, discs, lerp
from phylaw.physics.uniform import MARGIN

PARAM_NAMES = ("r1", "r2", "v1", "v2")
SIZE_PARAMS = ("r1", "r2")  # the parameters that are body sizes (radii), in slot order
NUM_BODIES = 2
MIN_PRE_FRAMES = 8
MAX_TRIES = 10
NUM_UNIFORMS = 1 + 2 * MAX_TRIES  # height, then (gap, x1) per try
COLOURS = (Colour.RED, Colour.BLUE)


def elastic_velocities(
    m1: np.ndarray, m2: np.ndarray, u1: np.ndarray, u2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """1-D perfectly elastic collision: velocities after contact (any shape, broadcast).

    ``v1' = ((m1 - m2) u1 + 2 m2 u2) / (m1 + m2)``, ``v2' = ((m2 - m1) u2 + 2 m1 u1) / (m1 + m2)``.
    """
    total = m1 + m2
    return ((m1 - m2) * u1 + 2 * m2 * u2) / total, ((m2 - m1) * u2 + 2 * m1 * u1) / total


def place(params: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Initial positions [B, 2, 2] and a validity mask [B] from params [B, 4] and draws [B, 21]."""
    r1, r2, v1, v2 = params.T
    rmax = np.maximum(r1, r2)
    y = lerp(rmax + MARGIN, WORLD_SIZE - MARGIN - rmax, u[:, 0])
    speed = v1 + v2
    min_pre = MIN_PRE_FRAMES * FRAME_DT_S * speed + r1 + r2
    max_pre = (NUM_FRAMES - MIN_PRE_FRAMES) * FRAME_DT_S * speed + r1 + r2
    room = WORLD_SIZE - r1 - r2
    small_left = r2 > 2 * r1  # a much larger right ball: keep the pair near the right edge
    max_pre = np.where(small_left, np.minimum(1.25 * min_pre, room), np.minimum(max_pre, room))

    x1 = np.zeros_like(r1)
    x2 = np.zeros_like(r1)
    pending = np.ones(len(params), dtype=bool)
    for k in range(MAX_TRIES):
        i = np.flatnonzero(pending)
        if i.size == 0:
            break
        dist = lerp(min_pre[i], max_pre[i], u[i, 1 + 2 * k])
        x1_right = WORLD_SIZE - r2[i] - dist
        x1_left = np.where(small_left[i], x1_right - 0.5, r1[i])
        cand1 = np.maximum(lerp(x1_left, x1_right, u[i, 2 + 2 * k]), r1[i])
        cand2 = np.minimum(cand1 + dist, WORLD_SIZE - r2[i])
        gap = cand2 - cand1 - r1[i] - r2[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            frames_before = gap / speed[i] / FRAME_DT_S
        ok = (speed[i] == 0) | (frames_before >= MIN_PRE_FRAMES)
        x1[i[ok]] = cand1[ok]
        x2[i[ok]] = cand2[ok]
        pending[i[ok]] = False
    pos0 = np.stack([np.stack([x1, y], -1), np.stack([x2, y], -1)], axis=1)
    return pos0, ~pending


def contact_time(params: np.ndarray, pos0: np.ndarray) -> np.ndarray:
    """Time of contact [B] in seconds (``inf`` when the balls never approach)."""
    r1, r2, v1, v2 = params.T
    gap = pos0[:, 1, 0] - pos0[:, 0, 0] - r1 - r2
    speed = v1 + v2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(speed > 0, gap / speed, np.inf)


def exact(params: np.ndarray, pos0: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact piecewise-linear positions and velocities, each [B, T, 2, 2].

    Velocities switch at contact; a frame exactly at ``t_c`` shows the pre-contact velocity.
    """
    r1, r2, v1, v2 = params.T
    u = np.stack([v1, -v2], axis=-1)  # [B, 2] signed x-velocities before contact
    w = np.stack(elastic_velocities(r1**2, r2**2, v1, -v2), axis=-1)  # after contact
    tc = contact_time(params, pos0)[:, None]  # [B, 1]
    t = times[None, :]  # [1, T]
    before = np.minimum(t, tc)[..., None]  # [B, T, 1]
    after = np.maximum(t - tc, 0.0)[..., None]
    x = pos0[:, None, :, 0] + u[:, None] * before + w[:, None] * after  # [B, T, 2]
    vx = np.where((t <= tc)[..., None], u[:, None], w[:, None])
    pos = np.stack([x, np.broadcast_to(pos0[:, None, :, 1], x.shape)], axis=-1)
    vel = np.stack([vx, np.zeros_like(vx)], axis=-1)
    return pos, vel


def simulate(params: np.ndarray, u: np.ndarray, times: np.ndarray):
    """Exact collision. Returns ``(pos0 [B,2,2], pos, vel [B,T,2,2], valid [B])``."""
    pos0, valid = place(params, u)
    pos, vel = exact(params, pos0, times)
    return pos0, pos, vel, valid


def bodies(params: np.ndarray, colours=COLOURS):
    """Ball 1 (radius r1) and ball 2 (radius r2) per video."""
    return discs(params[:, :2], colours)

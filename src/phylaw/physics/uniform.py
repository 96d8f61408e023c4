"""Uniform linear motion: one red ball moving horizontally at constant speed (law of inertia).

Parameters per video: ``(r, v)``, radius and speed in world units and world units/s.
Placement (reference section 1.2, the authors' rule): the ball starts fully in view and, if v is
not too large, is still fully in view after ``MIN_VISIBLE_FRAMES`` frames:
``x0 ~ U(r, 10 - (2.4 v + r))`` (if that interval is empty, ``U(r, r + 0.5 u)``), and
``y0 ~ U(r + 0.5, 9.5 - r)``.
"""

from __future__ import annotations

import numpy as np

from phylaw.physics.state import FRAME_DT_S, WORLD_SIZE, Colour, discs, lerp

PARAM_NAMES = ("r", "v")
SIZE_PARAMS = ("r",)  # the parameters that are body sizes (radius), in slot order
NUM_BODIES = 1
NUM_UNIFORMS = 3  # x0, y0, fallback width
MIN_VISIBLE_FRAMES = 24
MARGIN = 0.05 * WORLD_SIZE  # the authors' eps: 0.5 world units from the top and bottom
COLOURS = (Colour.RED,)


def place_x(r: np.ndarray, v: np.ndarray, u_x: np.ndarray, u_extra: np.ndarray) -> np.ndarray:
    """Initial x of a ball moving right at speed v [B]: visible for ``MIN_VISIBLE_FRAMES`` frames.

    ``u_x``, ``u_extra``: uniform draws in [0, 1), [B]. Returns x0 [B].
    """
    min_dist = MIN_VISIBLE_FRAMES * FRAME_DT_S * v + r
    max_init = WORLD_SIZE - min_dist
    max_init = np.where(max_init < r, r + 0.5 * u_extra, max_init)
    return lerp(r, max_init, u_x)


def place(params: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Initial positions [B, 1, 2] from ``params`` [B, 2] = (r, v) and draws ``u`` [B, 3]."""
    r, v = params[:, 0], params[:, 1]
    x0 = place_x(r, v, u[:, 0], u[:, 2])
    y0 = lerp(r + MARGIN, WORLD_SIZE - MARGIN - r, u[:, 1])
    return np.stack([x0, y0], axis=-1)[:, None, :]


def velocity0(params: np.ndarray) -> np.ndarray:
    """Initial velocities [B, 1, 2]: (v, 0)."""
    v = params[:, 1]
    return np.stack([v, np.zeros_like(v)], axis=-1)[:, None, :]


def motion(
    pos0: np.ndarray, vel0: np.ndarray, times: np.ndarray, accel: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Constant-acceleration motion, exact: ``p(t) = p0 + v0 t + a t^2 / 2``, ``v(t) = v0 + a t``.

    ``pos0``, ``vel0`` [B, N, 2]; ``times`` [T]; ``accel`` broadcastable to [2] or None.
    Returns ``(pos, vel)``, each [B, T, N, 2].
    """
    t = times[None, :, None, None]
    pos = pos0[:, None] + vel0[:, None] * t
    vel = np.broadcast_to(vel0[:, None], pos.shape).copy()
    if accel is not None:
        a = np.asarray(accel, dtype=np.float64)
        pos = pos + 0.5 * a * t**2
        vel = vel + a * t
    return pos, vel


def exact(params: np.ndarray, pos0: np.ndarray, times: np.ndarray):
    """Exact positions and velocities [B, T, 1, 2] from params and initial positions."""
    return motion(pos0, velocity0(params), times)


def simulate(params: np.ndarray, u: np.ndarray, times: np.ndarray):
    """Exact uniform motion. Returns ``(pos0 [B,1,2], pos [B,T,1,2], vel [B,T,1,2], valid [B])``."""
    pos0 = place(params, u)
    pos, vel = exact(params, pos0, times)
    return pos0, pos, vel, np.ones(len(params), dtype=bool)


def bodies(params: np.ndarray, colours=COLOURS):
    """One disc of radius r per video."""
    return discs(params[:, :1], colours)

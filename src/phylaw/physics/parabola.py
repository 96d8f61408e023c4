"""Parabolic motion: a ball with an initial horizontal velocity falls under constant gravity
(Newton's second law).

Parameters per video: ``(r, v)``. Gravity is ``(0, -2.5)`` world units/s^2 (reference section 1.3).
The trajectory is the exact closed form; the authors' Box2D integrator (semi-implicit Euler at
0.01 s) lags it by ``g t dt / 2`` (<= 0.04 world units at 3.2 s), see ``tests/test_physics.py``.
Placement: x0 as for uniform motion; ``y0 ~ U(9.5 - r - 1, 9.5 - r)`` (near the top), so the ball
may fall out of the bottom before the last frame; evaluation masks frames not fully in view.
"""

from __future__ import annotations

import numpy as np

from phylaw.physics import uniform
from phylaw.physics.state import WORLD_SIZE, Colour, discs, lerp

PARAM_NAMES = ("r", "v")
SIZE_PARAMS = ("r",)  # the parameters that are body sizes (radius), in slot order
NUM_BODIES = 1
NUM_UNIFORMS = 3
GRAVITY = np.array([0.0, -2.5])  # world units / s^2
DROP_BAND = 1.0  # the ball starts within this band below the top margin
COLOURS = (Colour.RED,)


def place(params: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Initial positions [B, 1, 2] from ``params`` [B, 2] = (r, v) and draws ``u`` [B, 3]."""
    r, v = params[:, 0], params[:, 1]
    x0 = uniform.place_x(r, v, u[:, 0], u[:, 2])
    top = WORLD_SIZE - uniform.MARGIN - r
    y0 = lerp(top - DROP_BAND, top, u[:, 1])
    return np.stack([x0, y0], axis=-1)[:, None, :]


def exact(params: np.ndarray, pos0: np.ndarray, times: np.ndarray):
    """Exact positions and velocities [B, T, 1, 2] from params and initial positions."""
    return uniform.motion(pos0, uniform.velocity0(params), times, GRAVITY)


def simulate(params: np.ndarray, u: np.ndarray, times: np.ndarray):
    """Exact projectile motion. Returns ``(pos0, pos, vel, valid)`` as ``uniform.simulate``."""
    pos0 = place(params, u)
    pos, vel = exact(params, pos0, times)
    return pos0, pos, vel, np.ones(len(params), dtype=bool)


def bodies(params: np.ndarray, colours=COLOURS):
    """One disc of radius r per video."""
    return discs(params[:, :1], colours)

"""The red ball: PHYRE's "ball"-tier action placed by the authors' heuristic (reference 3.4).

An action ``(x, y, a)`` in [0, 1]^3 is a red dynamic ball centred at PHYRE pixel
``(int(511 x), int(511 y))`` with radius ``round(2 + 62 a)`` px. It is valid when every component
is in [0, 1], the ball lies inside the canvas and it touches no object (PHYRE's occlusion check).

The "positioning" heuristic of ``data_generator_v2.py`` (probability 1 in the authors' run), on
the features of the initial objects (one per body; x, y and the diameter normalised by the canvas
side, the angle as a fraction of a turn in [0, 1)):

* radius range: over ball bodies ``[max(min d / 4, 0.02), min(max 2 d, 0.2)]``, d the normalised
  diameter; ``[0.02, 0.2]`` when the scene has no ball;
* targets: every body but bars whose angle fraction is below 0.05 ("horizontal" bars; a
  slightly negative angle wraps to ~1 and stays a target, as in the authors' code);
* per try: a target, ``my_r ~ U(range)``, ``dx ~ U(-0.8, 0.8) (d_target / 2 + my_r)``,
  ``x = x_target + dx``; with p = 0.5 ``y ~ U(y_target + 0.9 dx, 1 - d_target / 2 - 0.05)``
  ("above"), else ``y ~ U(d_target / 2 + 0.05, y_target - 0.9 dx)``; the action is
  ``(x, y, 5 my_r)``.

After ``HEURISTIC_TRIES`` invalid tries the authors fall back to a random valid action with a fresh
radius; here that is ``(U(0, 1), U(0, 1), 5 U(range))`` for up to ``FALLBACK_TRIES`` tries, after
which the scene has no red ball and is dropped by the builder (never observed). All draws come from
``SeedSequence([seed, ACTION_STREAM, template, task, trial])``: the trial index alone changes
the red ball of a task.
"""

from __future__ import annotations

import math

import numpy as np

from phylaw.physics.scenes.collide import Outline, disc_outline, inside, overlaps
from phylaw.physics.scenes.kinds import SCENE_PX, Form, Kind, diameter, form_of, to_world
from phylaw.physics.scenes.layout import Layout
from phylaw.physics.state import WORLD_SIZE

ACTION_STREAM = 1
HEURISTIC_TRIES = 100  # the authors' max_loop_per_action
FALLBACK_TRIES = 1000
RADIUS_SCALE = 5.0  # the authors' RADIUS_SCALE: action a = 5 my_r
MIN_R, MAX_R = 0.1 / RADIUS_SCALE, 1.0 / RADIUS_SCALE
EPS = 0.05


def features(layout: Layout) -> np.ndarray:
    """PHYRE-style features of the bodies, [N, 5]: x, y, angle fraction, diameter, form.

    Positions and diameters are normalised by the canvas side; the angle fraction is
    ``angle / 2 pi`` wrapped to [0, 1).
    """
    forms = form_of(layout.kind)
    out = np.empty((len(layout), 5))
    out[:, :2] = layout.pos / WORLD_SIZE
    out[:, 2] = np.mod(layout.angle / (2 * math.pi), 1.0)
    out[:, 3] = [diameter(int(f), d) / WORLD_SIZE for f, d in zip(forms, layout.dims, strict=True)]
    out[:, 4] = forms
    return out


def action_to_ball(action: tuple[float, float, float]) -> tuple[float, float, float] | None:
    """``(x, y, r)`` in world units of an action, or None when a component is outside [0, 1]."""
    x, y, a = action
    if not all(0.0 <= v <= 1.0 for v in (x, y, a)):
        return None
    cx, cy = int(x * (SCENE_PX - 1)), int(y * (SCENE_PX - 1))
    r = round(2 + a * (SCENE_PX // 8 - 2))
    return float(to_world(cx)), float(to_world(cy)), float(to_world(r))


def _valid(ball: tuple[float, float, float] | None, outlines: list[Outline]) -> bool:
    if ball is None:
        return False
    disc = disc_outline(*ball)
    return inside(disc, 0.0, WORLD_SIZE) and not any(overlaps(disc, o) for o in outlines)


def _radius_range(f: np.ndarray) -> tuple[float, float]:
    balls = f[f[:, 4] == Form.BALL, 3]
    if balls.size == 0:
        return MIN_R, MAX_R
    return max(float(balls.min()) / 4, MIN_R), min(float(balls.max()) * 2, MAX_R)


def place_red_ball(layout: Layout, template: int, task: int, trial: int, seed: int = 0):
    """The layout with the red ball of ``trial`` appended, or None when none could be placed.

    Returns ``(layout, action)``: the new ``Layout`` and the action ``(x, y, a)`` used.
    """
    rng = np.random.default_rng([int(seed), ACTION_STREAM, int(template), int(task), int(trial)])
    f = features(layout)
    outlines = layout.outlines()
    lo, hi = _radius_range(f)
    targets = [i for i in range(len(f)) if not (f[i, 4] == Form.BAR and f[i, 2] < 0.05)]
    targets = targets or list(range(len(f)))
    for _ in range(HEURISTIC_TRIES):
        x0, y0, _, d, _ = f[targets[int(rng.integers(len(targets)))]]
        my_r = lo + (hi - lo) * rng.random()
        dx = (rng.random() * 1.6 - 0.8) * (d / 2 + my_r)
        if rng.random() < 0.5:  # above the target
            y_lo, y_hi = y0 + 0.9 * dx, 1.0 - d / 2 - EPS
        else:  # below it
            y_lo, y_hi = d / 2 + EPS, y0 - 0.9 * dx
        action = (x0 + dx, y_lo + (y_hi - y_lo) * rng.random(), RADIUS_SCALE * my_r)
        ball = action_to_ball(action)
        if _valid(ball, outlines):
            return layout.append(Kind.RED_BALL, (ball[2], 0, 0, 0), ball[:2], 0.0), action
    for _ in range(FALLBACK_TRIES):
        action = (rng.random(), rng.random(), RADIUS_SCALE * (lo + (hi - lo) * rng.random()))
        ball = action_to_ball(action)
        if _valid(ball, outlines):
            return layout.append(Kind.RED_BALL, (ball[2], 0, 0, 0), ball[:2], 0.0), action
    return None

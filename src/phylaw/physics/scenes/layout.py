"""Seeded layouts: the bodies of a template's four objects before the red ball (reference 3.3).

Each builder draws an object's size and placement from the authors' distributions
(``component_utils.py``) in PHYRE pixels of the 512 px canvas, positions it the way PHYRE's
creator does (``bottom``/``left``/``center_x`` act on the bounding box *after* rotation when the
angle is passed to ``C.add``, and *before* it when ``set_angle`` is chained last, as for the two
bars), and returns its bodies in world units.

Determinism: the layout of ``(template, task)`` is a pure function of ``(seed, template, task)``:
all draws come from one ``numpy`` generator seeded with ``SeedSequence([seed, LAYOUT_STREAM,
template, task])``, never from global state. (The authors drew layouts from the unseeded global
RNG, so their 7000 compiled layouts cannot be regenerated; reference section 9, item 22.)

Deliberate differences from the authors' builders, each small:

* Rejection. PHYRE never checks that objects do not overlap. Here an object is redrawn
  (``MAX_OBJECT_TRIES`` times, then the whole layout) when one of its bodies interpenetrates a
  body of an earlier object (two static bodies may overlap: they never move) or when a dynamic
  body is not fully inside the canvas. So frame 0 never shows interpenetrating rigid bodies, which
  the plausibility flags need, and nothing starts inside a wall.
* The static-ball chain's restart re-appends the chosen earlier point, which the authors' code
  turns into a second ball at the same place; exact duplicates are kept once here.
* ``max_points`` of the chain comes from the same seeded generator (the authors mixed a seeded
  ``RandomState`` with the global ``random``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from phylaw.physics.scenes.collide import Outline, inside, outline, overlaps
from phylaw.physics.scenes.kinds import (
    BAR_THICKNESS_PX,
    NUM_DIMS,
    SCENE_PX,
    Form,
    Kind,
    ball_radius_px,
    form_of,
    is_dynamic,
    jar_dims_px,
    local_bounds,
    to_world,
)
from phylaw.physics.scenes.templates import template_kinds
from phylaw.physics.state import WORLD_SIZE

LAYOUT_STREAM = 0  # SeedSequence tag of layout draws (the red ball uses another)
MAX_OBJECT_TRIES = 100
MAX_LAYOUT_TRIES = 100
MAX_CHAIN_STEPS = 10_000  # safety cap on the static-ball random walk
W = float(SCENE_PX)
T_BAR = BAR_THICKNESS_PX


@dataclass(frozen=True)
class Layout:
    """The bodies of one scene at t = 0 (N bodies, no padding), world units.

    ``kind`` int8 [N] (``Kind`` codes), ``dims`` float64 [N, 4] (see ``kinds``), ``pos`` float64
    [N, 2] body origins, ``angle`` float64 [N] radians. Bodies of one object are consecutive, in
    the template's object order; the red ball, when placed, is last (as in PHYRE's features).
    """

    kind: np.ndarray
    dims: np.ndarray
    pos: np.ndarray
    angle: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)

    def outlines(self) -> list[Outline]:
        """The world-space outline of every body."""
        forms = form_of(self.kind)
        return [
            outline(int(forms[i]), self.dims[i], self.pos[i], float(self.angle[i]))
            for i in range(len(self))
        ]

    def append(self, kind: Kind, dims, pos, angle: float) -> Layout:
        """A new layout with one more body."""
        return Layout(
            np.append(self.kind, np.int8(kind)).astype(np.int8),
            np.vstack([self.dims, np.asarray(dims, np.float64)[None]]),
            np.vstack([self.pos, np.asarray(pos, np.float64)[None]]),
            np.append(self.angle, float(angle)),
        )


# A body from a builder, in PHYRE px: (kind, dims [4], origin (x, y), angle radians).
_Body = tuple[Kind, tuple[float, ...], tuple[float, float], float]


def _dims(*values: float) -> tuple[float, ...]:
    return tuple(values) + (0.0,) * (NUM_DIMS - len(values))


def _place_by_bounds(
    form: Form, dims: tuple[float, ...], angle: float, bottom: float, center_x: float
) -> tuple[float, float]:
    """Origin that puts the rotated body's bounding box bottom and centre where asked."""
    left, low, right, _ = local_bounds(form, np.asarray(dims), angle)
    return center_x - (left + right) / 2, bottom - low


def dynamic_ball(rng: np.random.Generator, kind: Kind) -> list[_Body]:
    """Gray ball: scale U(0.06, 0.12), centre x U(0.3, 0.6) W, bottom U(0.4, 0.85) H."""
    r = ball_radius_px(rng.uniform(0.06, 0.12))
    x, bottom = rng.uniform(0.3, 0.6) * W, rng.uniform(0.4, 0.85) * W
    return [(kind, _dims(r), (x, bottom + r), 0.0)]


def static_balls(rng: np.random.Generator) -> list[_Body]:
    """Black chain of scale-0.04 balls: the authors' random walk from (0.4, 0.55)."""
    max_points = int(rng.integers(2, 7))  # random.randint(2, 6)
    angle, turn = rng.random() * 2 * math.pi, rng.random() * 2 * math.pi / 10
    stars = [(0.4, 0.55)]
    line_length, valid = 1, 0
    for _ in range(MAX_CHAIN_STEPS):
        if valid >= max_points:
            break
        if line_length >= 3 and rng.random() < 0.2:  # restart from an earlier point
            x, y = stars[int(rng.integers(len(stars)))]
            line_length = 1
            angle, turn = rng.random() * 2 * math.pi, rng.random() * 2 * math.pi / 10
        else:
            line_length += 1
            step = rng.uniform(0.05, 0.2)
            angle += turn
            x, y = stars[-1][0] + step * math.cos(angle), stars[-1][1] + step * math.sin(angle)
        if y >= 0.5:
            continue
        stars.append((x, y))
        valid += 0.0 < x < 1 and 0.0 < y < 1
    r = ball_radius_px(0.04)
    points = dict.fromkeys((x, y) for x, y in stars if 0 <= x <= 1 and 0 <= y <= 1)
    return [(Kind.STATIC_BALL, _dims(r), (x * W, y * W), 0.0) for x, y in points]


def dynamic_bar(rng: np.random.Generator) -> list[_Body]:
    """Gray bar: length U(0.15, 0.5) W, centre x U(0.3, 0.6), bottom U(0.2, 0.8), then rotated
    by U(-90, 90) degrees about its centre."""
    length = rng.uniform(0.15, 0.5) * W
    x, y, deg = rng.uniform(0.3, 0.6), rng.uniform(0.2, 0.8), rng.uniform(-90, 90)
    return [(Kind.DYNAMIC_BAR, _dims(length, T_BAR), (x * W, y * W + T_BAR / 2), math.radians(deg))]


def standing_bars(rng: np.random.Generator) -> list[_Body]:
    """1-4 gray vertical bars on the floor, lengths (0.2 + 0.05 i) W, 0.15 W apart."""
    offset, multiplier = rng.uniform(0.45, 0.6), 0.15
    if rng.random() < 0.5:
        multiplier, offset = -multiplier, 1.0 - offset
    n = int(rng.integers(1, 5))
    bodies = []
    for i, idx in enumerate(range(-n // 2, -n // 2 + n)):
        length = (0.2 + 0.05 * i) * W
        left = (offset + multiplier * idx) * W
        origin = (left + T_BAR / 2, length / 2)  # rotated by 90 degrees: bbox T_BAR x length
        bodies.append((Kind.DYNAMIC_STANDING_BARS, _dims(length, T_BAR), origin, math.pi / 2))
    return bodies


def static_bar(rng: np.random.Generator) -> list[_Body]:
    """Black bar: length U(0.2, 0.5) W, right end U(0.3, 0.4) W, bottom U(0.1, 0.5) H, then
    rotated by U(-60, 60) degrees about its centre."""
    length = rng.uniform(0.2, 0.5) * W
    y, deg, right = rng.uniform(0.1, 0.5), rng.uniform(-60, 60), rng.uniform(0.3, 0.4) * W
    origin = (right - length / 2, y * W + T_BAR / 2)
    return [(Kind.STATIC_BAR, _dims(length, T_BAR), origin, math.radians(deg))]


def dynamic_jar(rng: np.random.Generator) -> list[_Body]:
    """Gray jar of scale U(0.08, 0.3): with p = 0.7 rotated U(-45, 45) degrees with its bounding
    box bottom at U(0.2, 0.8) H, else upright on the floor; centre x U(0.3, 0.6) W."""
    dims = _dims(*jar_dims_px(rng.uniform(0.08, 0.3)))
    x, y, deg = rng.uniform(0.3, 0.6), rng.uniform(0.2, 0.8), rng.uniform(-45, 45)
    angle, bottom = (math.radians(deg), y * W) if rng.random() < 0.7 else (0.0, 0.0)
    return [(Kind.DYNAMIC_JAR, dims, _place_by_bounds(Form.JAR, dims, angle, bottom, x * W), angle)]


def standing_sticks(rng: np.random.Generator) -> list[_Body]:
    """Gray crossed sticks of width U(0.3, 0.6) W: with p = 0.3 upright on the floor, else
    rotated U(-90, 90) degrees with the bounding box bottom at U(0.2, 0.5) H."""
    dims = _dims(rng.uniform(0.3, 0.6) * W, T_BAR)
    x, y, deg = rng.uniform(0.3, 0.6), rng.uniform(0.2, 0.5), rng.uniform(-90, 90)
    angle, bottom = (0.0, 0.0) if rng.random() < 0.3 else (math.radians(deg), y * W)
    origin = _place_by_bounds(Form.STICKS, dims, angle, bottom, x * W)
    return [(Kind.DYNAMIC_STANDINGSTICKS, dims, origin, angle)]


BUILDERS = {
    Kind.DYNAMIC_BALL_1: lambda rng: dynamic_ball(rng, Kind.DYNAMIC_BALL_1),
    Kind.DYNAMIC_BALL_2: lambda rng: dynamic_ball(rng, Kind.DYNAMIC_BALL_2),
    Kind.STATIC_BALL: static_balls,
    Kind.DYNAMIC_BAR: dynamic_bar,
    Kind.DYNAMIC_STANDING_BARS: standing_bars,
    Kind.STATIC_BAR: static_bar,
    Kind.DYNAMIC_JAR: dynamic_jar,
    Kind.DYNAMIC_STANDINGSTICKS: standing_sticks,
}


def _world(body: _Body) -> tuple[Kind, np.ndarray, np.ndarray, float]:
    kind, dims, origin, angle = body
    return kind, to_world(np.asarray(dims)), to_world(np.asarray(origin)), angle


def _fits(new: list[tuple], placed: list[tuple]) -> bool:
    """Dynamic bodies inside the canvas; no overlap with another object's bodies."""
    for kind, _, _, _, out in new:
        dynamic = bool(is_dynamic(kind))
        if dynamic and not inside(out, 0.0, WORLD_SIZE):
            return False
        for other_kind, _, _, _, other in placed:
            if (dynamic or is_dynamic(other_kind)) and overlaps(out, other):
                return False
    return True


def build_layout(template: int, task: int, seed: int = 0) -> Layout:
    """The four objects of ``template`` for task ``task`` (0-99 in the paper), seeded.

    Returns the bodies in template object order. Raises ``RuntimeError`` in the (never observed)
    case that no valid layout is found in ``MAX_LAYOUT_TRIES`` attempts.
    """
    kinds = template_kinds(template)
    rng = np.random.default_rng([int(seed), LAYOUT_STREAM, int(template), int(task)])
    for _ in range(MAX_LAYOUT_TRIES):
        placed: list[tuple] = []
        for kind in kinds:
            for _ in range(MAX_OBJECT_TRIES):
                new = []
                for body in BUILDERS[kind](rng):
                    k, dims, pos, angle = _world(body)
                    new.append((k, dims, pos, angle, outline(int(form_of(k)), dims, pos, angle)))
                if _fits(new, placed):
                    placed.extend(new)
                    break
            else:
                break  # this object never fits: redraw the whole layout
        else:
            return Layout(
                np.array([b[0] for b in placed], dtype=np.int8),
                np.array([b[1] for b in placed], dtype=np.float64).reshape(-1, NUM_DIMS),
                np.array([b[2] for b in placed], dtype=np.float64).reshape(-1, 2),
                np.array([b[3] for b in placed], dtype=np.float64),
            )
    raise RuntimeError(f"no valid layout for template {template} task {task} seed {seed}")

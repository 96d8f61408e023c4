"""The object kinds of the combinatorial scenes and the geometry of their bodies.

Units. PHYRE lays scenes out on a 512 x 512 pixel canvas (the authors' change to PHYRE, reference
3.1), y up; phylaw's world is the square ``[0, WORLD_SIZE]^2`` (10 units), so one PHYRE pixel is
``WORLD_PER_PX = 10 / 512`` world units and PHYRE pixel i covers world ``[i, i + 1) * 10 / 512``,
which is exactly ``render.geometry.PixelGrid`` at 512 px. Sizes below are PHYRE's, in PHYRE pixels
(``creator/shapes.py`` with W = 512), converted once by ``to_world``.

A *kind* is one of the reference's eight objects (section 3.3) or the red user ball; an object of
a kind is one or more *bodies* (a chain of static balls, a group of standing bars). A body has a
*form* with up to four dimensions (``dims``, world units):

========  ==========================================  =======================================
form      dims                                        convex parts in body coordinates
========  ==========================================  =======================================
BALL      (radius, 0, 0, 0)                           one disc centred on the origin
BAR       (length, thickness, 0, 0)                   one box, length along local x
JAR       (height, width, base_width, thickness)      base box centred on the origin + 2 walls
STICKS    (width, thickness, 0, 0)                    two bars of ``2 width / 3`` crossed at
                                                      +-77.5 degrees (PHYRE's StandingSticks)
========  ==========================================  =======================================

The body origin is PHYRE's body position: the centre of a ball, bar or sticks, the centre of a
jar's base. Polygons are counter-clockwise, as PHYRE and the engines require.
"""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np

from phylaw.physics.state import WORLD_SIZE, Colour, SceneTrajectory

SCENE_PX = 512  # PHYRE canvas side in the authors' build (upstream PHYRE: 256)
WORLD_PER_PX = WORLD_SIZE / SCENE_PX
BAR_THICKNESS_PX = SCENE_PX / 50  # 10.24 px: bars, standing bars and the sticks
STICKS_ANGLE_DEG = 77.5
NUM_DIMS = 4
MAX_PARTS = 3  # a jar has three convex parts


class Kind(IntEnum):
    """The reference's eight object kinds (in the authors' ``object_list`` order) + the red ball."""

    DYNAMIC_BALL_1 = 0
    DYNAMIC_BALL_2 = 1
    STATIC_BALL = 2
    DYNAMIC_BAR = 3
    DYNAMIC_STANDING_BARS = 4
    STATIC_BAR = 5
    DYNAMIC_JAR = 6
    DYNAMIC_STANDINGSTICKS = 7
    RED_BALL = 8


class Form(IntEnum):
    """Body shapes (PHYRE's featurised shape one-hot order: ball, bar, jar, standingsticks)."""

    BALL = 0
    BAR = 1
    JAR = 2
    STICKS = 3


EMPTY = -1  # kind code of an unused body slot

OBJECT_KINDS = tuple(Kind)[:8]  # the eight kinds templates choose from
KIND_NAMES = {k: k.name.lower() for k in Kind}  # "dynamic_ball_1", ... as in the authors' code

# Per-kind tables indexed by the kind code.
FORM_OF = np.array([0, 0, 0, 1, 1, 1, 2, 3, 0], dtype=np.int8)
DYNAMIC_OF = np.array([1, 1, 0, 1, 1, 0, 1, 1, 1], dtype=bool)
COLOUR_OF = np.array(
    [
        Colour.PHYRE_RED if k == Kind.RED_BALL else Colour.GRAY if DYNAMIC_OF[k] else Colour.BLACK
        for k in Kind
    ],
    dtype=np.int8,
)


def to_world(px: float | np.ndarray) -> float | np.ndarray:
    """PHYRE pixels (of the 512 px canvas) -> world units."""
    return px * WORLD_PER_PX


def form_of(kind: np.ndarray) -> np.ndarray:
    """``Form`` codes of kind codes (any shape); empty slots (-1) give -1."""
    kind = np.asarray(kind)
    return np.where(kind >= 0, FORM_OF[np.maximum(kind, 0)], EMPTY).astype(np.int8)


def colour_of(kind: np.ndarray) -> np.ndarray:
    """``Colour`` codes of kind codes (any shape): gray dynamic, black static, PHYRE red ball."""
    kind = np.asarray(kind)
    return np.where(kind >= 0, COLOUR_OF[np.maximum(kind, 0)], EMPTY).astype(np.int8)


def is_dynamic(kind: np.ndarray) -> np.ndarray:
    """True for dynamic kinds (any shape); False for static kinds and empty slots."""
    kind = np.asarray(kind)
    return (kind >= 0) & DYNAMIC_OF[np.maximum(kind, 0)]


# ---------------------------------------------------------------------------- PHYRE's sizes
def ball_radius_px(scale: float) -> float:
    """PHYRE's ball radius for a scale: ``int(scale * W / 2) + 0.5`` px."""
    return int(scale * SCENE_PX / 2) + 0.5


def jar_dims_px(scale: float) -> tuple[float, float, float, float]:
    """PHYRE's jar for a scale: (height, width, base_width, thickness) in px.

    ``height = scale W``, ``width = height / 1.2``, ``base = 0.8 width`` and a wall thickness
    growing with ``log(height)``, equal to W / 50 at scale 0.3.
    """
    height = scale * SCENE_PX
    width = height / 1.2
    thickness = math.log(height) / math.log(0.3 * SCENE_PX) * SCENE_PX / 50
    return height, width, 0.8 * width, thickness


def diameter(form: int, dims: np.ndarray) -> float:
    """PHYRE's body diameter (``ShapeBuilder._diameter``), in the units of ``dims``.

    Ball: 2 r; bar and sticks: ``sqrt(w^2 + h^2)``; jar: ``sqrt((w - base) / 2 + base)^2 + h^2)``.
    The red ball's placement heuristic uses it (reference 3.4).
    """
    a, b, c, _ = (float(v) for v in dims)
    if form == Form.BALL:
        return 2.0 * a
    if form == Form.JAR:
        return math.hypot((b - c) / 2 + c, a)
    return math.hypot(a, b)


# ---------------------------------------------------------------------------- local geometry
def _box(width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """PHYRE's ``Box``: [..., 4, 2] vertices (top-right, top-left, bottom-left, bottom-right)."""
    w, h = np.asarray(width) / 2, np.asarray(height) / 2
    x = np.stack([w, -w, -w, w], axis=-1)
    y = np.stack([h, h, -h, -h], axis=-1)
    return np.stack([x, y], axis=-1)


def _rotate(points: np.ndarray, radians: float) -> np.ndarray:
    c, s = math.cos(radians), math.sin(radians)
    return points @ np.array([[c, s], [-s, c]])


def _parts(form: np.ndarray, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convex parts of bodies of ``form`` [...] (-1: none) and ``dims`` [..., 4], vectorised.

    Returns ``quads`` [..., MAX_PARTS, 4, 2] (NaN where a body has fewer quads) and ``radius``
    [...] (the disc of a ball, 0 for polygon bodies, NaN for no body).
    """
    a, b, c, d = np.moveaxis(np.asarray(dims, dtype=np.float64), -1, 0)
    quads = np.full((*form.shape, MAX_PARTS, 4, 2), np.nan)
    radius = np.where(form == Form.BALL, a, np.where(form >= 0, 0.0, np.nan))
    bar = form == Form.BAR
    quads[bar, 0] = _box(a[bar], b[bar])
    sticks = form == Form.STICKS  # two bars of vertex extent +-w/3 x +-h/3, rotated -+77.5 deg
    stick = _box(2 * a[sticks] / 3, 2 * b[sticks] / 3)
    quads[sticks, 0] = _rotate(stick, -math.radians(STICKS_ANGLE_DEG))
    quads[sticks, 1] = _rotate(stick, math.radians(STICKS_ANGLE_DEG))
    jar = form == Form.JAR  # height, width, base_width, thickness (PHYRE's Jar._build)
    height, width, base, t = a[jar], b[jar], c[jar], d[jar]
    run = (width - base) / 2
    hyp = np.hypot(height, run)
    x_delta, x_delta_top, y_delta = t * height / hyp, t * hyp / height, t * run / hyp
    top, bottom = height - t / 2, -t / 2
    left_x = np.stack([-width / 2, -base / 2, -base / 2 + x_delta, -width / 2 + x_delta_top], -1)
    right_x = np.stack([width / 2, width / 2 - x_delta_top, base / 2 - x_delta, base / 2], -1)
    left_y = np.stack([top, bottom, y_delta + bottom, top], -1)
    right_y = np.stack([top, top, y_delta + bottom, bottom], -1)
    quads[jar, 0] = _box(base, t)
    quads[jar, 1] = np.stack([left_x, left_y], -1)
    quads[jar, 2] = np.stack([right_x, right_y], -1)
    return quads, radius


def local_parts(form: int, dims: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Convex parts of one body in body coordinates: ``(polygons, radius)``.

    ``polygons``: list of [4, 2] counter-clockwise quads (empty for a ball); ``radius``: the disc
    radius of a ball, 0 otherwise. Same units as ``dims``.
    """
    if form not in tuple(Form):
        raise ValueError(f"unknown form code {form!r}; valid: {[(f.name, int(f)) for f in Form]}")
    quads, radius = _parts(np.array([form]), np.asarray(dims, dtype=np.float64)[None])
    return [q for q in quads[0] if np.isfinite(q).all()], float(radius[0])


def parts_table(kind: np.ndarray, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convex parts of every body slot, vectorised.

    ``kind`` [...] kind codes (-1: empty), ``dims`` [..., 4]. Returns ``quads`` float64
    [..., MAX_PARTS, 4, 2] in body coordinates (NaN where a body has fewer quads) and ``radius``
    float64 [...] (0 for polygon bodies, NaN for empty slots).
    """
    return _parts(form_of(kind), dims)


def world_parts(
    form: int, dims: np.ndarray, pos: np.ndarray, angle: float
) -> tuple[list[np.ndarray], float]:
    """Parts of a body placed at ``pos`` [2] (its origin) rotated by ``angle`` radians.

    Returns ``(polygons [4, 2] each, radius)`` with the disc centred on ``pos``.
    """
    polys, r = local_parts(form, dims)
    return [_rotate(p, angle) + pos for p in polys], r


def local_bounds(form: int, dims: np.ndarray, angle: float) -> tuple[float, float, float, float]:
    """Bounding box (left, bottom, right, top) of a body at the origin rotated by ``angle``."""
    polys, r = local_parts(form, dims)
    if not polys:
        return -r, -r, r, r
    pts = _rotate(np.concatenate(polys), angle)
    return (*pts.min(axis=0), *pts.max(axis=0))


def scene_record(
    times: np.ndarray, pos: np.ndarray, angle: np.ndarray, kind: np.ndarray, dims: np.ndarray
) -> SceneTrajectory:
    """The ``SceneTrajectory`` of bodies ``kind`` [B, N] / ``dims`` [B, N, 4] at poses ``pos``
    [B, T, N, 2] and ``angle`` [B, T, N]: their colours, whether they move and their convex
    parts filled in from the kind tables."""
    kind = np.asarray(kind)
    parts, radius = parts_table(kind, dims)
    return SceneTrajectory(
        np.asarray(times, dtype=np.float64),
        pos,
        angle,
        kind,
        dims,
        colour_of(kind),
        is_dynamic(kind),
        parts,
        radius,
    )

"""Exact overlap tests between placed bodies (discs and convex polygons), in world units.

Used before simulation: to reject layouts whose objects interpenetrate and red-ball placements
that touch an object (PHYRE's occlusion check). Polygons are tested with the separating axis
theorem, a disc against a polygon by the distance from its centre to the polygon. Plain Python
floats: the polygons have four vertices, where numpy's per-call overhead would dominate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from phylaw.physics.scenes.kinds import world_parts

Point = tuple[float, float]


@dataclass(frozen=True)
class Outline:
    """A placed body's convex parts in world coordinates.

    ``polygons``: counter-clockwise vertex tuples; ``discs``: ``(x, y, r)``; ``bounds``:
    ``(left, bottom, right, top)`` of all parts.
    """

    polygons: tuple[tuple[Point, ...], ...]
    discs: tuple[tuple[float, float, float], ...]
    bounds: tuple[float, float, float, float]


def outline(form: int, dims: np.ndarray, pos: np.ndarray, angle: float) -> Outline:
    """The ``Outline`` of a body of ``form`` and ``dims`` with its origin at ``pos``, rotated."""
    polys, r = world_parts(form, dims, np.asarray(pos, dtype=np.float64), angle)
    polygons = tuple(tuple((float(x), float(y)) for x, y in p) for p in polys)
    discs = ((float(pos[0]), float(pos[1]), float(r)),) if r > 0 else ()
    xs = [x for p in polygons for x, _ in p] + [d[0] + s * d[2] for d in discs for s in (-1, 1)]
    ys = [y for p in polygons for _, y in p] + [d[1] + s * d[2] for d in discs for s in (-1, 1)]
    return Outline(polygons, discs, (min(xs), min(ys), max(xs), max(ys)))


def disc_outline(x: float, y: float, r: float) -> Outline:
    """The ``Outline`` of a lone disc."""
    return Outline((), ((x, y, r),), (x - r, y - r, x + r, y + r))


def _project(poly: tuple[Point, ...], nx: float, ny: float) -> tuple[float, float]:
    dots = [x * nx + y * ny for x, y in poly]
    return min(dots), max(dots)


def _polygons_overlap(a: tuple[Point, ...], b: tuple[Point, ...], tol: float) -> bool:
    """True when convex polygons ``a`` and ``b`` interpenetrate by more than ``tol``."""
    for poly in (a, b):
        for i in range(len(poly)):
            (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % len(poly)]
            nx, ny = y1 - y0, x0 - x1  # outward normal of a counter-clockwise edge
            norm = math.hypot(nx, ny)
            if norm == 0.0:
                continue
            nx, ny = nx / norm, ny / norm
            lo_a, hi_a = _project(a, nx, ny)
            lo_b, hi_b = _project(b, nx, ny)
            if hi_a - lo_b <= tol or hi_b - lo_a <= tol:
                return False
    return True


def _disc_polygon_depth(x: float, y: float, r: float, poly: tuple[Point, ...]) -> float:
    """How deep a disc reaches into a convex polygon: ``r - signed distance`` of its centre."""
    outside = -math.inf  # largest signed distance to an edge line (> 0: centre outside)
    nearest = math.inf  # distance to the boundary, when the centre is outside
    for i in range(len(poly)):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % len(poly)]
        ex, ey = x1 - x0, y1 - y0
        length2 = ex * ex + ey * ey
        if length2 == 0.0:
            continue
        outside = max(outside, ((x - x0) * ey - (y - y0) * ex) / math.sqrt(length2))
        u = min(1.0, max(0.0, ((x - x0) * ex + (y - y0) * ey) / length2))
        nearest = min(nearest, math.hypot(x - x0 - u * ex, y - y0 - u * ey))
    return r - outside if outside <= 0 else r - nearest  # inside: r + distance to boundary


def overlaps(a: Outline, b: Outline, tol: float = 1e-6) -> bool:
    """True when bodies ``a`` and ``b`` interpenetrate by more than ``tol`` world units.

    Touching (depth within ``tol``) is not an overlap.
    """
    al, ab, ar, at = a.bounds
    bl, bb, br, bt = b.bounds
    if ar - bl <= tol or br - al <= tol or at - bb <= tol or bt - ab <= tol:
        return False
    for x1, y1, r1 in a.discs:
        for x2, y2, r2 in b.discs:
            if r1 + r2 - math.hypot(x1 - x2, y1 - y2) > tol:
                return True
        for poly in b.polygons:
            if _disc_polygon_depth(x1, y1, r1, poly) > tol:
                return True
    for poly in a.polygons:
        for x2, y2, r2 in b.discs:
            if _disc_polygon_depth(x2, y2, r2, poly) > tol:
                return True
        for other in b.polygons:
            if _polygons_overlap(poly, other, tol):
                return True
    return False


def inside(a: Outline, lo: float, hi: float, tol: float = 1e-6) -> bool:
    """True when every part of ``a`` lies in the square ``[lo, hi]^2`` (within ``tol``)."""
    left, bottom, right, top = a.bounds
    return left >= lo - tol and bottom >= lo - tol and right <= hi + tol and top <= hi + tol

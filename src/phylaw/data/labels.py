"""Evaluation blocks and labellers: which region of parameter space each evaluation video is in.

An evaluation set is a tuple of ``Block`` records: the points of a box on an explicit grid (the
authors' evaluation grids, reference 1.5) or uniform draws in it. A *labeller* names the region
of each point; the name is the video's ``level``, so ``phylaw eval`` and its reports aggregate
per region with no further code (``store.levels``, the ``level`` column). Labellers
(``LABELLERS``, by name):

* ``region``: ``support`` (inside the training support, boundary included), ``gap`` (outside
  it but inside its bounding box: an interpolation), ``beyond`` (outside the bounding box, or
  an attribute value the training set never shows: an extrapolation). Sec. 5.1, Fig. 5.
* ``hull``: ``support``, ``hull-inside`` or ``hull-outside`` the convex hull of the training
  support (over the numeric parameters it spans). Sec. 5.1, Fig. 6: a hole in (v1, v2) lies
  inside the hull, an L-shaped keep region leaves a corner outside it.
* ``blocks``: the name of the block that generated the point (the quadrants of Sec. 5.3: each
  quadrant's grid is its own block, so points on a shared edge keep their block's name).
* ``quadrants``: the name of the first named box (the study's ``quadrants``) holding the point,
  ``other`` if none: quadrants of one grid over the whole space (velocity vs size, Fig. 9 (1)).

A new labeller is a new entry: a function from (support, blocks, quadrants, params, block
index) to level names, and the order of its names.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from phylaw import PhylawError
from phylaw.data.regions import TOL, Box, Region, Space, check_box, in_box


@dataclass(frozen=True)
class Block:
    """Points of ``box`` (within the split's space) on a grid of ``grid`` (name, count) per
    numeric parameter that the box leaves a width, or ``count`` uniform draws (``grid`` empty).
    Attribute columns take every value the box (or else the space) allows."""

    box: Box = Box()
    grid: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        """The block's name: its box's (a quadrant), or empty."""
        return self.box.name

    def axes(self, space: Space) -> list[np.ndarray]:
        """The 1-D values per column of ``space.names`` whose product is this block's grid."""
        bounds = {n: (lo, hi) for n, lo, hi in self.box.bounds}
        values = dict(self.box.values)
        counts = dict(self.grid)
        out = []
        for name, lo, hi in space.ranges:
            lo, hi = bounds.get(name, (lo, hi))
            if lo == hi:
                out.append(np.array([lo]))
            elif name not in counts:
                raise PhylawError(f"evaluation grid: give a count for {name} (e.g. {name}=11)")
            else:
                out.append(np.linspace(lo, hi, counts[name]))
        for name, codes in space.domains:
            out.append(np.asarray(values.get(name, codes), dtype=np.float64))
        return out

    def is_grid(self, space: Space) -> bool:
        """True for a grid (counts given, or a box of single points), False for draws."""
        bounds = {n: (lo, hi) for n, lo, hi in self.box.bounds}
        single = all(
            bounds.get(n, (lo, hi))[0] == bounds.get(n, (lo, hi))[1] for n, lo, hi in space.ranges
        )
        return bool(self.grid) or single

    def size(self, space: Space) -> int:
        """Points of this block's grid."""
        return math.prod(len(a) for a in self.axes(space))

    def check(self, space: Space) -> None:
        """Raise ``PhylawError`` for unknown columns, empty boxes or bad grid counts."""
        check_box(self.box, space, "evaluation block")
        for name, count in self.grid:
            if name not in space.numeric:
                raise PhylawError(
                    f"evaluation grid: {space.scenario} has no numeric parameter {name!r}; "
                    f"valid: {', '.join(space.numeric)}"
                )
            if not isinstance(count, int) or count < 1:
                raise PhylawError(f"evaluation grid: {name}={count} needs a count >= 1")

    def points(self, space: Space, flat: np.ndarray) -> np.ndarray:
        """Grid points [n, P] at flat indices ``flat`` (C order over ``space.names``)."""
        axes = self.axes(space)
        idx = np.unravel_index(np.asarray(flat, dtype=np.int64), [len(a) for a in axes])
        return np.stack([a[i] for a, i in zip(axes, idx, strict=True)], axis=-1)

    def region(self, space: Space) -> Region:
        """The block as a region of ``space`` (for uniform draws)."""
        return Region(space, keep=(self.box,)) if self.box.constrains() else Region(space)


# ----------------------------------------------------------------------------------- labellers
LevelsFn = Callable[[Region, tuple[Block, ...], tuple[Box, ...]], tuple[str, ...]]
LabelFn = Callable[[Region, tuple[Block, ...], tuple[Box, ...], np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Labeller:
    """``levels(support, blocks, quadrants)``: every name it can give, in report order;
    ``label(support, blocks, quadrants, params [n, P], block [n])``: a name per point."""

    levels: LevelsFn
    label: LabelFn


def _region_label(support, blocks, quadrants, params, block) -> np.ndarray:
    names = support.space.names
    out = np.where(in_box(support.bounding_box(), names, params), "gap", "beyond")
    return np.where(support.contains(params), "support", out).astype(object)


def _hull_label(support, blocks, quadrants, params, block) -> np.ndarray:
    out = np.where(inside_hull(support, params), "hull-inside", "hull-outside")
    return np.where(support.contains(params), "support", out).astype(object)


def inside_hull(support: Region, params: np.ndarray) -> np.ndarray:
    """Which points [n, P] lie in the convex hull of ``support``: over the numeric parameters
    the support spans (the hull of its cells' corners); on the other columns they must take
    the support's values. Returns bool [n]."""
    inside = in_box(support.bounding_box(), support.space.names, params)
    cells = support.cells()
    spans = [k for k in range(cells.lo.shape[1]) if cells.hi[:, k].max() > cells.lo[:, k].min()]
    if len(spans) < 2 or not inside.any():
        return inside  # in one dimension the hull is the bounding interval
    from scipy.spatial import ConvexHull

    lo, hi = cells.lo[:, spans], cells.hi[:, spans]
    bits = np.array(list(itertools.product((False, True), repeat=len(spans))))  # [2^d, d]
    corners = np.where(bits[None], hi[:, None], lo[:, None]).reshape(-1, len(spans))
    eq = ConvexHull(np.unique(corners, axis=0)).equations  # [F, d + 1]: inside where A x + b <= 0
    inside &= (params[:, spans] @ eq[:, :-1].T + eq[:, -1] <= TOL).all(axis=1)
    return inside


def _block_label(support, blocks, quadrants, params, block) -> np.ndarray:
    return np.array([b.name for b in blocks], dtype=object)[block]


def _quadrant_label(support, blocks, quadrants, params, block) -> np.ndarray:
    names = support.space.names
    out = np.full(len(params), "other", dtype=object)
    for q in reversed(quadrants):  # the first listed box wins on a shared edge
        out[in_box(q, names, params)] = q.name
    return out


LABELLERS: dict[str, Labeller] = {
    "region": Labeller(lambda s, b, q: ("support", "gap", "beyond"), _region_label),
    "hull": Labeller(lambda s, b, q: ("support", "hull-inside", "hull-outside"), _hull_label),
    "blocks": Labeller(lambda s, b, q: tuple(x.name for x in b), _block_label),
    "quadrants": Labeller(lambda s, b, q: (*(x.name for x in q), "other"), _quadrant_label),
}


def get_labeller(name: str) -> Labeller:
    """The labeller called ``name``; a clear error lists the valid names."""
    try:
        return LABELLERS[name]
    except KeyError:
        raise PhylawError(
            f"unknown labels {name!r}; choose one of: {', '.join(LABELLERS)}"
        ) from None

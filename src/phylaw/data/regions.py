"""Regions of parameter spaces: boxes over named parameters, their unions and differences.

The mechanism studies of the paper's Sec. 5 carve training sets out of a scenario's parameter
space (a gap in v, kept intervals, a square hole in (v1, v2), quadrants of two attributes) and
name the region of every evaluation point. Three typed records describe that:

* ``Space``: the axes a split lives on: a closed range per numeric parameter of the scenario
  and, when bodies vary per video, a domain (a tuple of codes) per *attribute column*
  (``colour`` and ``shape`` for one body, ``colour1``, ``colour2``, ``shape1``, ... for more).
  Attribute columns are stored after the scenario's parameters, as the authors' ``init_streams``
  ``[r, v, color, shape]`` (reference 1.5); codes are ``Colour`` and ``Shape`` values.
* ``Box``: a named, closed box: an interval for some numeric parameters and a set of codes for
  some attributes; what it does not name is unconstrained.
* ``Region``: the points of a space inside some *keep* box (every point when none is given) and
  strictly inside no *exclude* box. Keep boxes are closed and exclude boxes open, so a region
  is closed: the support of ``exclude v=2:3`` over v in [1, 4] is [1, 2] U [3, 4].

Sampling. A region is cut into *cells* by every box boundary, so that each cell lies wholly
inside or outside it. Video i of a split of n videos picks its cell by the stratified coordinate
``(s_i + u0) / n`` over the cells' volume shares, ``s_i = (a i + b) mod n`` a fixed permutation
of the strata (a coprime to n near 0.618 n), then its position within the cell from its own
uniforms. Each cell then holds its share of n to within one video (two training quadrants of
equal area hold equal counts), any run of consecutive videos mixes the cells, and video i is a
pure function of (key, i, n), like every split (``data.rng``).
Containment tests allow ``TOL`` at box boundaries, so grid points computed by ``linspace`` that
land an ulp off a boundary are labelled as if on it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

import numpy as np

from phylaw import PhylawError
from phylaw.data.rng import uniforms
from phylaw.physics.scenarios import get_scenario
from phylaw.physics.state import Colour, Shape

TOL = 1e-9  # parameter units: containment slack at box boundaries
MAX_CELLS = 1 << 16  # a region cut into more cells than this is refused
ATTRIBUTES: dict[str, type[IntEnum]] = {"colour": Colour, "shape": Shape}  # name -> codes

NamedRange = tuple[str, float, float]
Domain = tuple[str, tuple[int, ...]]


def attribute_names(scenario: str) -> tuple[str, ...]:
    """Attribute columns of a scenario: ``colour``, ``shape`` for one body; ``colour1``, ...,
    ``colourN``, ``shape1``, ..., ``shapeN`` for N bodies."""
    n = get_scenario(scenario).NUM_BODIES
    if n == 1:
        return tuple(ATTRIBUTES)
    return tuple(f"{a}{k + 1}" for a in ATTRIBUTES for k in range(n))


def attribute_kind(column: str) -> str:
    """``"colour"`` or ``"shape"``: the attribute an attribute column holds."""
    return column.rstrip("0123456789")


def default_attributes(scenario: str) -> dict[str, int]:
    """Each attribute column's value where a split does not vary it (the scenario's bodies)."""
    scen = get_scenario(scenario)
    bodies = scen.bodies(np.ones((1, len(scen.PARAM_NAMES))))
    values = {"colour": bodies.colour[0].tolist(), "shape": bodies.shape[0].tolist()}
    names = attribute_names(scenario)
    slot = [0, 0] if scen.NUM_BODIES == 1 else [int(n[-1]) - 1 for n in names]
    return {n: int(values[attribute_kind(n)][k]) for n, k in zip(names, slot, strict=True)}


@dataclass(frozen=True)
class Space:
    """The axes of a split: ``ranges`` (name, lo, hi) for every numeric parameter of
    ``scenario`` in its order, and ``domains`` (name, codes) for every attribute column, or
    none at all (bodies as the scenario draws them; no attribute columns)."""

    scenario: str
    ranges: tuple[NamedRange, ...]
    domains: tuple[Domain, ...] = ()

    def __post_init__(self) -> None:
        ranges = tuple((str(n), float(lo), float(hi)) for n, lo, hi in self.ranges)
        object.__setattr__(self, "ranges", ranges)
        domains = tuple((str(n), tuple(int(c) for c in codes)) for n, codes in self.domains)
        object.__setattr__(self, "domains", domains)
        names = get_scenario(self.scenario).PARAM_NAMES
        if tuple(n for n, _, _ in self.ranges) != names:
            raise PhylawError(f"a {self.scenario} space needs ranges for {', '.join(names)}")
        for name, lo, hi in self.ranges:
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise PhylawError(f"invalid range {name}={lo:g}:{hi:g}: give lo <= hi")
        if self.domains:
            want = attribute_names(self.scenario)
            if tuple(n for n, _ in self.domains) != want:
                raise PhylawError(f"a {self.scenario} space needs domains for {', '.join(want)}")
            for name, codes in self.domains:
                kind = ATTRIBUTES[attribute_kind(name)]
                if not codes or len(set(codes)) != len(codes):
                    raise PhylawError(f"{name}: give one or more distinct values")
                for c in codes:
                    if c not in set(kind):
                        raise PhylawError(f"{name}: unknown code {c}")

    def describe(self) -> str:
        """One line: every range and attribute domain."""
        text = ", ".join(f"{n} in [{lo:g}, {hi:g}]" for n, lo, hi in self.ranges)
        for n, codes in self.domains:
            kind = ATTRIBUTES[attribute_kind(n)]
            text += f", {n} in {{{', '.join(kind(c).name.lower() for c in codes)}}}"
        return text

    @property
    def numeric(self) -> tuple[str, ...]:
        """Names of the numeric parameters, in the scenario's order."""
        return tuple(n for n, _, _ in self.ranges)

    @property
    def attributes(self) -> tuple[str, ...]:
        """Names of the attribute columns (none when bodies do not vary)."""
        return tuple(n for n, _ in self.domains)

    @property
    def names(self) -> tuple[str, ...]:
        """Column names of a parameter row: the numeric parameters, then attribute columns."""
        return self.numeric + self.attributes

    def range_of(self, name: str) -> tuple[float, float]:
        """(lo, hi) of numeric parameter ``name``."""
        lo, hi = next((lo, hi) for n, lo, hi in self.ranges if n == name)
        return lo, hi

    def domain_of(self, name: str) -> tuple[int, ...]:
        """The codes attribute column ``name`` may take."""
        return next(codes for n, codes in self.domains if n == name)

    def with_(self, **changes: tuple[float, float] | IntEnum | tuple[IntEnum, ...]) -> Space:
        """This space with some ranges (``v=(2.5, 4)``) or attribute domains (``colour=(RED,
        BLUE)``) replaced. Naming any attribute adds every attribute column (defaults for the
        others)."""
        unknown = set(changes) - set(self.numeric) - set(attribute_names(self.scenario))
        if unknown:
            valid = ", ".join(self.numeric + attribute_names(self.scenario))
            raise PhylawError(f"unknown parameter {sorted(unknown)[0]!r}; valid: {valid}")
        ranges = tuple(
            (n, *map(float, changes[n])) if n in changes else (n, lo, hi)
            for n, lo, hi in self.ranges
        )
        domains = dict(self.domains)
        attrs = {k: v for k, v in changes.items() if k not in self.numeric}
        if attrs and not domains:
            domains = {k: (v,) for k, v in default_attributes(self.scenario).items()}
        for k, v in attrs.items():
            domains[k] = tuple(int(c) for c in (v if isinstance(v, tuple) else (v,)))
        return Space(self.scenario, ranges, tuple(domains.items()))


@dataclass(frozen=True)
class Box:
    """A closed box: ``bounds`` (name, lo, hi) on numeric parameters and ``values`` (name,
    codes) on attribute columns; unnamed columns are free. ``name`` labels a quadrant."""

    name: str = ""
    bounds: tuple[NamedRange, ...] = ()
    values: tuple[Domain, ...] = ()

    def __post_init__(self) -> None:  # canonical types: the same box, the same draws
        bounds = tuple((str(n), float(lo), float(hi)) for n, lo, hi in self.bounds)
        object.__setattr__(self, "bounds", bounds)
        values = tuple((str(n), tuple(int(c) for c in codes)) for n, codes in self.values)
        object.__setattr__(self, "values", values)

    def constrains(self) -> tuple[str, ...]:
        """Names of the columns this box limits."""
        return tuple(n for n, _, _ in self.bounds) + tuple(n for n, _ in self.values)

    def record(self) -> dict:
        """The box as JSON: ``{name, bounds: {param: [lo, hi]}, values: {attr: [codes]}}``
        (what a manifest's ``regions`` lists and evaluation reads back)."""
        return {
            "name": self.name,
            "bounds": {n: [lo, hi] for n, lo, hi in self.bounds},
            "values": {n: list(codes) for n, codes in self.values},
        }

    def describe(self) -> str:
        """``name (r=0.7:1.05,colour=red)``, as the command line writes a box."""
        parts = [f"{n}={lo:g}:{hi:g}" for n, lo, hi in self.bounds]
        for n, codes in self.values:
            kind = ATTRIBUTES[attribute_kind(n)]
            parts.append(f"{n}=" + "|".join(kind(c).name.lower() for c in codes))
        text = ",".join(parts) or "everything"
        return f"{self.name} ({text})" if self.name else text


def box(name: str = "", **limits: tuple[float, float] | IntEnum | tuple[IntEnum, ...]) -> Box:
    """A ``Box`` from keywords: ``box("red-small", colour=Colour.RED, r=(0.7, 1.05))``."""
    bounds, values = [], []
    for key, lim in limits.items():
        if isinstance(lim, IntEnum) or (
            isinstance(lim, tuple) and lim and isinstance(lim[0], IntEnum)
        ):
            codes = lim if isinstance(lim, tuple) else (lim,)
            values.append((key, tuple(int(c) for c in codes)))
        else:
            bounds.append((key, float(lim[0]), float(lim[1])))
    return Box(name, tuple(bounds), tuple(values))


def check_box(b: Box, space: Space, what: str) -> None:
    """Raise ``PhylawError`` if ``b`` names a column ``space`` lacks or is empty."""
    valid = space.numeric + (space.attributes or attribute_names(space.scenario))
    for name in b.constrains():
        if name not in valid:
            raise PhylawError(
                f"{what}: {space.scenario} has no parameter {name!r}; valid: {', '.join(valid)}"
            )
    for name, lo, hi in b.bounds:
        if name not in space.numeric:
            raise PhylawError(f"{what}: {name} is an attribute; give values such as {name}=red")
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise PhylawError(f"{what}: empty interval {name}={lo:g}:{hi:g}; give lo < hi")
    for name, codes in b.values:
        if name not in space.attributes:
            raise PhylawError(
                f"{what}: {name} does not vary in this split; declare its values (--{name})"
            )
        outside = set(codes) - set(space.domain_of(name))
        if outside:
            raise PhylawError(
                f"{what}: {name} value {sorted(outside)[0]} is not in the split's domain"
            )


def in_box(b: Box, names: tuple[str, ...], params: np.ndarray, open_: bool = False) -> np.ndarray:
    """Which rows of ``params`` [n, P] (columns ``names``) lie in ``b`` (closed, or strictly
    inside when ``open_``; ``TOL`` slack either way). Returns bool [n]."""
    inside = np.ones(len(params), dtype=bool)
    for name, lo, hi in b.bounds:
        x = params[:, names.index(name)]
        inside &= (x > lo + TOL) & (x < hi - TOL) if open_ else (x >= lo - TOL) & (x <= hi + TOL)
    for name, codes in b.values:
        inside &= np.isin(params[:, names.index(name)], codes)
    return inside


@dataclass(frozen=True)
class Cells:
    """A region cut along every box boundary: C cells, each wholly inside the region.

    ``lo``, ``hi`` [C, Pn] numeric bounds; ``values`` [C, Pa] attribute codes; ``share`` [C]
    volume fractions (sum 1); ``owner`` [C] index of the first keep box holding the cell (-1
    without keep boxes)."""

    lo: np.ndarray
    hi: np.ndarray
    values: np.ndarray
    share: np.ndarray
    owner: np.ndarray


@dataclass(frozen=True)
class Region:
    """Points of ``space`` inside some ``keep`` box (all, if none) and inside no ``exclude``
    box (open). Keep boxes naming the same columns must not overlap (a mistaken interval list);
    boxes over different columns may (an L-shaped union). Raises ``PhylawError`` when a box
    names an unknown column or when nothing is left."""

    space: Space
    keep: tuple[Box, ...] = ()
    exclude: tuple[Box, ...] = ()

    def __post_init__(self) -> None:
        for b in self.keep:
            check_box(b, self.space, "keep")
        for b in self.exclude:
            check_box(b, self.space, "exclude")
        for a, b in itertools.combinations(self.keep, 2):
            if sorted(a.constrains()) == sorted(b.constrains()) and _overlap(a, b):
                raise PhylawError(
                    f"kept intervals overlap: {a.describe()} and {b.describe()}; "
                    "give disjoint intervals"
                )
        if not len(self.cells().share):
            raise PhylawError(f"the region excludes everything: {self.describe()}")

    def describe(self) -> str:
        """One line: the ranges, kept and excluded boxes."""
        text = self.space.describe()
        if self.keep:
            text += "; keep " + " U ".join(b.describe() for b in self.keep)
        if self.exclude:
            text += "; exclude " + " U ".join(b.describe() for b in self.exclude)
        return text

    def contains(self, params: np.ndarray) -> np.ndarray:
        """Which rows of ``params`` [n, P] (columns ``space.names``) lie in the region."""
        names = self.space.names
        inside = in_box(Box("", self.space.ranges, self.space.domains), names, params)
        if self.keep:
            inside &= np.any([in_box(b, names, params) for b in self.keep], axis=0)
        for b in self.exclude:
            inside &= ~in_box(b, names, params, open_=True)
        return inside

    @cached_property
    def _cells(self) -> Cells:
        return _cut(self)

    def cells(self) -> Cells:
        """The region's cells (computed once)."""
        return self._cells

    def bounding_box(self) -> Box:
        """The smallest box holding the region (numeric bounds and attribute values)."""
        c = self.cells()
        lo, hi = c.lo.min(0), c.hi.max(0)
        names = self.space.numeric
        bounds = tuple((n, float(a), float(b)) for n, a, b in zip(names, lo, hi, strict=True))
        values = tuple(
            (n, tuple(int(v) for v in np.unique(c.values[:, k])))
            for k, n in enumerate(self.space.attributes)
        )
        return Box("", bounds, values)

    def sample(self, key: int, index: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Parameters [n, P] and owning keep box [n] of points ``index`` of a ``count``-point
        uniform draw over the region (cells stratified by index, see the module docstring)."""
        c = self.cells()
        index = np.asarray(index, dtype=np.int64)
        u = uniforms(key, index, 1 + len(self.space.numeric))
        edges = np.cumsum(c.share)
        where = (strata(index, count, key) + u[:, 0]) / count
        k = np.minimum(np.searchsorted(edges, where, side="right"), len(edges) - 1)
        numeric = c.lo[k] + (c.hi[k] - c.lo[k]) * u[:, 1:]
        return np.concatenate([numeric, c.values[k].astype(np.float64)], axis=1), c.owner[k]


def strata(index: np.ndarray, count: int, key: int) -> np.ndarray:
    """The stratum [n] of points ``index`` of ``count``: ``(a i + b) mod count``, a coprime to
    count near 0.618 count (consecutive points land far apart), b from ``key``. int64."""
    if count > 2**31:
        raise PhylawError(f"a region split holds at most 2^31 videos, not {count}")
    a = max(1, round(0.6180339887498949 * count))
    while math.gcd(a, count) != 1:
        a += 1
    return (np.asarray(index, dtype=np.int64) * a + key % count) % count


def _overlap(a: Box, b: Box) -> bool:
    """True when two boxes over the same columns share a set of positive volume."""
    bb = {n: (lo, hi) for n, lo, hi in b.bounds}
    for n, lo, hi in a.bounds:
        if min(hi, bb[n][1]) - max(lo, bb[n][0]) <= TOL:
            return False
    bv = dict(b.values)
    return all(set(codes) & set(bv[n]) for n, codes in a.values)


def _cut(region: Region) -> Cells:
    """Cut ``region`` along every boundary of its boxes; keep the cells inside it."""
    space = region.space
    boxes = region.keep + region.exclude
    pieces = []
    for name, lo, hi in space.ranges:
        cuts = {lo, hi} | {x for b in boxes for n, a, z in b.bounds if n == name for x in (a, z)}
        cuts = sorted(x for x in cuts if lo <= x <= hi)
        pieces.append(list(zip(cuts[:-1], cuts[1:], strict=True)) or [(lo, hi)])
    pieces += [[(c,) for c in codes] for _, codes in space.domains]
    total = math.prod(len(p) for p in pieces)
    if total > MAX_CELLS:
        raise PhylawError(f"the region is cut into {total} cells (> {MAX_CELLS}); use fewer boxes")
    combos = list(itertools.product(*pieces))
    pn = len(space.numeric)
    lo = np.array([[p[0] for p in c[:pn]] for c in combos], dtype=np.float64).reshape(total, pn)
    hi = np.array([[p[-1] for p in c[:pn]] for c in combos], dtype=np.float64).reshape(total, pn)
    values = np.array([[p[0] for p in c[pn:]] for c in combos], dtype=np.int64).reshape(total, -1)
    centre = np.concatenate([(lo + hi) / 2, values.astype(np.float64)], axis=1)
    degenerate = np.array([a == z for _, a, z in space.ranges], dtype=bool)
    width = np.where(degenerate, 1.0, hi - lo)  # a fixed parameter counts once
    keep = region.contains(centre)
    names = space.names
    owner = np.full(total, -1, dtype=np.int64)
    for j, b in reversed(list(enumerate(region.keep))):
        owner[in_box(b, names, centre)] = j
    volume = np.prod(width, axis=1)[keep]
    share = volume / volume.sum() if len(volume) else volume
    return Cells(lo[keep], hi[keep], values[keep], share, owner[keep])

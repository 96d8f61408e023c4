"""Parameter spaces and named splits of the fundamental scenarios (paper Sec. 3.1, App. A.4).

A split is a pure function of ``(scenario, split, size, seed, ranges)``. Its *candidates* are
numbered 0..n-1; candidate i gets its parameters (and, in ``build``, its placement draws) from
that index alone, so any index range can be generated anywhere, in any order.

Ranges (``--ranges code``, the default) are those of the authors' code (reference section 5);
``--ranges paper`` uses the paper's Appendix A.4 instead, which differ for the ID radius
(paper [0.7, 1.5] for all scenarios; code [0.7, 1.4], and [0.5, 1.5] for collision) and the
collision OOD radius (paper [0.3, 0.6] U [1.5, 2.0]; code [0.3, 0.4] U [1.7, 2.0]).

Training sets are full Cartesian grids at the paper's size levels (uniform and parabola
30K / 300K / 3M; collision 28.2K / 329.5K / 3.41M before placement drops), or a seeded
subsample of the smallest level holding enough points. Uniform and collision grids are
``linspace`` grids; parabola's are sorted uniform draws, as in the authors' code (drawn here
from a fixed key, so they do not depend on the split seed). The ID evaluation set draws
continuous points in the ID box and rejects any that lies within ``ID_MIN_GRID_DISTANCE`` grid
spacings (max-norm, each axis in its own spacing) of a training point of any size level; OOD
sets draw each out-of-range coordinate from the low or the high OOD interval with equal
probability, level by level (uniform/parabola: r, v, both; collision: the paper's six).

Collision placement drops candidates (the balls must meet after 8 frames, inside the world), most
at high speeds and radii, so OOD levels end unequal. ``oversample`` evaluation splits draw each
level from its own stream until it holds its share of the requested count: every level has the
same size, at the price of more draws where placement rejects more (``level_candidates``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from phylaw import PhylawError
from phylaw.data.rng import derive_key, uniforms
from phylaw.physics.scenarios import get_scenario

SPLITS = ("train", "eval-id", "eval-ood")
Interval = tuple[float, float]
ID_MIN_GRID_DISTANCE = 0.25  # eval-id points are this many grid spacings from training points
LEVEL_SHIFT = 40  # oversampled splits: draw index = level << LEVEL_SHIFT | draw within level


@dataclass(frozen=True)
class Ranges:
    """In-distribution intervals and the two out-of-distribution intervals (low, high)."""

    r_id: Interval
    v_id: Interval
    r_ood: tuple[Interval, Interval]
    v_ood: tuple[Interval, Interval]

    def id_interval(self, param: str) -> Interval:
        return self.r_id if param.startswith("r") else self.v_id

    def ood_intervals(self, param: str) -> tuple[Interval, Interval]:
        return self.r_ood if param.startswith("r") else self.v_ood


_V_OOD = ((0.0, 0.8), (4.5, 6.0))
_ONE_BALL_CODE = Ranges((0.7, 1.4), (1.0, 4.0), ((0.3, 0.6), (1.5, 2.0)), _V_OOD)
_PAPER = Ranges((0.7, 1.5), (1.0, 4.0), ((0.3, 0.6), (1.5, 2.0)), _V_OOD)
RANGES: dict[str, dict[str, Ranges]] = {
    "code": {
        "uniform": _ONE_BALL_CODE,
        "parabola": _ONE_BALL_CODE,
        "collision": Ranges((0.5, 1.5), (1.0, 4.0), ((0.3, 0.4), (1.7, 2.0)), _V_OOD),
    },
    "paper": {"uniform": _PAPER, "parabola": _PAPER, "collision": _PAPER},
}


@dataclass(frozen=True)
class SizeLevel:
    """A paper training-set size: ``r_points`` radii x ``v_points`` speeds per ball."""

    name: str
    r_points: int
    v_points: int
    aliases: tuple[str, ...] = ()


_ONE_BALL_LEVELS = (
    SizeLevel("30K", 100, 300),
    SizeLevel("300K", 300, 1000),
    SizeLevel("3M", 1000, 3000),
)
LEVELS: dict[str, tuple[SizeLevel, ...]] = {
    "uniform": _ONE_BALL_LEVELS,
    "parabola": _ONE_BALL_LEVELS,
    "collision": (
        SizeLevel("28.2K", 8, 21, aliases=("30K",)),
        SizeLevel("329.5K", 14, 41, aliases=("300K",)),
        SizeLevel("3.41M", 26, 71, aliases=("3M", "3.4M")),
    ),
}

# Which parameters are out of range at each OOD level (paper App. A.4).
OOD_LEVELS: dict[str, dict[str, tuple[str, ...]]] = {
    "uniform": {"r": ("r",), "v": ("v",), "rv": ("r", "v")},
    "parabola": {"r": ("r",), "v": ("v",), "rv": ("r", "v")},
    "collision": {
        "r1": ("r1",),
        "v1": ("v1",),
        "r1r2": ("r1", "r2"),
        "v1v2": ("v1", "v2"),
        "r1v1": ("r1", "v1"),
        "all": ("r1", "r2", "v1", "v2"),
    },
}

# Default evaluation sizes: the paper's App. A.4 approximate counts.
DEFAULT_EVAL_SIZE = {
    "eval-id": {"uniform": 1050, "parabola": 1100, "collision": 2000},
    "eval-ood": {"uniform": 2400, "parabola": 2500, "collision": 4800},
}


def grid_axes(scenario: str, level: SizeLevel, ranges: Ranges) -> list[np.ndarray]:
    """The 1-D value lists whose Cartesian product is the training grid, one per parameter."""
    names = get_scenario(scenario).PARAM_NAMES
    if scenario == "parabola":  # sorted uniform draws, as the authors' code
        key = derive_key("parabola-grid", level.name, ranges)
        r = np.sort(
            np.interp(uniforms(key, np.arange(level.r_points), 1)[:, 0], [0, 1], ranges.r_id)
        )
        v = np.sort(
            np.interp(uniforms(key + 1, np.arange(level.v_points), 1)[:, 0], [0, 1], ranges.v_id)
        )
        lists = {"r": r, "v": v}
    else:
        lists = {
            "r": np.linspace(*ranges.r_id, level.r_points),
            "v": np.linspace(*ranges.v_id, level.v_points),
        }
    return [lists[name[0]] for name in names]


def grid_points(axes: list[np.ndarray], flat: np.ndarray) -> np.ndarray:
    """Grid points [n, P] at flat indices ``flat`` of the product of ``axes`` (C order)."""
    idx = np.unravel_index(np.asarray(flat, dtype=np.int64), [len(a) for a in axes])
    return np.stack([a[i] for a, i in zip(axes, idx, strict=True)], axis=-1)


def on_grid(axes: list[np.ndarray], params: np.ndarray) -> np.ndarray:
    """True where a point [n, P] equals a grid point exactly (every coordinate on its axis)."""
    hit = np.ones(len(params), dtype=bool)
    for p, axis in enumerate(axes):
        hit &= np.isin(params[:, p], axis)
    return hit


_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmM]?)\s*$")


def parse_count(text: str) -> int:
    """``"5000"``, ``"5K"``, ``"2.5M"`` -> a positive count; a clear error otherwise."""
    m = _SIZE_RE.match(str(text))
    value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()] if m else math.nan
    if not math.isfinite(value) or value < 1 or value != round(value):
        raise PhylawError(
            f"invalid size {text!r}: give a positive whole count such as 5000 or 5K, "
            "or a paper level (30K, 300K, 3M)"
        )
    return int(round(value))


@dataclass(frozen=True)
class SplitSpec:
    """A resolved split: what to generate, independent of how (workers, shards).

    ``level``: the training size level whose grid is used (train only); ``count``: number of
    candidates; ``subsample``: True when ``count`` is smaller than the level's grid.
    """

    scenario: str
    split: str
    size: str
    count: int
    seed: int
    ranges: str = "code"
    level: str | None = None
    subsample: bool = False
    oversample: bool = False  # eval splits: every level holds its share after placement drops

    @property
    def param_names(self) -> tuple[str, ...]:
        return get_scenario(self.scenario).PARAM_NAMES

    @property
    def range_table(self) -> Ranges:
        return RANGES[self.ranges][self.scenario]

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(OOD_LEVELS[self.scenario]) if self.split == "eval-ood" else ("id",)

    def key(self, purpose: str) -> int:
        return derive_key(self.scenario, self.split, self.size, self.seed, self.ranges, purpose)


def resolve_split(
    scenario: str,
    split: str,
    size: str | int | None,
    seed: int,
    ranges: str = "code",
    oversample: bool = False,
) -> SplitSpec:
    """Validate user input and resolve it to a ``SplitSpec`` (one clear error per mistake)."""
    get_scenario(scenario)
    if split not in SPLITS:
        raise PhylawError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if ranges not in RANGES:
        raise PhylawError(f"unknown ranges {ranges!r}; choose one of: {', '.join(RANGES)}")
    if not isinstance(seed, int) or seed < 0:
        raise PhylawError(f"invalid seed {seed!r}: give a non-negative integer")
    if oversample and split == "train":
        raise PhylawError("--oversample applies to evaluation splits (a training grid is fixed)")
    if split != "train":
        count = (
            DEFAULT_EVAL_SIZE[split][scenario] if size in (None, "default") else parse_count(size)
        )
        return SplitSpec(scenario, split, str(count), count, seed, ranges, oversample=oversample)
    levels = LEVELS[scenario]
    text = "30K" if size is None else str(size).strip()
    for lv in levels:
        if text.upper() in (lv.name.upper(), *(a.upper() for a in lv.aliases)):
            return SplitSpec(
                scenario, split, lv.name, level_size(scenario, lv), seed, ranges, lv.name, False
            )
    count = parse_count(text)
    for lv in levels:
        n = level_size(scenario, lv)
        if count <= n:
            return SplitSpec(scenario, split, str(count), count, seed, ranges, lv.name, count < n)
    raise PhylawError(
        f"size {count} is larger than the largest {scenario} grid ({levels[-1].name}); "
        "give a smaller count"
    )


def level_size(scenario: str, level: SizeLevel) -> int:
    """Number of grid points of a training size level (before placement drops)."""
    names = get_scenario(scenario).PARAM_NAMES
    return math.prod(level.r_points if n.startswith("r") else level.v_points for n in names)


def _level(spec: SplitSpec) -> SizeLevel:
    return next(lv for lv in LEVELS[spec.scenario] if lv.name == spec.level)


def train_selection(spec: SplitSpec) -> np.ndarray | None:
    """Sorted grid indices of a subsampled training split, or None for a full grid."""
    if not spec.subsample:
        return None
    axes = grid_axes(spec.scenario, _level(spec), spec.range_table)
    total = math.prod(len(a) for a in axes)
    rng = np.random.Generator(np.random.PCG64(spec.key("subsample")))
    return np.sort(rng.choice(total, size=spec.count, replace=False))


def candidate_params(
    spec: SplitSpec, start: int, stop: int, selection: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parameters [n, P] float64 and level codes [n] int8 of candidates ``start..stop-1``.

    ``selection``: the result of ``train_selection(spec)`` (pass it in to avoid recomputing).
    """
    index = np.arange(start, stop, dtype=np.int64)
    ranges = spec.range_table
    if spec.split == "train":
        axes = grid_axes(spec.scenario, _level(spec), ranges)
        flat = index if selection is None else selection[index]
        return grid_points(axes, flat), np.zeros(len(index), dtype=np.int8)
    names = spec.param_names
    draws = index if selection is None else selection[index]  # oversampled: own streams
    if spec.split == "eval-id":
        return _eval_id_params(spec, draws, names, ranges), np.zeros(len(index), dtype=np.int8)
    levels = OOD_LEVELS[spec.scenario]
    if selection is None:
        code = (index * len(levels) // spec.count).astype(np.int8)  # contiguous blocks per level
    else:
        code = (draws >> LEVEL_SHIFT).astype(np.int8)
    u = uniforms(spec.key("params"), draws, 2 * len(names))
    params = np.empty((len(index), len(names)))
    for p, name in enumerate(names):
        lo_hi = np.array(ranges.ood_intervals(name))  # [2 sides, 2]
        side = (u[:, 2 * p + 1] >= 0.5).astype(np.int64)
        ood = lo_hi[side, 0] + (lo_hi[side, 1] - lo_hi[side, 0]) * u[:, 2 * p]
        ind = np.interp(u[:, 2 * p], [0, 1], ranges.id_interval(name))
        is_ood = np.array([name in levels[lv] for lv in levels])[code]
        params[:, p] = np.where(is_ood, ood, ind)
    return params, code


def grid_distance(axes: list[np.ndarray], params: np.ndarray) -> np.ndarray:
    """Distance [n] of points [n, P] to the nearest point of the grid ``axes``, in grid
    spacings: max over parameters of |x - nearest axis value| / the axis's mean spacing."""
    out = np.zeros(len(params))
    for p, axis in enumerate(axes):
        spacing = (axis[-1] - axis[0]) / max(1, len(axis) - 1)
        k = np.clip(np.searchsorted(axis, params[:, p]), 1, len(axis) - 1)
        near = np.minimum(np.abs(params[:, p] - axis[k - 1]), np.abs(params[:, p] - axis[k]))
        out = np.maximum(out, near / spacing)
    return out


def _eval_id_params(spec, index, names, ranges, attempts: int = 64) -> np.ndarray:
    """Continuous ID draws; a draw within ``ID_MIN_GRID_DISTANCE`` spacings of a training grid
    point of any size level is replaced by the next draw of its stream (each level rejects
    about (2 * 0.25)^P of the draws: a quarter for one ball, 1/16 for collision)."""
    u = uniforms(spec.key("params"), index, attempts * len(names))
    grids = [grid_axes(spec.scenario, lv, ranges) for lv in LEVELS[spec.scenario]]
    params = np.empty((len(index), len(names)))
    todo = np.ones(len(index), dtype=bool)
    for a in range(attempts):
        for p, name in enumerate(names):
            params[todo, p] = np.interp(
                u[todo, a * len(names) + p], [0, 1], ranges.id_interval(name)
            )
        close = [grid_distance(axes, params) < ID_MIN_GRID_DISTANCE for axes in grids]
        todo &= np.any(close, axis=0)
        if not todo.any():
            return params
    raise AssertionError("ID draws kept landing near training grid points")  # p ~ 1e-15


def level_shares(spec: SplitSpec) -> np.ndarray:
    """Videos each level holds when nothing is dropped: the contiguous blocks of candidates,
    int64 [levels]."""
    n = len(spec.level_names)
    code = np.arange(spec.count) * n // spec.count
    return np.bincount(code, minlength=n).astype(np.int64)


def oversample_selection(spec: SplitSpec, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The draws of an oversampled evaluation split: ``(draw indices [count] int64, candidates
    drawn per level [levels])``. Level l draws from its own stream (draw index ``l <<
    LEVEL_SHIFT | j``) in order of j until ``level_shares(spec)[l]`` of them pass the
    scenario's placement rule; the split holds exactly those, level by level."""
    scen = get_scenario(spec.scenario)
    wanted = level_shares(spec)
    times = np.zeros(1)  # placement does not depend on the frame times
    chosen, drawn = [], np.zeros(len(wanted), dtype=np.int64)
    for lv, need in enumerate(wanted):
        got, j = [], 0
        while need and sum(len(g) for g in got) < need:
            draws = (lv << LEVEL_SHIFT) + np.arange(j, j + block, dtype=np.int64)
            params, _ = candidate_params(spec, 0, block, draws)
            u = uniforms(spec.key("placement"), draws, scen.NUM_UNIFORMS)
            valid = scen.simulate(params, u, times)[3]
            got.append(draws[valid])
            j += block
            if j > 1000 * max(need, 1):
                raise PhylawError(
                    f"placement rejects nearly every {spec.scenario} candidate of level "
                    f"{spec.level_names[lv]}; it cannot be oversampled"
                )
        picked = np.concatenate(got)[:need] if got else np.zeros(0, np.int64)
        chosen.append(picked)
        drawn[lv] = 0 if not need else int(picked[-1] - (lv << LEVEL_SHIFT)) + 1
    return np.concatenate(chosen), drawn


def bodies_table(scenario: str) -> dict:
    """The manifest's body table: which parameter columns are sizes (the scenario's
    ``SIZE_PARAMS``), each slot's shape and colour."""
    scen = get_scenario(scenario)
    sample = scen.bodies(np.ones((1, len(scen.PARAM_NAMES))))
    return {
        "size_columns": [scen.PARAM_NAMES.index(n) for n in scen.SIZE_PARAMS],
        "shape": sample.shape[0].tolist(),
        "colour": sample.colour[0].tolist(),
    }

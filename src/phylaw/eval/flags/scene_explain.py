"""The explanation of one colour's blobs by its units: the cost model and its exact minimax.

A *unit* is a dynamic body or a group of touching static bodies of one colour (``Units``: area,
perimeter in partial pixels, RMS principal extents and, for static units, the footprint), drawn
alone at t = 0 (``eval.scene_flags.scene_units``). In a frame, each blob of that colour
(``eval.scene_blobs``) must show a set of whole units, and each unit must be in one blob.

Costs (residuals; 1 is the tolerance). Giving blob j (area ``A``) the unit set S (areas summing
to ``a_S``, ``e_S`` partial pixels):

* area: ``(A - a_S) / tol``, ``tol = area_px + area_edge * e_S`` for a blob that is too large;
  a blob may lose more where edges are hidden: ``touch_edge * e_min`` next to another component
  (a body drawn later covers anti-aliased edge pixels) and ``min(merge_edge * (e_S - e_max),
  merge_cap * e_S)`` when it merges several units (same-colour edges overlap at contacts);
* shape, for a single unit: the largest change of an RMS principal extent ``sqrt(l_k)`` over
  ``(shape_px + shape_rel * sqrt(l_k) + shape_sub * max(1 - sqrt(l_k), 0)) * (1 + shape_touch
  * touch)`` (sub-pixel extents, i.e. thin parts, are noisier; a contact hides edge pixels);
* a static unit only in a blob that covers its footprint (static bodies never move);
* a blob of no unit ``A / (extra_px + extra_touch_px * touch)`` (specks, blends of three);
* a unit in no blob: ``a_u / tol_u``.

``explain`` finds the assignment whose largest residual is smallest, exactly: a dynamic programme
over the blobs whose state is the set of units used so far (3^N pairs of a set and a subset per
blob; N <= ``MAX_UNITS``), then a backtrack for the assignment that achieves it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from phylaw import PhylawError
from phylaw.eval.flags.scene_blobs import Blobs, principal

MAX_UNITS = 10  # units of one colour the exact explanation handles (3^N per blob)


@dataclass(frozen=True)
class SceneTolerances:
    """How far blobs may depart from the units they show (module docstring). Areas in px^2,
    extents in px, at the video's resolution; set on clean renders of seed 0 at 64-256 px
    (``benchmarks/bench_scene_flags.py --tune``), where the largest clean score is about half
    the threshold."""

    mask_alpha: float = 0.35  # membership from which a pixel joins a component
    area_px: float = 1.5  # area slack of any blob, px^2 ...
    area_edge: float = 0.03  # ... plus this per partial pixel of its units (anti-aliasing)
    touch_edge: float = 0.12  # a blob next to another colour may lose this per partial pixel
    merge_edge: float = 0.35  # several units in one blob may lose this per partial pixel of
    merge_cap: float = 0.06  # all but the largest unit, and at most this per partial pixel
    extra_px: float = 1.5  # a blob explained by no unit may have this area (specks) ...
    extra_touch_px: float = 3.0  # ... plus this next to another colour (blends of three)
    shape_px: float = 0.08  # an RMS principal extent may move by this, px ...
    shape_rel: float = 0.03  # ... plus this fraction of it ...
    shape_sub: float = 0.25  # ... plus this times how far it is below 1 px (thin parts) ...
    shape_touch: float = 1.0  # ... all times 1 + this next to another colour
    colour_residual: float = 48.0  # grey levels off every blend of the scene's colours ...
    colour_background: float = 48.0  # ... and from white make a pixel foreign
    colour_min_px: float = 10.0  # foreign pixels (after a 3x3 erosion) that make a region
    min_frames: int = 2  # frames in a row a frame must score > 1 for its flags to be raised


@dataclass(frozen=True)
class Units:
    """The units of one colour in one scene: ``area`` [N] px^2, ``edge`` [N] partial pixels,
    ``extent`` [N, 2] RMS principal extents ``sqrt(l1), sqrt(l2)`` in px, and ``place`` bool
    [S, H, W]: the footprints (grown by a pixel) of the first S units, the static ones, which
    never move."""

    area: np.ndarray
    edge: np.ndarray
    extent: np.ndarray
    place: np.ndarray


@functools.lru_cache(maxsize=MAX_UNITS + 1)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (mask, sub) with sub a subset of mask over n units, sorted by mask: ``(mask, sub,
    starts)``, with ``starts`` [2^n] the first pair of each mask (3^n pairs)."""
    masks = np.arange(1 << n)
    mask, sub = np.meshgrid(masks, masks, indexing="ij")
    ok = (sub & ~mask) == 0
    mask, sub = mask[ok], sub[ok]
    return mask, sub, np.searchsorted(mask, masks)


def _subset_table(values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` [N, ...] over every subset: [2^N, ...] (bit i of the index: unit i)."""
    n = len(values)
    bits = (np.arange(1 << n)[:, None] >> np.arange(n)[None]) & 1  # [2^N, N]
    return np.tensordot(bits.astype(np.float64), values, axes=(1, 0))


class Explanation(NamedTuple):
    """The minimax explanation of one colour's blobs [F, M] by its N units (``explain``)."""

    score: np.ndarray  # [F] largest residual of the best assignment (> 1: unexplained)
    assign: np.ndarray  # [F, M] unit mask given to each blob (0: none)
    missing: np.ndarray  # [F] mask of the units in no blob
    cost: np.ndarray  # [F, M] residual of each blob under its assignment
    area_res: np.ndarray  # [F, M] signed area residual (area over tolerance)
    shape_res: np.ndarray  # [F, M] shape residual (one-unit blobs)
    diff_px: np.ndarray  # [F, M] blob area minus its units' area, px^2
    fits: np.ndarray  # [F, M] bool: the blob has some unit's area and shape
    lost: np.ndarray  # [N] residual of each unit when it is in no blob


def shape_residuals(blobs: Blobs, units: Units, tol: SceneTolerances) -> np.ndarray:
    """Shape residual of each blob [F, M] against each unit alone, [F, M, N] (module docstring);
    inf for an empty blob."""
    extent = np.sqrt(principal(blobs.raw))[..., None, :]  # [F, M, 1, 2]
    ref = units.extent  # [N, 2]
    slack = tol.shape_px + tol.shape_rel * ref + tol.shape_sub * np.maximum(1.0 - ref, 0.0)
    widen = 1.0 + tol.shape_touch * blobs.touch[..., None, None]  # [F, M, 1, 1]
    d = (np.abs(extent - ref) / (slack * widen)).max(-1)
    return np.nan_to_num(d, nan=np.inf)


def area_residuals(blobs: Blobs, units: Units, tol: SceneTolerances) -> np.ndarray:
    """Area residual of each blob [F, M] against each unit alone, [F, M, N] (signed; a blob next
    to another component may lose ``touch_edge`` per partial pixel more)."""
    diff = blobs.area[..., None] - units.area
    tol_s = tol.area_px + tol.area_edge * units.edge
    loss = tol_s + tol.touch_edge * blobs.touch[..., None] * units.edge
    return diff / np.where(diff < 0, loss, tol_s)


def _costs(blobs: Blobs, units: Units, tol: SceneTolerances):
    """Residuals of giving each blob each unit subset: ``(cost, area_res, shape_res, diff_px)``,
    each [F, M, 2^N], and the area tolerance of each subset [2^N] (module docstring)."""
    n = len(units.area)
    area = blobs.area  # [F, M]
    bits = ((np.arange(1 << n)[:, None] >> np.arange(n)[None]) & 1).astype(bool)  # [2^N, N]
    a_s = _subset_table(units.area)  # [2^N]
    e_s = _subset_table(units.edge)
    e_max = np.where(bits, units.edge, -np.inf).max(-1, initial=-np.inf)
    e_min = np.where(bits, units.edge, np.inf).min(-1, initial=np.inf)
    e_max[0] = e_min[0] = 0.0
    tol_s = tol.area_px + tol.area_edge * e_s
    merge = np.minimum(tol.merge_edge * (e_s - e_max), tol.merge_cap * e_s)
    tol_loss = tol_s + merge + tol.touch_edge * blobs.touch[..., None] * e_min  # [F, M, 2^N]
    diff = area[..., None] - a_s
    area_res = diff / np.where(diff < 0, tol_loss, tol_s)
    area_res[..., 0] = 0.0
    shape_res = np.zeros_like(area_res)
    shape_res[..., 1 << np.arange(n)] = shape_residuals(blobs, units, tol)
    n_static = len(units.place)
    if n_static:  # a static unit can only be in a blob that covers its footprint
        off = (~blobs.on_place[..., :n_static]).astype(np.float64) @ bits[:, :n_static].T
        shape_res[off > 0] = np.inf
    cost = np.maximum(np.abs(area_res), shape_res)
    cost[..., 0] = area / (tol.extra_px + tol.extra_touch_px * blobs.touch)
    return cost, area_res, shape_res, diff, tol_s


def explain(blobs: Blobs, units: Units, tol: SceneTolerances) -> Explanation:
    """Minimax explanation of one colour's blobs [F, M] by its units (module docstring)."""
    n = len(units.area)
    if n > MAX_UNITS:
        raise PhylawError(f"scene_explain: {n} units of one colour, more than {MAX_UNITS}")
    f, m = blobs.area.shape
    cost, area_res, shape_res, diff, tol_s = _costs(blobs, units, tol)
    mask, sub, starts = _pairs(n)
    dp = np.full((f, 1 << n), np.inf)
    dp[:, 0] = 0.0
    history = []
    for j in range(m):  # dp[mask]: best max residual of blobs < j using exactly the units mask
        history.append(dp)
        dp = np.minimum.reduceat(np.maximum(dp[:, mask ^ sub], cost[:, j, sub]), starts, axis=1)
    lost = units.area / tol_s[1 << np.arange(n)]  # [N]
    masks = np.arange(1 << n)
    out = ((masks[:, None] >> np.arange(n)) & 1) == 0  # [2^N, N]: units outside each mask
    total = np.maximum(dp, np.where(out, lost, 0.0).max(-1, initial=0.0))
    used = np.argmin(total, axis=1)
    rows = np.arange(f)
    assign = np.zeros((f, m), dtype=np.int64)
    cur = used.copy()
    for j in range(m - 1, -1, -1):  # backtrack: the subset that achieved dp at each step
        valid = (masks[None] & ~cur[:, None]) == 0
        vals = np.maximum(history[j][rows[:, None], cur[:, None] ^ masks[None]], cost[:, j])
        assign[:, j] = np.argmin(np.where(valid, vals, np.inf), axis=1)
        cur = cur ^ assign[:, j]
    single = np.maximum(np.abs(area_res), shape_res)[..., 1 << np.arange(n)]  # [F, M, N]

    def pick(x):
        return np.take_along_axis(x, assign[..., None], -1)[..., 0]

    return Explanation(
        score=total[rows, used],
        assign=assign,
        missing=((1 << n) - 1) & ~used,
        cost=pick(cost),
        area_res=pick(area_res),
        shape_res=pick(shape_res),
        diff_px=pick(diff),
        fits=single.min(-1, initial=np.inf) <= 1.0,
        lost=lost,
    )

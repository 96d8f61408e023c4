"""Pixels of a combinatorial scene -> coloured blobs: soft colour membership, connected components
and their areas and second moments, per frame. The measurements of ``eval.scene_flags``.

Membership. PHYRE's scenes use few flat colours on white (``render.palette``: dynamic GRAY,
static BLACK, the PHYRE_RED ball; reference 3.1), and an anti-aliased pixel mixes at most two of
them with the background (a body's edge over white, two bodies' edges where they meet, a body
drawn over another's edge). Each pixel p is explained by the closest of these mixing models: a
*segment* white -> c_k or c_i -> c_j (least-squares ``a`` of ``p = (1 - a) u + a v``, clipped to
[0, 1]; v gets the weight ``a``, u unless white ``1 - a``) or a *triangle* white + c_i + c_j
(least-squares barycentric weights, used only where all are in [0, 1]). On a render the weights
are the drawn coverages, so a body's summed weight is its area in pixels (``render.coverage``
keeps areas exact), also where it meets a body of another colour. PHYRE's gray is a pale blue,
18 grey levels off the white -> black line, which is what tells a pale gray edge from a faint
black one; the distance to the closest model (the residual) marks colours the scene does not
have.

Components. A colour's pixels with weight >= ``mask_alpha`` are grouped into 8-connected
components within each frame (``scipy.ndimage.label``); pixels of lower weight within one pixel
of a component join it (half to each of two, if two are that near), so a component's summed
weight is the area of what it shows, edge included. Per component: the raw moments of the weight
(mass, first and second moments in index coordinates (col, row), ``render.geometry``), the
number of partial pixels (weight in (0.02, 0.98): about its perimeter in pixels) and whether it
touches another component (of another colour, or of its own across a faint gap). Pixels that no
segment explains (a colour the scene does not have) are counted per frame (``foreign_counts``).

Raw moments add up over components and layers, so a body drawn alone (the reference of
``eval.scene_flags``) and a component of a video are measured the same way. ``principal``
turns raw moments into the principal second moments, rotation invariant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from phylaw.physics.state import Colour
from phylaw.render.palette import BACKGROUND, PALETTE

SCENE_COLOURS = (Colour.GRAY, Colour.BLACK, Colour.PHYRE_RED)  # PHYRE's colours in phylaw
EDGE_RANGE = (0.02, 0.98)  # weights of partial (edge) pixels
CHUNK_PX = 1 << 20  # pixels unmixed at once (bounds the float temporaries)
_SLAB = np.zeros((3, 3, 3), dtype=bool)
_SLAB[1] = True  # 8-connectivity within a frame, never across frames


@dataclass(frozen=True)
class Blobs:
    """Components of one colour in F frames, largest first, padded to M slots.

    ``raw`` float64 [F, M, 6] raw moments of the weight (m, m_c, m_r, m_cc, m_rr, m_cr; index
    coordinates), 0 in empty slots; ``edge`` float64 [F, M] partial pixels; ``touch`` bool
    [F, M]: next to another component; ``on_place`` bool [F, M, U]: it covers a pixel of each
    of U given places (static bodies' footprints); ``count`` int64 [F] components in the frame.
    When a frame has more than M components, the last slot holds all the smallest together.
    """

    raw: np.ndarray
    edge: np.ndarray
    touch: np.ndarray
    on_place: np.ndarray
    count: np.ndarray

    @property
    def area(self) -> np.ndarray:
        """Soft area in px^2, [F, M] (0 in empty slots)."""
        return self.raw[..., 0]


def memberships(
    frames: np.ndarray, colours: Sequence[Colour] = SCENE_COLOURS
) -> tuple[np.ndarray, np.ndarray]:
    """Soft membership of every pixel in each colour, float32 [K, F, H, W], and the distance of
    each pixel from its closest segment (its residual, grey levels), float32 [F, H, W], for
    uint8 frames [F, H, W, 3] (see the module docstring). Pure white pixels weigh 0."""
    f, h, w, _ = frames.shape
    ends = [np.asarray(BACKGROUND, np.float32)]
    ends += [np.asarray(PALETTE[Colour(int(c))], np.float32) for c in colours]
    segs = [(0, k) for k in range(1, len(ends))]  # (u, v) indices into ends; 0 is white
    segs += [(i, j) for i in range(1, len(ends)) for j in range(i + 1, len(ends))]
    tris = [(i, j) for i in range(1, len(ends)) for j in range(i + 1, len(ends))]
    out = np.zeros((len(colours), f * h * w), dtype=np.float32)
    resid = np.zeros(f * h * w, dtype=np.float32)
    flat = frames.reshape(-1, 3)
    idx = np.flatnonzero((flat != 255).any(-1))
    for i0 in range(0, len(idx), CHUNK_PX):
        sel = idx[i0 : i0 + CHUNK_PX]
        p = flat[sel].astype(np.float32)  # [n, 3]
        best = np.full(len(sel), np.inf, dtype=np.float32)
        best_a = np.zeros(len(sel), dtype=np.float32)
        best_s = np.zeros(len(sel), dtype=np.int8)
        for s, (u, v) in enumerate(segs):
            e = ends[v] - ends[u]
            q = p - ends[u]
            dot = q @ e
            e2 = float(e @ e)
            a = np.clip(dot / e2, 0.0, 1.0)
            d2 = (q * q).sum(-1) - a * (2.0 * dot - a * e2)
            closer = d2 < best
            best[closer], best_a[closer], best_s[closer] = d2[closer], a[closer], s
        tri = np.full(len(sel), -1, dtype=np.int8)
        tri_a = np.zeros((len(sel), 2), dtype=np.float32)
        for s, (i, j) in enumerate(tris):  # white + two colours, inside the triangle only
            e = np.stack([ends[i] - ends[0], ends[j] - ends[0]], -1)  # [3, 2]
            a = (p - ends[0]) @ np.linalg.pinv(e).T  # least squares [n, 2]
            d = p - ends[0] - a @ e.T
            d2 = (d * d).sum(-1)
            closer = (d2 < best) & (a >= 0).all(-1) & (a.sum(-1) <= 1)
            best[closer], tri[closer], tri_a[closer] = d2[closer], s, a[closer]
        resid[sel] = np.sqrt(np.maximum(best, 0.0))
        for s, (u, v) in enumerate(segs):
            on = (best_s == s) & (tri < 0)
            out[v - 1, sel[on]] = best_a[on]
            if u > 0:
                out[u - 1, sel[on]] = 1.0 - best_a[on]
        for s, (i, j) in enumerate(tris):
            on = tri == s
            out[i - 1, sel[on]] = tri_a[on, 0]
            out[j - 1, sel[on]] = tri_a[on, 1]
    return out.reshape(len(colours), f, h, w), resid.reshape(f, h, w)


def foreign_counts(
    frames: np.ndarray, resid: np.ndarray, residual_tol: float, background_tol: float
) -> np.ndarray:
    """Pixels per frame that no blend of the scene's colours explains: farther than
    ``residual_tol`` grey levels from every segment and ``background_tol`` from white. Returns
    int64 [F, 2]: those left after a 3x3 erosion (a solid region of a foreign colour; the
    erosion removes isolated blends of three colours where bodies meet), and all of them."""
    white = np.asarray(BACKGROUND, np.float32)
    out = np.zeros((len(frames), 2), dtype=np.int64)
    odd = resid > residual_tol
    if odd.any():
        odd &= np.linalg.norm(frames.astype(np.float32) - white, axis=-1) > background_tol
        out[:, 0] = ndimage.minimum_filter(odd, size=(1, 3, 3)).reshape(len(frames), -1).sum(1)
        out[:, 1] = odd.reshape(len(frames), -1).sum(1)
    return out


def _frame_of(labels: np.ndarray, num: int) -> np.ndarray:
    """Frame of each label 1..num (labels are numbered in scan order, frame by frame), [num]."""
    last = np.maximum.accumulate(labels.reshape(len(labels), -1).max(1))  # [F]
    return np.searchsorted(last, np.arange(1, num + 1), side="left")


def components(
    weight: np.ndarray,
    mask_alpha: float,
    near: np.ndarray | None = None,
    places: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Components of one colour's membership ``weight`` [F, H, W].

    ``near`` bool [F, H, W]: pixels next to other colours' components (None: nowhere);
    ``places`` bool [U, H, W] (None: none). Returns ``frame`` int64 [L] (frame of each
    component), ``raw`` float64 [L, 6] raw moments, ``edge`` float64 [L] partial pixels,
    ``touch`` bool [L] (a pixel of it in ``near``, or a faint pixel shared with another
    component) and ``on`` bool [L, U] (it covers a pixel of place u).
    """
    f, h, w = weight.shape
    labels, num = ndimage.label(weight >= mask_alpha, structure=_SLAB)
    n_places = 0 if places is None else len(places)
    if num == 0:
        empty = np.zeros(0, np.int64), np.zeros((0, 6)), np.zeros(0), np.zeros(0, bool)
        return (*empty, np.zeros((0, n_places), bool))
    grown = ndimage.maximum_filter(labels, size=(1, 3, 3))
    low = ndimage.minimum_filter(np.where(labels > 0, labels, num + 1), size=(1, 3, 3))
    faint = ((labels == 0) & (weight > 0) & (grown > 0)).reshape(-1)
    shared = faint & (grown != low).reshape(-1)  # next to two components: half to each
    sure = faint & ~shared
    flat = labels.reshape(-1)
    on = np.flatnonzero(flat)
    pix = np.concatenate([on, np.flatnonzero(sure), np.repeat(np.flatnonzero(shared), 2)])
    lab = np.concatenate(
        [
            flat[on],
            grown.reshape(-1)[sure],
            np.stack([grown.reshape(-1)[shared], low.reshape(-1)[shared]], -1).reshape(-1),
        ]
    )
    wt = weight.reshape(-1)[pix].astype(np.float64)
    wt[len(pix) - 2 * int(shared.sum()) :] *= 0.5
    col = (pix % w).astype(np.float64)
    row = ((pix // w) % h).astype(np.float64)
    n = num + 1
    raw = np.stack(
        [
            np.bincount(lab, wt, n),
            np.bincount(lab, wt * col, n),
            np.bincount(lab, wt * row, n),
            np.bincount(lab, wt * col * col, n),
            np.bincount(lab, wt * row * row, n),
            np.bincount(lab, wt * col * row, n),
        ],
        axis=-1,
    )[1:]
    partial = (wt > EDGE_RANGE[0]) & (wt < EDGE_RANGE[1])
    edge = np.bincount(lab, partial.astype(np.float64), n)[1:]
    touch = np.zeros(n, dtype=bool)
    touch[grown.reshape(-1)[shared]] = touch[low.reshape(-1)[shared]] = True
    if near is not None:
        touch |= np.bincount(lab, near.reshape(-1)[pix].astype(np.float64), n) > 0
    touch = touch[1:]
    on = np.zeros((num, n_places), dtype=bool)
    for u in range(n_places):
        inside = places[u].reshape(-1)[pix % (h * w)].astype(np.float64)
        on[:, u] = np.bincount(lab, inside, n)[1:] > 0
    return _frame_of(labels.reshape(f, h, w), num), raw, edge, touch, on


def scene_blobs(
    frames: np.ndarray,
    colours: Sequence[Colour] = SCENE_COLOURS,
    *,
    places: Sequence[np.ndarray | None] | None = None,
    mask_alpha: float = 0.35,
    max_blobs: int = 12,
    colour_residual: float = 48.0,
    colour_background: float = 48.0,
) -> tuple[list[Blobs], np.ndarray]:
    """Blobs of each colour in uint8 frames [F, H, W, 3]: one ``Blobs`` per colour, padded to
    ``max_blobs`` slots, and the foreign pixels of each frame, [F, 2] (``foreign_counts``).
    ``places``: per colour, bool [U, H, W] footprints to test blobs against, or None."""
    f = frames.shape[0]
    weights, resid = memberships(frames, colours)  # [K, F, H, W], [F, H, W]
    grown = [ndimage.maximum_filter(wk >= mask_alpha, size=(1, 3, 3)) for wk in weights]
    out = []
    for k in range(len(colours)):
        near = np.zeros_like(grown[k])
        for k2 in range(len(colours)):
            if k2 != k:
                near |= grown[k2]
        place = None if places is None else places[k]
        frame, raw, edge, touch, on = components(weights[k], mask_alpha, near, place)
        order = np.lexsort((-raw[:, 0], frame))  # by frame, largest first
        frame, raw, edge, touch, on = (x[order] for x in (frame, raw, edge, touch, on))
        count = np.bincount(frame, minlength=f)
        rank = np.arange(len(frame)) - np.repeat(np.cumsum(count) - count, count)
        slot = np.minimum(rank, max_blobs - 1)  # the smallest share the last slot
        b = Blobs(
            np.zeros((f, max_blobs, 6)),
            np.zeros((f, max_blobs)),
            np.zeros((f, max_blobs), dtype=bool),
            np.zeros((f, max_blobs, on.shape[1]), dtype=bool),
            count.astype(np.int64),
        )
        np.add.at(b.raw, (frame, slot), raw)
        np.add.at(b.edge, (frame, slot), edge)
        np.logical_or.at(b.touch, (frame, slot), touch)
        np.logical_or.at(b.on_place, (frame, slot), on)
        out.append(b)
    return out, foreign_counts(frames, resid, colour_residual, colour_background)


def principal(raw: np.ndarray) -> np.ndarray:
    """Principal second moments of raw moments [..., 6]: ``(l1, l2)`` [..., 2] in px^2 with
    l1 >= l2 (variances along the principal axes; a disc of radius r gives r^2 / 4 twice, a bar
    of length L and width d gives L^2 / 12 and d^2 / 12). NaN where the mass is 0."""
    m = raw[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        mc, mr = raw[..., 1] / m, raw[..., 2] / m
        cxx = raw[..., 3] / m - mc * mc
        cyy = raw[..., 4] / m - mr * mr
        cxy = raw[..., 5] / m - mc * mr
    half, diff = (cxx + cyy) / 2, np.hypot((cxx - cyy) / 2, cxy)
    return np.stack([half + diff, np.maximum(half - diff, 0.0)], axis=-1)

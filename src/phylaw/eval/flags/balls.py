"""Automatic physical-plausibility flags: the paper's human "abnormal" judgement from pixels.

The paper (Sec. 4.1-4.2, Table 2, Fig. 20) has people label a generated video "abnormal" when it
looks physically implausible; most such cases are objects that disappear or lose their shape.
Here each kind of abnormality is a flag computed from the parsed states (``eval.parse``: one
pass over the pixels gives positions, areas, blob counts, moments and the foreign-colour
count). Only the generated frames (index >= ``num_cond_frames``) are judged; the condition
frames (ground truth) give each object's reference appearance.

=================  =============================================================================
flag               a generated frame is flagged when
=================  =============================================================================
disappears         an object of the reference is gone, and neither its motion (extrapolated from
                   its last sightings) takes it over the border it was moving towards, nor is it
                   hidden behind an object it touches
appears            an object becomes visible away from the border without having been there (in
                   the previous frame, or in the reference) and not out from behind another
count_changes      its colour shows more separate blobs than in the reference (a duplicate, a new
                   object or a break-up), for ``min_frames`` frames; fewer where two were expected
size_changes       its equivalent radius (area) departs from the reference by more than
                   ``size_edge_px + size_rel * r``, for ``min_frames`` frames. At a contact (where
                   the other ball may occlude it) and at the border (where it is cut off) it may
                   only shrink, at the border only while moving towards it
shape_changes      its normalised second moments ``D = 4 pi cov / area`` (identity for a disc,
                   ``pi/3`` I for a square, ``diag(a/b, b/a)`` for an ellipse) move by more than
                   ``shape`` (Frobenius) from the reference, for ``min_frames`` frames
colour_changes     pixels that are neither background nor a blend of the expected colours (with
                   white or with each other) form a solid region of ``colour_min_px`` (after a
                   one-pixel erosion, which removes codec fringes), for ``min_frames`` frames; or
                   an object vanishes where another colour now stands
teleports          its position departs from constant-velocity motion of the two previous frames
                   by more than ``jump_world_units`` (no force here moves a body that much in
                   0.1 s; contacts, where a collision may change the velocity, are exempt)
=================  =============================================================================

Size, shape and jumps are judged only where the object is whole (in view, or touching the border
with its full reference area, as codec ringing makes balls a few pixels inside do) and not in
contact; a contact is a distance below ``r_i + r_j + contact_margin_px`` now, or a straight-line
approach that reaches it between the previous frame and this one. Velocities come from
contact-free steps; right after a contact, before the object has been seen twice, its speed is
bounded by what an elastic collision can give (``|v_i| + 2 max_j |v_i - v_j|``). The tolerances
(``PlausibilityTolerances``) were set on clean ground truth of one seed (``benchmarks/
bench_plausibility.py --tune``; mp4 codec, OOD sizes and speeds included); recall and false
positives are measured on another seed (``benchmarks/bench_plausibility.py``).

Known limits. The condition frames are the reference: an object never whole in them has no size
or shape reference (only its disappearance, jumps and colour are judged). A defect confined to
frames where the object is cut by the border or in contact is judged loosely (growth only) or not
at all, and size, shape, colour and count glitches shorter than ``min_frames`` frames are missed.
One body per colour (``eval.parse``): two same-coloured bodies are one parsed object, told apart
only by the blob count. Jumps are departures from constant velocity: a scene with strong forces
(accelerations above ``jump_world_units`` per frame squared, 20 world units/s^2 at 0.1 s) needs a
larger tolerance. Tuned at 128 px; re-run the tuning for other resolutions or codecs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from phylaw import PhylawError
from phylaw.eval.flags.motion import (
    Motion,
    ffill,
    motion,
    nanreduce,
    occupied,
    shift,
    sustained,
    take,
)
from phylaw.eval.parse import ParsedStates, parse_videos
from phylaw.eval.tablecache import cached_table
from phylaw.physics.state import Colour
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import BACKGROUND, PALETTE

FLAGS = (
    "disappears",
    "appears",
    "count_changes",
    "size_changes",
    "shape_changes",
    "colour_changes",
    "teleports",
)
_F = {name: i for i, name in enumerate(FLAGS)}
BORDER_NORMALS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])  # l, r, b, t


@dataclass(frozen=True)
class PlausibilityTolerances:
    """How far a generated video may depart from its condition frames before a flag is raised.

    Set on clean ground truth (seed 0: train, eval-id and eval-ood of all three scenarios) at
    128x128, rendered and through libx264 crf 25, where balls of radius 0.3 world units (3.8 px)
    are the noisiest objects; the largest clean score of each flag there is at most ~0.7 of its
    threshold (``benchmarks/bench_plausibility.py --tune``).
    """

    size_edge_px: float = 0.3  # an outline may move by this much (codec, anti-aliasing), px
    size_rel: float = 0.03  # ... plus this fraction of the reference radius
    shape: float = 0.08  # Frobenius change of D = 4 pi cov / area (a disc has D = I) ...
    shape_edge_px: float = 0.8  # ... plus this over the reference radius in px (small = noisy)
    jump_world_units: float = 0.2  # departure from constant velocity between two frames
    colour_residual: float = 48.0  # grey levels from every expected-colour line: foreign
    colour_background: float = 48.0  # grey levels from white below which a pixel is background
    solid_alpha: float = 0.5  # paler blends of a colour with white are outline, not body
    colour_min_px: float = 10.0  # foreign pixels left after a 1-px erosion that make a region
    contact_margin_px: float = 2.0  # objects nearer than r_i + r_j + this are in contact
    border_margin_px: float = 1.0  # a predicted disc this near the border may be leaving
    min_frames: int = 2  # frames in a row a size/shape/colour/count violation must last


# ------------------------------------------------------------------------------ foreign colours
@functools.lru_cache(maxsize=4)
def foreign_table(
    colours: tuple[Colour, ...], residual: float, background: float, solid_alpha: float
) -> np.ndarray:
    """`_foreign_table`, built once per machine and then read from the table cache
    (`eval.tablecache`)."""
    args = (tuple(colours), residual, background, solid_alpha)
    return cached_table(_foreign_table, *args, shape=(256**3,), dtype=bool)


def _foreign_table(
    colours: tuple[Colour, ...], residual: float, background: float, solid_alpha: float
) -> np.ndarray:
    """Which 24-bit colours no expected colour explains as a solid body, bool [2**24], indexed
    like ``parse.membership_tables``: ``(255 - R) + 256 (255 - G) + 65536 (255 - B)``.

    A colour is foreign when it is farther than ``background`` grey levels from white and is not
    within ``residual`` of a solid part of an expected colour: of the segment from
    ``w + solid_alpha (c_k - w)`` to c_k (w white), or of c_i -> c_j (two balls blended where
    they touch). Faint blends of an expected colour with white are foreign too: they belong to
    an anti-aliased outline, one or two pixels wide, which the parser's one-pixel erosion
    removes (``ParsedStates.foreign_px``), so a region of them is a faded or pale object (e.g.
    PHYRE's grey is a faint blue).
    """
    w = np.asarray(BACKGROUND, np.float32)
    ends = [np.asarray(PALETTE[c], np.float32) for c in colours]
    segs = [(w + solid_alpha * (c - w), c) for c in ends]
    segs += [(ends[i], ends[j]) for i in range(len(ends)) for j in range(i + 1, len(ends))]
    v = 255.0 - np.arange(256, dtype=np.float32)  # the table index counts down from white
    out = np.zeros((256, 256, 256), dtype=bool)  # [255 - B, 255 - G, 255 - R]
    slab = 16

    def sep(x: list[np.ndarray], b0: int) -> np.ndarray:  # per-channel terms -> [slab, G, R]
        return x[2][b0 : b0 + slab, None, None] + x[1][None, :, None] + x[0][None, None, :]

    for b0 in range(0, 256, slab):
        best = np.full((min(slab, 256 - b0), 256, 256), np.inf, dtype=np.float32)
        for p0, p1 in segs:  # squared distance to the segment, separable per channel
            e = p1 - p0
            e2 = max(float(e @ e), 1e-6)
            dot = sep([e[ch] * (v - p0[ch]) for ch in range(3)], b0)  # (p - p0) . e
            qq = sep([(v - p0[ch]) ** 2 for ch in range(3)], b0)  # |p - p0|^2
            t = np.clip(dot / e2, 0.0, 1.0)
            np.minimum(best, qq - t * (2.0 * dot - t * e2), out=best)
        far = sep([(v - w[ch]) ** 2 for ch in range(3)], b0) > background**2
        out[b0 : b0 + slab] = far & (best > residual**2)
    return out.reshape(-1)


def parse_for_flags(
    videos: np.ndarray,
    colours: Sequence[Colour],
    grid: PixelGrid | None = None,
    tolerances: PlausibilityTolerances = PlausibilityTolerances(),
    **kw,
) -> ParsedStates:
    """``parse_videos`` (``kw`` passed on) with the foreign-colour count the
    ``colour_changes`` flag needs."""
    key = tuple(Colour(int(c)) for c in colours)
    t = tolerances
    table = foreign_table(key, t.colour_residual, t.colour_background, t.solid_alpha)
    return parse_videos(videos, key, grid, foreign=table, **kw)


# ------------------------------------------------------------------------------ the flags
class _Context(NamedTuple):
    """What every flag reads: the parsed states, the reference appearance from the condition
    frames and the kinematics (arrays [B, T, K] unless stated)."""

    parsed: ParsedStates
    tol: PlausibilityTolerances
    c: int  # condition frames
    ppw: float  # pixels per world unit (``parsed.grid``)
    gen: np.ndarray  # [1, T, 1] generated frames
    ref_area: np.ndarray  # [B, K] median area in the condition frames where in view
    ref_ok: np.ndarray  # [B, K] a reference exists
    ref_r_px: np.ndarray  # [B, K]
    radius: np.ndarray  # [B, K] world units, for contacts and borders
    present: np.ndarray  # [B, K] the object is in the scene
    expected: np.ndarray | None  # [B, K] objects per colour, if given
    m: Motion


def _context(parsed, num_cond_frames, expected_objects, tol) -> _Context:
    area, vis, inv = parsed.area_px, parsed.visible, parsed.in_view
    b, t, k = vis.shape
    c = int(num_cond_frames)
    if not 1 <= c < t:
        raise PhylawError(f"num_cond_frames must be in [1, {t - 1}] for {t} frames, got {c}")
    ppw = float(parsed.grid.world_len_to_px(1.0))
    ref_area = nanreduce(np.nanmedian, np.where(inv[:, :c], area[:, :c], np.nan))  # [B, K]
    any_size = nanreduce(np.nanmax, np.where(vis, parsed.size, np.nan))
    ref_ok = np.isfinite(ref_area)
    ref_r_px = np.sqrt(ref_area / np.pi)
    radius = np.where(ref_ok, ref_r_px / ppw, any_size)
    present = vis[:, :c].any(1)
    expected = None
    if expected_objects is not None:
        expected = np.broadcast_to(np.asarray(expected_objects, dtype=np.int64), (b, k))
        present = present | (expected > 0)
    world = parsed.grid.world_size
    m = motion(parsed, radius, tol.contact_margin_px / ppw, tol.border_margin_px / ppw, world)
    gen = (np.arange(t) >= c)[None, :, None]
    return _Context(
        parsed, tol, c, ppw, gen, ref_area, ref_ok, ref_r_px, radius, present, expected, m
    )


def _disappears(x: _Context, videos: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Gone, not leaving through the border, not behind an object that covers where it should
    be now and was in contact with it (or already covering it) in the last frame. Returns the
    ``disappears`` and the vanish-into-another-colour (``colour_changes``) scores [B, T]."""
    p, m = x.parsed, x.m
    b, t, k = p.visible.shape
    behind = np.zeros((b, t, k), dtype=bool)
    prev_centre = shift(m.centre, 1, np.nan)
    for j in range(k):
        pj, rj = p.pos[:, :, j : j + 1], x.radius[:, None, j : j + 1]
        covers = np.linalg.norm(m.pred - pj, axis=-1) < rj + m.margin  # [B, T, K]
        was_near = np.linalg.norm(prev_centre - shift(pj, 1, np.nan), axis=-1)
        was_near = np.nan_to_num(was_near, nan=np.inf) < rj + x.radius[:, None] + m.margin
        behind |= p.visible[:, :, j : j + 1] & covers & was_near
    gone = x.gen & x.present[:, None] & ~p.visible & ~m.leaving & ~behind
    vanish = gone & shift(~gone, 1, True)  # first frame of each absence
    recolour = np.zeros((b, t))
    if videos is not None:  # something else stands where it vanished: a colour change
        world = p.grid.world_size
        taken = occupied(videos, m.pred, x.ppw, world, x.tol.colour_background) & vanish
        recolour = np.where(taken.any(-1), np.inf, 0.0)
        gone &= ~(take(taken[..., None], ffill(vanish))[..., 0] > 0)  # that whole absence
    return np.where(gone.any(-1), np.inf, 0.0), recolour


def _appears(x: _Context) -> np.ndarray:
    """Visible from nothing, away from the border and from other objects."""
    p = x.parsed
    popped = x.gen & p.visible & p.in_view & ~shift(p.visible, 1, False) & ~x.m.touch
    return np.where(popped.any(-1), np.inf, 0.0)


def _count_changes(x: _Context) -> np.ndarray:
    """More blobs than the reference for min_frames frames (fewer where 2+ are expected)."""
    p = x.parsed
    cnt, vis = p.count, p.visible
    if x.expected is not None:
        ref_cnt = x.expected
    else:
        med = nanreduce(np.nanmedian, np.where(vis[:, : x.c], cnt[:, : x.c], np.nan))
        ref_cnt = np.rint(np.nan_to_num(med)).astype(np.int64)
    ref_cnt = ref_cnt[:, None]
    more = vis & (cnt > np.maximum(ref_cnt, 1))  # overlapping discs never split a disc
    fewer = vis & p.in_view & (ref_cnt >= 2) & (cnt < ref_cnt) & ~x.m.touch
    odd = sustained((more | fewer).astype(np.float64), x.tol.min_frames) * x.gen
    return np.where(odd.max(-1) > 0, np.inf, 0.0)


def _size_and_shape(x: _Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Size and shape scores [B, T], and where each object is whole [B, T, K]."""
    p, tol, m = x.parsed, x.tol, x.m
    ref = x.ref_ok[:, None]
    size_tol = tol.size_edge_px + tol.size_rel * x.ref_r_px[:, None]  # [B, 1, K]
    dev = (np.sqrt(p.area_px / np.pi) - x.ref_r_px[:, None]) / size_tol
    # An object on the border with (nearly) its full reference area is whole: codec ringing
    # often puts a trace of colour on the edge pixels of a ball a few pixels inside.
    whole = p.in_view | (p.visible & (np.abs(dev) <= 0.5))
    clear = x.gen & whole & ~m.near & ref
    cut = x.gen & p.visible & ~whole & ref  # cut by the border
    occl = x.gen & p.visible & m.near & ~cut & ref  # at a contact: may be partly hidden
    size = np.where(clear, np.abs(dev), 0.0)
    size = np.where(cut | occl, np.maximum(dev, 0.0), size)
    size = np.where(cut & ~m.moving_out, np.abs(dev), size)
    desc = p.shape_descriptor()
    cond_in = p.in_view[:, : x.c, :, None]
    ref_desc = nanreduce(np.nanmedian, np.where(cond_in, desc[:, : x.c], np.nan))
    shape_tol = tol.shape + tol.shape_edge_px / x.ref_r_px[:, None]
    shape = np.linalg.norm(desc - ref_desc[:, None], axis=-1) / shape_tol
    shape = np.where(clear, shape, 0.0)
    sizes = sustained(size, tol.min_frames).max(-1)
    return sizes, sustained(shape, tol.min_frames).max(-1), whole


def _foreign_colour(x: _Context) -> np.ndarray:
    """A solid region of a colour nobody expects (needs ``parsed.foreign_px``)."""
    foreign = x.parsed.foreign_px.astype(np.float64)
    base = foreign[:, : x.c].max(1, keepdims=True)
    colour = np.maximum(foreign - base, 0.0) / x.tol.colour_min_px * x.gen[..., 0]
    return sustained(colour, x.tol.min_frames)


def _teleports(x: _Context, whole: np.ndarray) -> np.ndarray:
    """Departure from constant velocity, contacts exempt."""
    m = x.m
    jerk = np.linalg.norm(m.step - shift(m.step, 1, np.nan), axis=-1) / x.tol.jump_world_units
    calm = whole & shift(whole, 1, False) & shift(whole, 2, False)
    calm &= ~m.near & ~shift(m.near, 1, True) & ~shift(m.touch, 2, True)
    return np.where(x.gen & calm, np.nan_to_num(jerk), 0.0).max(-1)


def plausibility_scores(
    parsed: ParsedStates,
    videos: np.ndarray | None = None,
    *,
    num_cond_frames: int = 3,
    expected_objects: np.ndarray | Sequence[int] | None = None,
    tolerances: PlausibilityTolerances = PlausibilityTolerances(),
) -> np.ndarray:
    """Evidence for each flag in each frame, float64 [B, T, len(FLAGS)]; a flag is raised in a
    frame where its score exceeds 1.

    Continuous checks score ``statistic / tolerance`` (already held for ``min_frames`` frames
    where the table in the module docstring says so); yes/no checks score inf or 0. Condition
    frames score 0. ``parsed``: ``parse_for_flags(videos, colours, grid)`` (without
    ``foreign_px`` the foreign-colour part of ``colour_changes`` is not judged); ``videos``
    uint8 [B, T, H, W, 3], needed only to see what stands where an object vanished;
    ``expected_objects`` [K] or [B, K]: objects of each colour in the scene (default: as many
    blobs as the condition frames show; a colour with 0 may still enter through the border).
    """
    b, t, _ = parsed.visible.shape
    if videos is not None and tuple(videos.shape[:2]) != (b, t):
        raise PhylawError(f"videos {videos.shape[:2]} do not match the parsed states {(b, t)}")
    x = _context(parsed, num_cond_frames, expected_objects, tolerances)
    score = np.zeros((b, t, len(FLAGS)))
    score[..., _F["disappears"]], recolour = _disappears(x, videos)
    score[..., _F["appears"]] = _appears(x)
    score[..., _F["count_changes"]] = _count_changes(x)
    score[..., _F["size_changes"]], score[..., _F["shape_changes"]], whole = _size_and_shape(x)
    if parsed.foreign_px is not None:
        recolour = np.maximum(recolour, _foreign_colour(x))
    score[..., _F["colour_changes"]] = recolour
    score[..., _F["teleports"]] = _teleports(x, whole)
    return score


def plausibility_matrix(parsed: ParsedStates, videos: np.ndarray | None = None, **kw) -> np.ndarray:
    """Flags as a matrix, bool [B, len(FLAGS)] (columns in ``FLAGS`` order); arguments as
    ``plausibility_scores``. ``abnormal = matrix.any(1)``."""
    return (plausibility_scores(parsed, videos, **kw) > 1.0).any(1)


def plausibility_flags(
    parsed: ParsedStates, videos: np.ndarray | None = None, **kw
) -> list[list[str]]:
    """The names (from ``FLAGS``) raised for each of the B videos; an empty list is a plausible
    video. Arguments as ``plausibility_scores``."""
    matrix = plausibility_matrix(parsed, videos, **kw)
    return [[FLAGS[f] for f in np.flatnonzero(row)] for row in matrix]


def abnormal(matrix: np.ndarray) -> np.ndarray:
    """Whether each video raised any flag: bool [B] from ``plausibility_matrix`` [B, F]."""
    return np.asarray(matrix, dtype=bool).any(-1)

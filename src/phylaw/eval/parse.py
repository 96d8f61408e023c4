"""Pixels -> object states: where each coloured ball is, how big, and whether it is there at all.

The paper (Sec. 3.1) locates a ball as "the mean of coloured pixels, distinguishing the balls by
colour". The authors' code (reference section 2.2) thresholds each channel at 127 and maps
column j to ``j / W * 10`` (rendered at ``j / (W - 1) * 10``: a -v/W velocity bias). Here
parsing shares ``PixelGrid`` with the renderer and weighs pixels by a soft membership:

Membership. A pixel p over the white background w is modelled as ``w (1 - a) + c a`` for each
tracked colour c: ``a`` is the least-squares alpha, clipped to [0, 1], and ``d = |(w - p) -
a (w - c)|`` the residual in grey levels. p counts for c with weight ``a`` when (1) c fits it
best among the tracked colours and the declared ``distractors`` (a blue pixel never counts for
red), (2) ``d <= RESIDUAL_TOL`` and ``w - p`` lies within ``acos(MIN_COS)`` = 32 degrees of
``w - c`` (near white every colour line is close, so a pale blue edge pixel is a few grey levels
from the red line, but 60 degrees off it; grey is 35+ degrees off red and blue) and (3)
``a >= ALPHA_FLOOR`` (codec ringing on the background creates no mass). On a render the weight
is the drawn coverage: the weighted centroid is the disc's centre to ~0.01 px, the area within
~0.3 %. Pixels where two balls blend (a collision's contact) fit neither colour and are dropped.

Why (per-frame velocity error at 128 px, 120-video OOD splits, rendered / mp4 crf 25, uniform
and collision): the floor trades render accuracy for codec robustness (floor 0: 0.0015 / 0.048
and 0.0028 / 0.13; 0.05: 0.0030 / 0.029 and 0.0042 / 0.034); a hard 127 mask gives 0.050 /
0.077 and 0.058 / 0.11. Competing against every palette colour sends codec-darkened edge pixels
to black and bluish ones to purple (codec 0.046 and 0.077), a 0.95 cosine rejects them too
(0.043 and 0.063). So only the scene's colours compete: declare other colours drawn near a
tracked one as ``distractors`` (purple is 19 degrees from blue).

Per frame and colour: ``area_px`` = sum of weights, centroid = weighted mean of the pixel centres
through ``PixelGrid.px_to_world``, ``size`` = radius of the disc of that area. Less than
``MIN_AREA_PX`` of weight: missing, NaN position and size, ``visible`` False, never imputed (the
authors substitute x = 10 or the previous frame's values; how a missing object is scored is the
metrics' business, ``eval.physics``). ``MIN_AREA_PX`` is 1 px: the smallest OOD ball (r = 0.3)
covers 2.9 px at 32 px, and a ground-truth ball must never read as missing. The same pass
counts each colour's blobs (``count``: a duplicate or a break-up), measures its central moments
up to order 4 (shape: ``ParsedStates.shape_descriptor``) and, when asked, counts pixels of
colours no tracked object explains (``foreign_px``, for the plausibility flags).

Speed (``benchmarks/bench_eval.py``). The weight is a function of the 24-bit colour, tabulated
once per colour set (a 32 MB uint16 table per colour, built once per machine,
``eval.tablecache``); the scan (``eval.scan``, compiled by numba) visits only the 8-pixel groups
that are not background, once per chunk of frames.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from phylaw import PhylawError
from phylaw.eval import scan
from phylaw.eval.tablecache import cached_table
from phylaw.physics.state import Colour, Shape
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import BACKGROUND, PALETTE

RESIDUAL_TOL = 128.0  # grey levels: a pixel farther than this from every line is nobody's
MIN_COS = 0.85  # cos of the largest angle between (white - pixel) and (white - colour)
ALPHA_FLOOR = 0.05  # membership below this is codec noise on the background, not mass
MIN_AREA_PX = 1.0  # soft pixel area below which an object is missing
MIN_BLOB_PX = 4.0  # pixels a blob needs to count ...
BLOB_REL = 0.2  # ... and this fraction of the frame's largest blob of the colour (codec specks)
CHUNK_PX = 1 << 21  # pixels parsed at once (6 MB of RGB): bounds the temporaries


_PER_COLUMN = ("pos", "size", "area_px", "visible", "in_view", "count", "moments")


@dataclass(frozen=True)
class ParsedStates:
    """States parsed from B videos of T frames for K tracked colours (one body per colour).

    ``grid``: the pixel grid the videos were drawn on; ``pos`` [B, T, K, 2] float64 world units
    (NaN where missing); ``size`` [B, T, K] radius of the disc with the parsed area, world units
    (NaN where missing); ``area_px`` [B, T, K] soft pixel area; ``visible`` [B, T, K] enough
    membership to locate the object; ``in_view`` [B, T, K] visible and no membership on the
    outermost pixel rows and columns; ``count`` [B, T, K] int blobs of the colour (a blob: >=
    ``MIN_BLOB_PX`` pixels of membership >= 1/2 and >= ``BLOB_REL`` of the largest);
    ``moments`` [B, T, K, M] float64 central moments mu_pq (``moment_orders``: p + q <= 2, or
    4 when parsed with ``moments_order=4``; pixel units, mass in pixels) of the solid part of
    the object (``eval.scan.colour``), NaN where missing; ``foreign_px`` [B, T] int pixels of
    the ``foreign`` table after a one-pixel erosion (None when not asked).
    """

    colours: tuple[Colour, ...]
    grid: PixelGrid
    pos: np.ndarray
    size: np.ndarray
    area_px: np.ndarray
    visible: np.ndarray
    in_view: np.ndarray
    count: np.ndarray
    moments: np.ndarray
    foreign_px: np.ndarray | None = None
    moment_orders: tuple[tuple[int, int], ...] = scan.orders(2)
    colour_codes: np.ndarray | None = None  # [B, K] int: each column's colour per video, when
    # the columns were picked per video (``for_bodies``); None: ``colours`` for every video

    @property
    def batch_size(self) -> int:
        return self.pos.shape[0]

    @property
    def num_frames(self) -> int:
        return self.pos.shape[1]

    def codes(self) -> np.ndarray:
        """The colour of each column in each video, int [B, K]."""
        if self.colour_codes is not None:
            return self.colour_codes
        row = np.asarray([int(c) for c in self.colours])
        return np.broadcast_to(row, (self.batch_size, len(row)))

    def moment(self, p: int, q: int) -> np.ndarray:
        """mu_pq [B, T, K] (column power p, row power q), pixel units."""
        if (p, q) not in self.moment_orders:
            raise PhylawError(
                f"moment mu_{p}{q} was not measured; parse with moments_order={p + q}"
            )
        return self.moments[..., self.moment_orders.index((p, q))]

    def shape_descriptor(self) -> np.ndarray:
        """Normalised second moments ``D = 4 pi cov / area``, [B, T, K, 3] = (Dxx, Dyy,
        sqrt(2) Dxy) in pixel axes (the Euclidean distance is the Frobenius distance): about
        (1, 1, 0) for a disc, (a/b, b/a, 0) for an ellipse of axes a, b along x, y, (pi/3,
        pi/3, 0) for a square; NaN where missing."""
        m00 = self.moment(0, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = 4 * np.pi / m00**2
            return (
                np.stack([self.moment(2, 0), self.moment(0, 2), np.sqrt(2) * self.moment(1, 1)], -1)
                * scale[..., None]
            )

    def select(self, idx) -> ParsedStates:
        """The states of the videos ``idx`` (index array, mask or slice)."""
        arrays = {k: getattr(self, k)[idx] for k in _PER_COLUMN}
        foreign = None if self.foreign_px is None else self.foreign_px[idx]
        codes = None if self.colour_codes is None else self.colour_codes[idx]
        return replace(self, foreign_px=foreign, colour_codes=codes, **arrays)

    def for_bodies(self, colours: np.ndarray) -> ParsedStates:
        """The columns of the bodies whose colours are ``colours`` int [B, N] (each video its
        own): states [B, T, N] picked from these states of the palette ``self.colours``."""
        colours = np.asarray(colours, dtype=np.int64)
        palette = np.asarray([int(c) for c in self.colours])
        hit = colours[..., None] == palette  # [B, N, K]
        if not hit.any(-1).all():
            missing = sorted(set(colours[~hit.any(-1)].tolist()))
            raise PhylawError(
                f"parse: bodies of colour {missing} were not parsed (palette "
                f"{[c.name.lower() for c in self.colours]}); parse with the split's palette"
            )
        col = hit.argmax(-1)  # [B, N]
        b = np.arange(len(col))[:, None]
        arrays = {}
        for k in _PER_COLUMN:
            x = getattr(self, k)  # [B, T, K, ...]
            arrays[k] = np.moveaxis(np.moveaxis(x, 2, 1)[b, col], 2, 1)  # [B, T, N, ...]
        return replace(self, colour_codes=colours, **arrays)


# ------------------------------------------------------------------------- membership tables
@functools.lru_cache(maxsize=4)
def membership_tables(
    colours: tuple[Colour, ...],
    distractors: tuple[Colour, ...] = (),
    residual_tol: float = RESIDUAL_TOL,
    alpha_floor: float = ALPHA_FLOOR,
    min_cos: float = MIN_COS,
) -> np.ndarray:
    """Membership weight of every 24-bit colour for each tracked colour, uint16 [K, 2**24].

    Entry ``[k, (255 - R) + 256 (255 - G) + 65536 (255 - B)]`` is ``round(a * 65535)`` when the
    pixel (R, G, B) belongs to ``colours[k]`` with alpha ``a``, else 0 (rules in the module
    docstring); white is entry 0 and near-white noise stays within a few cache lines. The
    ``distractors`` compete for pixels but are not tabulated. Built in slabs of 16 blue levels
    (~0.1 s a colour) once per machine, then read from the table cache (`eval.tablecache`).
    """
    args = (tuple(colours), tuple(distractors), residual_tol, alpha_floor, min_cos)
    shape = (len(colours), 256**3)
    return cached_table(_membership_tables, *args, shape=shape, dtype=np.uint16)


def _membership_tables(
    colours: tuple[Colour, ...],
    distractors: tuple[Colour, ...],
    residual_tol: float,
    alpha_floor: float,
    min_cos: float,
) -> np.ndarray:
    """`membership_tables`, built."""
    competitors = list(dict.fromkeys([Colour(c) for c in (*colours, *distractors)]))
    bg = np.asarray(BACKGROUND, dtype=np.float32)
    if not (bg == 255).all():
        raise PhylawError("parse_videos assumes the white background of phylaw's palette")
    e = bg - np.asarray([PALETTE[c] for c in competitors], dtype=np.float32)  # [J, 3] w - c
    e2 = np.maximum((e * e).sum(1), 1e-6)
    q = [np.arange(256, dtype=np.float32)] * 3  # w - value per channel: the table's index
    out = np.zeros((len(colours), 256, 256, 256), dtype=np.uint16)  # [K, 255 - B, -G, -R]
    slab = 16
    for b0 in range(0, 256, slab):
        qb = q[2][b0 : b0 + slab, None, None]
        qq = qb * qb + (q[1] * q[1])[None, :, None] + (q[0] * q[0])[None, None, :]  # |q|^2
        best = np.full(qq.shape, residual_tol**2, dtype=np.float32)  # farther: nobody's
        arg = np.full(qq.shape, -1, dtype=np.int8)
        alpha = np.zeros((len(colours), *qq.shape), dtype=np.float32)
        for j in range(len(competitors)):
            dot = e[j, 2] * qb + (e[j, 1] * q[1])[None, :, None] + (e[j, 0] * q[0])[None, None, :]
            a = np.clip(dot / e2[j], 0.0, 1.0)  # least-squares alpha on the line w -> c_j
            d2 = qq - a * (2.0 * dot - a * e2[j])  # squared residual |q - a e_j|^2
            closer = (d2 <= best) & (dot * dot >= min_cos**2 * qq * e2[j]) & (dot > 0)
            np.copyto(best, d2, where=closer)
            arg[closer] = j
            if j < len(colours):
                alpha[j] = a
        for k in range(len(colours)):
            member = (arg == k) & (alpha[k] >= alpha_floor)
            out[k, b0 : b0 + slab] = np.where(member, np.rint(alpha[k] * scan.SCALE), 0)
    return out.reshape(len(colours), -1)


def white_bits(colours: Sequence[Colour], alpha_floor: float = ALPHA_FLOOR) -> int:
    """Bits k such that a pixel whose channels are all >= 256 - 2**k weighs 0 for every colour.

    Its alpha for colour c is at most ``(2**k - 1) * sum(e) / |e|^2`` (e = white - c), which
    must stay below the floor. 3 for red, blue and black (channels >= 248 are background).
    """
    bg = np.asarray(BACKGROUND, dtype=np.float64)
    e = bg - np.asarray([PALETTE[Colour(int(c))] for c in colours], dtype=np.float64)
    bound = min(alpha_floor * (v @ v) / max(v.sum(), 1e-9) for v in e)  # deviation < bound
    k = 0
    while k < 7 and 2 ** (k + 1) - 1 < bound:
        k += 1
    return k


# ------------------------------------------------------------------------------------ parsing
def _parse_chunk(
    frames: np.ndarray,
    tables: np.ndarray,
    width: int,
    scanner: scan.Scanner,
    foreign,
    order: int,
) -> dict[str, np.ndarray]:
    """Per-frame results of one chunk ``frames`` uint8 [F, H, Wp, 3] (Wp % 8 == 0, white
    beyond column ``width``): sums [F, K, 4], count [F, K], moments [F, K, M] (raw: about
    each frame's centroid, ``scan.colour``), foreign [F].
    ``tables``: the membership tables (``membership_tables``)."""
    f, h, wp, _ = frames.shape
    groups, codes = scanner.scan(frames.reshape(-1))
    out = {
        "sums": np.zeros((f, len(tables), 4)),
        "count": np.zeros((f, len(tables)), dtype=np.int64),
        "moments": np.zeros((f, len(tables), len(scan.orders(order)))),
    }
    for i, table in enumerate(tables):
        sums, raw, count = scan.colour(
            groups, codes, table, (f, h, wp), width, order, MIN_AREA_PX, MIN_BLOB_PX, BLOB_REL
        )
        out["sums"][:, i], out["moments"][:, i], out["count"][:, i] = sums, raw, count
    if foreign is not None:
        out["foreign"] = scan.eroded(groups, codes, foreign, (f, h, wp), width)
    return out


def _check(videos: np.ndarray, colours: Sequence[Colour], grid: PixelGrid | None) -> PixelGrid:
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise PhylawError(f"parse_videos: videos must be [B, T, H, W, 3], got {videos.shape}")
    if videos.dtype != np.uint8:
        raise PhylawError(f"parse_videos: videos must be uint8, got {videos.dtype}")
    h, w = videos.shape[2:4]
    grid = PixelGrid(int(w), int(h)) if grid is None else grid
    if grid.shape != (h, w):
        raise PhylawError(
            f"parse_videos: frames are {w}x{h} px but the grid is {grid.width_px}x{grid.height_px}"
        )
    valid = {int(c) for c in Colour}
    codes = [int(c) for c in colours]
    if not codes or not set(codes) <= valid or len(set(codes)) != len(codes):
        raise PhylawError(
            f"parse_videos: give distinct colours (one body per colour) from "
            f"{[c.name.lower() for c in Colour]}, got {list(colours)}"
        )
    return grid


def parse_videos(
    videos: np.ndarray,
    colours: Sequence[Colour],
    grid: PixelGrid | None = None,
    *,
    distractors: Sequence[Colour] = (),
    foreign: np.ndarray | None = None,
    moments_order: int = 2,
) -> ParsedStates:
    """Parse the position, size, blob count and moments of one body per colour in every frame.

    ``videos``: uint8 [B, T, H, W, 3], row 0 at the top (world y = 10); ``colours``: the K
    tracked colours in body-slot order (distinct); ``grid``: the pixel grid the videos were
    drawn on (default: the world square over W x H pixels); ``distractors``: other colours
    drawn in the videos, which compete for pixels but are not tracked; ``foreign``: optional
    bool table [2**24] indexed like ``membership_tables`` of colours to count (after a
    one-pixel erosion) as ``foreign_px``; ``moments_order``: the highest order of the moments
    measured (2: covariance, what the flags need; 4: also the fourth moments that tell a disc
    from a square). Returns ``ParsedStates`` [B, T, K].
    """
    if moments_order not in (2, 3, 4):
        raise PhylawError(f"parse_videos: moments_order must be 2, 3 or 4, got {moments_order}")
    videos = np.asarray(videos)
    grid = _check(videos, colours, grid)
    colours = tuple(Colour(int(c)) for c in colours)
    b, t, h, w, _ = videos.shape
    k = len(colours)
    others = tuple(Colour(int(c)) for c in distractors)
    tables = membership_tables(colours, others)
    wp = -(-w // scan.GROUP) * scan.GROUP
    step = max(1, CHUNK_PX // max(1, t * h * wp))  # videos per chunk
    res = {
        "sums": np.zeros((b, t, k, 4)),
        "count": np.zeros((b, t, k), dtype=np.int64),
        "moments": np.zeros((b, t, k, len(scan.orders(moments_order)))),
    }
    if foreign is not None:
        res["foreign"] = np.zeros((b, t), dtype=np.int64)
    pad = None
    scanner = scan.Scanner(min(step, b) * t * h * wp * 3 // 8, white_bits(colours))
    for v0 in range(0, b, step):
        chunk = videos[v0 : v0 + step]  # a strided input is copied one chunk at a time
        n = len(chunk)
        if wp != w:  # widen to whole 8-pixel groups with white
            if pad is None or len(pad) != n:
                pad = np.full((n, t, h, wp, 3), 255, dtype=np.uint8)
            pad[..., :w, :] = chunk
            chunk = pad
        frames = np.ascontiguousarray(chunk).reshape(n * t, h, wp, 3)
        part = _parse_chunk(frames, tables, w, scanner, foreign, moments_order)
        for key, value in part.items():
            res[key][v0 : v0 + n] = value.reshape(n, t, *value.shape[1:])
    return _states(res, colours, grid, scan.orders(moments_order))


def _states(res: dict, colours: tuple[Colour, ...], grid: PixelGrid, pq) -> ParsedStates:
    """Positions, sizes and flags from the per-frame results of ``_parse_chunk``."""
    sums = res["sums"]
    area = sums[..., 0] / scan.SCALE
    visible = area >= MIN_AREA_PX
    with np.errstate(divide="ignore", invalid="ignore"):
        colrow = sums[..., 1:3] / sums[..., :1]
    pos = grid.px_to_world(colrow)
    pos[~visible] = np.nan
    size = np.sqrt(area / np.pi) / float(grid.world_len_to_px(1.0))
    size[~visible] = np.nan
    in_view = visible & (sums[..., 3] == 0)
    moments = scan.central(res["moments"] / scan.SCALE, pq)
    moments[~visible] = np.nan
    return ParsedStates(
        colours, grid, pos, size, area, visible, in_view, res["count"], moments,
        res.get("foreign"), pq,
    )  # fmt: skip


# ------------------------------------------------------------------------------ cut bodies
CUT_KEEP = 0.98  # a body showing this fraction of its area keeps its centroid
_DELTA = np.linspace(-1.0, 1.0, 4001)  # signed distance of the centre inside the border / r


def _disc_shown(x: np.ndarray) -> np.ndarray:
    """Fraction of a unit disc on the inner side of a line at signed distance x from its
    centre (a circular segment): ``1 - (acos(x) - x sqrt(1 - x^2)) / pi``, x clipped to
    [-1, 1]."""
    x = np.clip(x, -1.0, 1.0)
    return 1.0 - (np.arccos(x) - x * np.sqrt(1.0 - x * x)) / np.pi


def _offset(shape: int, ratio: float, shown: np.ndarray) -> np.ndarray:
    """Signed distance of the centre inside the border, in outer radii (half sides), of a body
    of ``shape`` (ring: inner / outer radius ``ratio``) showing the fraction ``shown``."""
    if shape == Shape.SQUARE:  # axis-aligned: the visible width grows linearly
        return 2.0 * shown - 1.0
    frac = _disc_shown(_DELTA)
    if shape == Shape.RING and ratio > 0:  # annulus: outer disc minus inner disc
        frac = (frac - ratio**2 * _disc_shown(_DELTA / ratio)) / (1.0 - ratio**2)
    return np.interp(shown, frac, _DELTA)


def recentre_cut(parsed: ParsedStates, bodies) -> np.ndarray:
    """Positions [B, T, N, 2] where each body cut by the image border is moved to the centre
    that explains the area it shows.

    ``bodies``: the ``physics.state.Bodies`` [B, N] of the columns (their shapes, sizes and
    ring radii, e.g. the ground truth's). A visible object not ``in_view`` showing less than
    ``CUT_KEEP`` of its body's area, its centroid within its radius (plus a pixel) of the
    border, is placed, along the normal of the border nearest its
    centroid, at the signed distance from that border at which the body shows that fraction
    (a circular segment for a disc, the difference of two for a ring, a strip for a square);
    along the border it keeps its centroid. The centroid of a cut body lies inside its centre,
    so without this a ball that overshoots out of view would look closer than it is.
    """
    pos = parsed.pos.copy()
    g = parsed.grid
    r = np.asarray(bodies.size, dtype=np.float64)[:, None, :]  # [B, 1, N]
    full = np.asarray(bodies.area, dtype=np.float64)[:, None, :] * g.world_len_to_px(1.0) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shown = parsed.area_px / full
    x_all, y_all = pos[..., 0], pos[..., 1]
    border = np.minimum(
        np.minimum(x_all, g.world_size - x_all), np.minimum(y_all, g.world_size - y_all)
    )
    reach = r + 1.0 / g.world_len_to_px(1.0)  # a cut body's centroid lies within r of the border
    # a faint pixel on the border far from the body (a generated halo) does not make it cut
    cut = parsed.visible & ~parsed.in_view & (shown < CUT_KEEP) & (border < reach)
    if not cut.any():
        return pos
    shape = np.broadcast_to(np.asarray(bodies.shape)[:, None, :], cut.shape)[cut]
    ratio = np.broadcast_to((bodies.inner_radius() / bodies.size)[:, None, :], cut.shape)[cut]
    x, y = pos[cut][:, 0], pos[cut][:, 1]
    delta = np.empty(len(x))
    for s, q in set(zip(shape.tolist(), np.round(ratio, 6).tolist(), strict=True)):
        pick = (shape == s) & (np.round(ratio, 6) == q)
        delta[pick] = _offset(s, q, np.clip(shown[cut][pick], 0.0, 1.0))
    delta *= np.broadcast_to(r, cut.shape)[cut]
    dist = np.stack([x, g.world_size - x, y, g.world_size - y], -1)
    side = np.argmin(dist, -1)
    x = np.select([side == 0, side == 1], [delta, g.world_size - delta], x)
    y = np.select([side == 2, side == 3], [delta, g.world_size - delta], y)
    pos[cut] = np.stack([x, y], -1)
    return pos

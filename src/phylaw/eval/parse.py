"""Pixels -> object states: where each coloured ball is, how big, and whether it is there at all.

The paper (Sec. 3.1, "Evaluation metrics") locates the i-th ball as "the mean of coloured
pixels, distinguishing the balls by colour". The authors' code (reference section 2.2) thresholds
each channel at 127 and averages the indices of the mask, mapping column j to ``j / W * 10``;
rendered with ``j / (W - 1) * 10`` that biases every velocity by ``-v / W``. Here parsing shares
``PixelGrid`` with the renderer, and uses soft membership instead of a hard mask:

Membership. A pixel p of a frame with a white background w is modelled as ``w (1 - a) + c a`` for
the colour c of each tracked body: ``a`` is the least-squares alpha of that model, clipped to
[0, 1], and ``d = |(w - p) - a (w - c)|`` its residual in grey levels. The pixel counts for
colour c with weight ``a`` when (1) c's model fits it best among all palette colours (so a blue
pixel never counts for red, and a purple or grey one for neither), (2) ``d <= RESIDUAL_TOL``
(a pixel far from every palette line is noise) and (3) ``a >= ALPHA_FLOOR`` (codec ringing on
the background, a few grey levels, creates no mass far away). On a render the weight is the
drawn coverage, so the weighted centroid is the disc's centre to ~0.01 px and the weighted area
its area to ~0.3 %. Pixels where two balls blend (the contact point of a collision) fit neither
colour and are dropped, a few pixels at most.

Per frame and colour: ``area_px`` = sum of weights, centroid = weighted mean of pixel centres
mapped through ``PixelGrid.px_to_world``, ``size`` = radius of the disc of that area. An object
with less than ``MIN_AREA_PX`` of weight is missing: NaN position and size, ``visible`` False.
Nothing is ever imputed (the authors substitute x = 10 or the previous frame's values).

Speed (``benchmarks/bench_eval.py``). The weights are a pure function of the 24-bit colour, so
they are tabulated once per colour set (a 32 MB uint16 table per colour, built in ~1 s and
cached). A frame is scanned as 64-bit words, and only 8-pixel groups holding a non-white byte
(a few % of a ball video) are looked up; their 8 weights are reduced to (sum, column moment,
border mass) by one small matmul before the per-frame sums (``np.bincount``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from phylaw import PhylawError
from phylaw.physics.state import Colour
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import BACKGROUND, PALETTE

RESIDUAL_TOL = 96.0  # grey levels: a pixel farther than this from its colour's line is noise
ALPHA_FLOOR = 0.1  # membership below this is codec noise on the background, not mass
MIN_AREA_PX = 4.0  # soft pixel area below which an object is missing
CHUNK_PX = 1 << 22  # pixels parsed at once (12 MB of RGB): bounds the temporaries
SOFT = True
_SCALE = 65535  # weights are tabulated as uint16 a * _SCALE
_GROUP = 8  # pixels per group: 24 bytes = 3 uint64 words
_WHITE64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class ParsedStates:
    """States parsed from B videos of T frames for K tracked colours (one body per colour).

    ``pos`` [B, T, K, 2] float64 world units (NaN where missing); ``size`` [B, T, K] radius of
    the disc with the parsed area, world units (NaN where missing); ``area_px`` [B, T, K] soft
    pixel area; ``visible`` [B, T, K] enough membership to locate the object; ``in_view``
    [B, T, K] visible and no membership on the outermost pixel rows and columns; ``count``
    [B, T, K] int number of separate blobs of the colour (-1 when not counted, see
    ``parse_videos(count_blobs=...)``).
    """

    colours: tuple[Colour, ...]
    pos: np.ndarray
    size: np.ndarray
    area_px: np.ndarray
    visible: np.ndarray
    in_view: np.ndarray
    count: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.pos.shape[0]

    @property
    def num_frames(self) -> int:
        return self.pos.shape[1]


# ------------------------------------------------------------------------- membership tables
@functools.lru_cache(maxsize=4)
def membership_tables(
    colours: tuple[Colour, ...],
    residual_tol: float = RESIDUAL_TOL,
    alpha_floor: float = ALPHA_FLOOR,
) -> np.ndarray:
    """Membership weight of every 24-bit colour for each tracked colour, uint16 [K, 2**24].

    Entry ``[k, R + 256 G + 65536 B]`` is ``round(a * 65535)`` when the pixel (R, G, B) belongs
    to ``colours[k]`` with alpha ``a`` (see the module docstring), else 0. Competitors are every
    palette colour, so the result does not depend on which other colours are tracked.
    """
    bg = np.asarray(BACKGROUND, dtype=np.float32)
    names = list(PALETTE)
    e = bg - np.asarray([PALETTE[c] for c in names], dtype=np.float32)  # [J, 3] white - colour
    e2 = np.maximum((e * e).sum(1), 1e-6)
    tracked = [names.index(Colour(c)) for c in colours]
    v = np.arange(256, dtype=np.float32)
    q = [bg[ch] - v for ch in range(3)]  # per channel: background minus value, [256]
    out = np.zeros((len(colours), 256, 256, 256), dtype=np.uint16)  # [K, B, G, R]
    slab = 16
    for b0 in range(0, 256, slab):
        qb = q[2][b0 : b0 + slab, None, None]
        qq = qb * qb + (q[1] * q[1])[None, :, None] + (q[0] * q[0])[None, None, :]  # |q|^2
        best = np.full(qq.shape, np.inf, dtype=np.float32)
        arg = np.zeros(qq.shape, dtype=np.int8)
        alpha = np.zeros((len(tracked), *qq.shape), dtype=np.float32)
        for j in range(len(names)):
            dot = e[j, 2] * qb + (e[j, 1] * q[1])[None, :, None] + (e[j, 0] * q[0])[None, None, :]
            a = np.clip(dot / e2[j], 0.0, 1.0)
            d2 = qq - a * (2.0 * dot - a * e2[j])  # |q - a e|^2
            closer = d2 < best
            np.copyto(best, d2, where=closer)
            arg[closer] = j
            if j in tracked:
                alpha[tracked.index(j)] = a
        ok = best <= residual_tol**2
        for k, j in enumerate(tracked):
            a = alpha[k]
            if SOFT:
                w = np.where(a >= 2 * alpha_floor, a, np.maximum(2 * (a - alpha_floor), 0))
            else:
                w = np.where(a >= alpha_floor, a, 0)
            out[k, b0 : b0 + slab] = np.where(ok & (arg == j), np.rint(w * _SCALE), 0)
    return out.reshape(len(colours), -1)


# ------------------------------------------------------------------------------------ parsing
def _group_codes(flat: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """24-bit colour codes ``R + 256 G + 65536 B`` of the 8 pixels of each group, int64 [8, n].

    ``flat``: the chunk's bytes, uint8 [F * H * W * 3] with W a multiple of 8; ``groups`` [n].
    Row j holds pixel j of every group (contiguous, so that per-pixel sums are vectorised).
    """
    words = flat.reshape(-1, 3 * _GROUP).take(groups, axis=0).view(np.uint64)  # [n, 3]
    a, b, c = (np.ascontiguousarray(words[:, i]) for i in range(3))  # little-endian bytes
    m = np.uint64(0xFFFFFF)
    codes = np.empty((_GROUP, len(groups)), dtype=np.uint64)
    for j, (word, shift) in enumerate(((a, 0), (a, 24), (a, 48), (b, 8), (b, 32), (b, 56))):
        np.right_shift(word, np.uint64(shift), out=codes[j])
    codes[2] |= b << np.uint64(16)  # pixel 2 spans words a and b, pixel 5 words b and c
    codes[5] |= c << np.uint64(8)
    np.right_shift(c, np.uint64(16), out=codes[6])
    np.right_shift(c, np.uint64(40), out=codes[7])
    codes &= m
    return codes.view(np.int64)


def _active_groups(flat: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Indices of the 8-pixel groups of ``flat`` holding a byte that is not 255, int64 [n].

    ``scratch``: a reusable bool buffer of at least ``flat.size / 8`` entries rounded up to a
    multiple of 24 (reused: fresh memory costs page faults).
    One word compare per 8 bytes; then 64-pixel blocks (24 flags = 3 uint64) are tested at
    once, and only the active blocks are split into their groups.
    """
    nw = flat.size // 8
    flags = scratch[: -(-nw // 24) * 24]
    np.not_equal(flat.view(np.uint64), _WHITE64, out=flags[:nw])
    flags[nw:] = False
    blocks = flags.view(np.uint64).reshape(-1, 3)
    active = np.flatnonzero(blocks[:, 0] | blocks[:, 1] | blocks[:, 2])
    sub = flags.reshape(-1, _GROUP, 3)[active]  # [m, 8 groups, 3 words]
    hit = sub[:, :, 0] | sub[:, :, 1] | sub[:, :, 2]
    return (active[:, None] * _GROUP + np.arange(_GROUP))[hit]


def _parse_chunk(
    frames: np.ndarray,
    tables: np.ndarray,
    width: int,
    scratch: np.ndarray,
    count_blobs: bool,
    min_area_px: float,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sums per frame and colour of one chunk. ``frames`` uint8 [F, H, Wp, 3], Wp % 8 == 0,
    padded with white beyond column ``width``; ``scratch`` see ``_active_groups``.

    Returns ``(sums [F, K, 4], count [F, K] or None)``; sums are (weight, weight * column,
    weight * row, weight on the border) in units of 1/65535 pixel.
    """
    f, h, wp, _ = frames.shape
    flat = frames.reshape(-1)
    groups = _active_groups(flat, scratch)
    codes = _group_codes(flat, groups)  # [8, n]
    per_row = wp // _GROUP
    row_all = groups // per_row  # frame * H + row
    col0 = ((groups - row_all * per_row) * _GROUP).astype(np.float64)
    frame = row_all // h
    row = (row_all - frame * h).astype(np.float64)
    edge_row = (row == 0) | (row == h - 1)
    first_col = col0 == 0
    last_col = col0 == (width - 1) // _GROUP * _GROUP
    offsets = np.arange(_GROUP, dtype=np.float32)
    sums = np.zeros((f, len(tables), 4))
    count = np.full((f, len(tables)), -1, dtype=np.int64) if count_blobs else None
    for i, table in enumerate(tables):
        weight = table.take(codes)  # [8, n] uint16
        wf = weight.astype(np.float32)  # sums of <= 8 uint16 are exact in float32
        total = wf.sum(axis=0).astype(np.float64)
        moment = (offsets @ wf).astype(np.float64)  # sum_j j w_j
        border = total * edge_row + wf[0] * first_col + wf[(width - 1) % _GROUP] * last_col
        for q, values in enumerate((total, total * col0 + moment, total * row, border)):
            sums[:, i, q] = np.bincount(frame, values, minlength=f)
        if count_blobs:
            count[:, i] = _count_blobs(weight, groups, (f, h, wp), min_area_px)
    return sums, count


def _count_blobs(
    weight: np.ndarray, groups: np.ndarray, shape: tuple[int, int, int], min_area_px: float
) -> np.ndarray:
    """Connected components (8-neighbour, within a frame) of pixels with membership >= 1/2 and
    at least ``min_area_px`` pixels, per frame: int64 [F]."""
    f = shape[0]
    mask = np.zeros(shape, dtype=bool)
    idx = groups * _GROUP + np.arange(_GROUP)[:, None]  # [8, n] like ``weight``
    mask.reshape(-1)[idx] = weight >= (_SCALE + 1) // 2
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # no connection across frames
    labels, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return np.zeros(f, dtype=np.int64)
    # Labels grow in scan order, so each frame's labels lie above every earlier frame's.
    top = np.maximum.accumulate(labels.reshape(f, -1).max(axis=1))
    frame_of = np.searchsorted(top, np.arange(1, n + 1))  # the frame of each label
    big = np.bincount(labels.reshape(-1), minlength=n + 1)[1:] >= min_area_px
    return np.bincount(frame_of[big], minlength=f).astype(np.int64)


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
    count_blobs: bool = False,
    min_area_px: float = MIN_AREA_PX,
) -> ParsedStates:
    """Parse the position and size of one body per colour in every frame.

    ``videos``: uint8 [B, T, H, W, 3], row 0 at the top (world y = 10); ``colours``: the K
    tracked colours in body-slot order (distinct); ``grid``: the pixel grid the videos were
    drawn on (default: the world square over W x H pixels); ``count_blobs``: also count the
    connected blobs of each colour (a full-frame labelling, several times slower); objects with
    less than ``min_area_px`` of membership are missing. Returns ``ParsedStates`` [B, T, K].
    """
    videos = np.asarray(videos)
    grid = _check(videos, colours, grid)
    colours = tuple(Colour(int(c)) for c in colours)
    b, t, h, w, _ = videos.shape
    k = len(colours)
    tables = membership_tables(colours)
    frames = videos.reshape(b * t, h, w, 3)
    wp = -(-w // _GROUP) * _GROUP
    step = max(1, CHUNK_PX // (h * wp))
    sums = np.zeros((b * t, k, 4))
    count = np.full((b * t, k), -1, dtype=np.int64)
    pad = None
    words = min(step, b * t) * h * wp * 3 // 8
    scratch = np.zeros(-(-words // 24) * 24, dtype=bool)
    for f0 in range(0, b * t, step):
        chunk = frames[f0 : f0 + step]
        if wp != w:  # widen to whole 8-pixel groups with white
            if pad is None or len(pad) != len(chunk):
                pad = np.full((len(chunk), h, wp, 3), 255, dtype=np.uint8)
            pad[:, :, :w] = chunk
            chunk = pad
        s, c = _parse_chunk(
            np.ascontiguousarray(chunk), tables, w, scratch, count_blobs, min_area_px
        )
        sums[f0 : f0 + len(chunk)] = s
        if c is not None:
            count[f0 : f0 + len(chunk)] = c
    return _states(sums.reshape(b, t, k, 4), count.reshape(b, t, k), colours, grid, min_area_px)


def _states(
    sums: np.ndarray, count: np.ndarray, colours: tuple[Colour, ...], grid: PixelGrid, min_area
) -> ParsedStates:
    """Positions, sizes and flags from per-frame sums [B, T, K, 4] (see ``_parse_chunk``)."""
    area = sums[..., 0] / _SCALE
    visible = area >= min_area
    with np.errstate(divide="ignore", invalid="ignore"):
        colrow = sums[..., 1:3] / sums[..., :1]
    pos = grid.px_to_world(colrow)
    pos[~visible] = np.nan
    size = np.sqrt(area / np.pi) / float(grid.world_len_to_px(1.0))
    size[~visible] = np.nan
    in_view = visible & (sums[..., 3] == 0)
    return ParsedStates(colours, pos, size, area, visible, in_view, count)

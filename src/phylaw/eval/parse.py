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
authors substitute x = 10 or the previous frame's values).

Speed (``benchmarks/bench_eval.py``). The weight is a function of the 24-bit colour, tabulated
once per colour set (a 32 MB uint16 table per colour, ~0.5 s, cached per process). Frames are
scanned once as 64-bit words against pure white; only 64-pixel blocks with a flagged word are
copied out, their 8-pixel groups tested against the background band (channels >= 248 when that
cannot reach the floor) and looked up; each group is reduced to its weight and column moment,
then frames by ``np.add.reduceat`` (groups come sorted by frame). A ball video touches a few %
of its groups. numpy only: torch's CPU kernels were slower at these small, gather-heavy steps.
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

RESIDUAL_TOL = 128.0  # grey levels: a pixel farther than this from every line is nobody's
MIN_COS = 0.85  # cos of the largest angle between (white - pixel) and (white - colour)
ALPHA_FLOOR = 0.05  # membership below this is codec noise on the background, not mass
MIN_AREA_PX = 4.0  # soft pixel area below which an object is missing
CHUNK_PX = 1 << 21  # pixels parsed at once (6 MB of RGB): bounds the temporaries
_SCALE = 65535  # weights are tabulated as uint16 a * _SCALE
_GROUP = 8  # pixels per group: 24 bytes = 3 uint64 words
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)  # 8 white bytes


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
    (~0.5 s a colour).
    """
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
            out[k, b0 : b0 + slab] = np.where(member, np.rint(alpha[k] * _SCALE), 0)
    return out.reshape(len(colours), -1)


# ------------------------------------------------------------------------------------ parsing
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


def _codes(words: np.ndarray) -> np.ndarray:
    """Table indices of the 8 pixels of each group from its 3 little-endian words [n, 3]:
    ``(255 - R) + 256 (255 - G) + 65536 (255 - B)``, int64 [8, n] (row j: pixel j)."""
    a, b, c = words.T.copy()  # three contiguous rows
    codes = np.empty((_GROUP, len(words)), dtype=np.uint64)
    for j, (word, shift) in enumerate(((a, 0), (a, 24), (a, 48), (b, 8), (b, 32), (b, 56))):
        np.right_shift(word, np.uint64(shift), out=codes[j])
    codes[2] |= b << np.uint64(16)  # pixel 2 spans words a and b, pixel 5 words b and c
    codes[5] |= c << np.uint64(8)
    np.right_shift(c, np.uint64(16), out=codes[6])
    np.right_shift(c, np.uint64(40), out=codes[7])
    codes &= np.uint64(0xFFFFFF)
    codes ^= np.uint64(0xFFFFFF)  # 255 - value: near-white noise shares a few table lines
    return codes.view(np.int64)


class _Scan:
    """Finds the 8-pixel groups worth looking up; buffers reused across chunks.

    ``words``: the most uint64 words a chunk holds; ``bits``: ``white_bits`` of the colours.
    """

    def __init__(self, words: int, bits: int):
        byte = (0xFF << bits) & 0xFF
        self.mask = np.uint64(int.from_bytes(bytes([byte] * 8), "little"))
        self.flags = np.zeros(words, dtype=bool)  # page-faulted once, not per chunk

    def groups(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(groups [n], codes [8, n])`` of the groups of ``flat`` (uint8 bytes, a whole number
        of 8-pixel groups) holding a non-background pixel: a channel below ``256 - 2**bits``.

        One compare per 8 bytes against pure white, then 64-pixel blocks (24 words, whose 24
        flags are 3 uint64) are tested at once; the words of the active blocks are copied out
        and only their groups are tested against the background band and decoded.
        """
        words = flat.view(np.uint64)
        nw = len(words) // 24 * 24
        flags = self.flags[:nw]
        np.not_equal(words[:nw], _ALL_ONES, out=flags)
        blocks = flags.view(np.uint64).reshape(-1, 3)
        active = np.flatnonzero(blocks[:, 0] | blocks[:, 1] | blocks[:, 2])
        cand = words[:nw].reshape(-1, 24).take(active, axis=0).reshape(-1, 3)  # [m * 8, 3]
        first = (active[:, None] * _GROUP + np.arange(_GROUP)).reshape(-1)
        if nw < len(words):  # a last partial block: its few groups are all candidates
            cand = np.concatenate([cand, words[nw:].reshape(-1, 3)])
            first = np.concatenate([first, np.arange(nw // 3, len(words) // 3)])
        both = np.bitwise_and(cand[:, 0], cand[:, 1])
        np.bitwise_and(both, cand[:, 2], out=both)
        np.bitwise_and(both, self.mask, out=both)
        keep = np.flatnonzero(np.not_equal(both, self.mask))
        return first[keep], _codes(cand.take(keep, axis=0))


def _parse_chunk(
    frames: np.ndarray,
    tables: np.ndarray,
    width: int,
    scan: _Scan,
    count_blobs: bool,
    min_area_px: float,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sums per frame and colour of one chunk. ``frames`` uint8 [F, H, Wp, 3], Wp % 8 == 0,
    padded with white beyond column ``width``.

    Returns ``(sums [F, K, 4], count [F, K] or None)``; sums are (weight, weight * column,
    weight * row, weight on the border) in units of 1/65535 pixel.
    """
    f, h, wp, _ = frames.shape
    k = len(tables)
    groups, codes = scan.groups(frames.reshape(-1))  # [n], [8, n]
    per_row = wp // _GROUP
    row_all = groups // per_row  # frame * H + row, non-decreasing
    col0 = ((groups - row_all * per_row) * _GROUP).astype(np.float64)
    frame = row_all // h
    row = (row_all - frame * h).astype(np.float64)
    edge_row = (row == 0) | (row == h - 1)
    first_col = col0 == 0
    last_col = col0 == (width - 1) // _GROUP * _GROUP
    offsets = np.arange(_GROUP, dtype=np.float32)
    values = np.empty((k, 4, len(groups)))  # per group: weight, column and row moments, border
    count = np.full((f, k), -1, dtype=np.int64) if count_blobs else None
    for i, table in enumerate(tables):
        weight = table.take(codes)  # [8, n] uint16
        wf = weight.astype(np.float32)  # sums of <= 8 uint16 are exact in float32
        total = wf.sum(axis=0, dtype=np.float64)
        values[i, 0] = total
        values[i, 1] = total * col0 + offsets @ wf  # sum_j (col0 + j) w_j
        values[i, 2] = total * row
        values[i, 3] = total * edge_row + wf[0] * first_col + wf[(width - 1) % _GROUP] * last_col
        if count_blobs:
            count[:, i] = _count_blobs(weight, groups, (f, h, wp), min_area_px)
    sums = np.zeros((k * 4, f))
    starts = np.searchsorted(frame, np.arange(f))  # groups are sorted by frame
    has = np.diff(np.append(starts, len(groups))) > 0
    if has.any():
        sums[:, has] = np.add.reduceat(values.reshape(k * 4, -1), starts[has], axis=1)
    return sums.reshape(k, 4, f).transpose(2, 0, 1), count


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
    distractors: Sequence[Colour] = (),
    min_area_px: float = MIN_AREA_PX,
) -> ParsedStates:
    """Parse the position and size of one body per colour in every frame.

    ``videos``: uint8 [B, T, H, W, 3], row 0 at the top (world y = 10); ``colours``: the K
    tracked colours in body-slot order (distinct); ``grid``: the pixel grid the videos were
    drawn on (default: the world square over W x H pixels); ``count_blobs``: also count the
    connected blobs of each colour (a full-frame labelling, several times slower);
    ``distractors``: other colours drawn in the videos, which compete for pixels but are not
    tracked; objects with less than ``min_area_px`` of membership are missing. Returns
    ``ParsedStates`` [B, T, K].
    """
    videos = np.asarray(videos)
    grid = _check(videos, colours, grid)
    colours = tuple(Colour(int(c)) for c in colours)
    b, t, h, w, _ = videos.shape
    k = len(colours)
    tables = membership_tables(colours, tuple(Colour(int(c)) for c in distractors))
    wp = -(-w // _GROUP) * _GROUP
    step = max(1, CHUNK_PX // max(1, t * h * wp))  # videos per chunk
    sums = np.zeros((b, t, k, 4))
    count = np.full((b, t, k), -1, dtype=np.int64)
    pad = None
    scan = _Scan(min(step, b) * t * h * wp * 3 // 8, white_bits(colours))
    for v0 in range(0, b, step):
        chunk = videos[v0 : v0 + step]  # a strided input is copied one chunk at a time
        n = len(chunk)
        if wp != w:  # widen to whole 8-pixel groups with white
            if pad is None or len(pad) != n:
                pad = np.full((n, t, h, wp, 3), 255, dtype=np.uint8)
            pad[..., :w, :] = chunk
            chunk = pad
        frames = np.ascontiguousarray(chunk).reshape(n * t, h, wp, 3)
        s, c = _parse_chunk(frames, tables, w, scan, count_blobs, min_area_px)
        sums[v0 : v0 + n] = s.reshape(n, t, k, 4)
        if c is not None:
            count[v0 : v0 + n] = c.reshape(n, t, k)
    return _states(sums, count, colours, grid, min_area_px)


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

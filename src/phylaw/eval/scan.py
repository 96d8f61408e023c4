"""The pixel scan under ``eval.parse``: every per-frame sum a video's objects need, in one pass.

A chunk of frames [F, H, Wp, 3] (Wp a multiple of 8, white beyond the real width) is read as
8-pixel *groups* of 3 uint64 words. A group whose every channel is >= ``256 - 2**bits`` weighs 0
for every tracked colour (``parse.white_bits``) and is skipped; the few groups left (a ball video
keeps a few per cent) are listed with their pixels' colour codes (``Scanner.scan``, in the same
pass over the bytes), and everything below visits only them,
per frame and tracked colour, with the weight of a pixel read from its colour's membership table
at the 24-bit code ``(255 - R) + 256 (255 - G) + 65536 (255 - B)`` (``parse.membership_tables``):

* ``colour``: per frame the weight, its column and row moments and the weight on the image
  border (integers: exact), the moments of order <= 2 (or 4) about the weighted centroid of the
  pixels with membership >= ``SOLID`` within ``WINDOW * radius + 2`` px of it (far codec ringing
  never weighs on a second moment; the window is tested per group), and the connected components
  (8-neighbour) of the pixels with membership >= ``BLOB_ALPHA``, labelled on row runs;
* ``eroded``: pixels of an optional colour table (colours no tracked object explains) left after
  a 3x3-cross erosion, per frame.

The loops are compiled by numba, once per machine (~3 s on the first call, then loaded from
numba's cache in ~0.3 s a process, plus 0.2 s to import numba). Why compiled: the numpy version
they replace made ~40 array passes per chunk of frames and took 2.6 s of one core for 2,400
videos of 32x128x128 (the OOD split of ``benchmarks/bench_eval_e2e.py``) against 0.7 s here,
a third of it the one pass over the bytes; the end-to-end ``phylaw eval`` went from 2.1 s to
1.5 s on 2 cores. Integer sums are exact and the float sums run in a fixed order: the same
frames give the same bytes (moments agree with the numpy version to 1e-9 relative; every other
output is identical).
"""

from __future__ import annotations

import functools

import numba
import numpy as np

SCALE = 65535  # weights are tabulated as uint16 a * SCALE
GROUP = 8  # pixels per group: 24 bytes = 3 uint64 words
SOLID = 0.25  # membership counted in the moments
WINDOW = 1.6  # moments: pixels within WINDOW * radius + 2 px of the centroid
BLOB_ALPHA = 0.5  # membership of a blob pixel
MAX_ORDER = 4

_jit = numba.njit(nogil=True)  # helpers: compiled (and cached) into the kernels that call them


def _array(dtype, ndim: int = 1):
    """A C-contiguous array type that every array of ``dtype`` converts to (read-only,
    unaligned: a memory-mapped file's data), so each kernel has one signature."""
    return numba.types.Array(dtype, ndim, "C", readonly=True, aligned=False)


def _kernel(signature):
    """Compile the decorated function for ``signature`` on its first call (not at import),
    cached on disk by numba (in ``__pycache__`` beside this file, else numba's user cache);
    where no cache folder can be written, compiled for this process only."""

    def wrap(fn):
        compiled = None

        @functools.wraps(fn)
        def call(*values):
            nonlocal compiled
            if compiled is None:
                try:
                    compiled = numba.njit(signature, cache=True, nogil=True)(fn)
                except RuntimeError as e:
                    if "no locator available" not in str(e):
                        raise
                    compiled = numba.njit(signature, nogil=True)(fn)
            return compiled(*values)

        return call

    return wrap


_I64, _F64 = numba.types.int64, numba.types.float64
_OUT_I64, _OUT_F64 = numba.types.int64[::1], numba.types.float64[:, ::1]


def orders(order: int) -> tuple[tuple[int, int], ...]:
    """The (p, q) of the moments of order p + q <= ``order`` (<= ``MAX_ORDER``), by order."""
    return tuple((p, n - p) for n in range(order + 1) for p in range(n, -1, -1))


class Scanner:
    """Lists the 8-pixel groups worth looking up and their colour codes; its buffers are reused
    across chunks.

    ``words``: the most uint64 words a chunk holds; ``bits``: channels >= ``256 - 2**bits`` are
    background for every tracked colour (``parse.white_bits``).
    """

    def __init__(self, words: int, bits: int):
        byte = (0xFF << bits) & 0xFF
        self.mask = np.uint64(int.from_bytes(bytes([byte] * 8), "little"))
        self.groups = np.empty(0, dtype=np.int64)
        self.codes = np.empty((0, GROUP), dtype=np.int32)
        self._grow(words // 3 + 1)

    def _grow(self, n: int) -> None:
        self.groups = np.empty(n, dtype=np.int64)
        self.codes = np.empty((n, GROUP), dtype=np.int32)

    def scan(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(groups [n], codes [n, 8])``: the indices (ascending) of the groups of ``flat``
        (uint8 bytes, a whole number of 8-pixel groups) holding a non-background pixel, and the
        24-bit code of each of their pixels (the index of the colour tables)."""
        words = flat.view(np.uint64)
        if len(words) // 3 >= len(self.groups):
            self._grow(len(words) // 3 + 1)
        n = _candidates(words, flat, self.mask, self.groups, self.codes)
        return self.groups[:n], self.codes[:n]


@_kernel(
    _I64(
        _array(numba.types.uint64),
        _array(numba.types.uint8),
        numba.types.uint64,
        _OUT_I64,
        numba.types.int32[:, ::1],
    )
)
def _candidates(words, data, mask, groups, codes):
    n = 0
    for g in range(len(words) // 3):
        if (words[3 * g] & words[3 * g + 1] & words[3 * g + 2] & mask) != mask:
            groups[n] = g
            for j in range(GROUP):
                k = 3 * (GROUP * g + j)
                codes[n, j] = 0xFFFFFF - (data[k] + (data[k + 1] << 8) + (data[k + 2] << 16))
            n += 1
    return n


def colour(
    groups: np.ndarray,
    codes: np.ndarray,
    table: np.ndarray,
    shape: tuple[int, int, int],
    width: int,
    order: int,
    min_area: float,
    min_blob: float,
    rel: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame of a chunk of shape [F, H, Wp] (``width`` real columns; ``groups`` and
    ``codes`` from ``Scanner.scan``) for one colour (``table``: uint16 [2**24] membership):
    ``(sums [F, 4], raw [F, M], count [F])``.

    ``sums``: weight, column moment, row moment and weight on the border (units of 1/SCALE
    pixel); ``raw``: moments (``orders(order)``; units of 1/SCALE pixel) about the weighted
    centroid of the solid pixels (membership >= ``SOLID``) of the groups reaching within
    ``WINDOW * radius + 2`` px of it, where ``radius`` is that of a disc of the frame's area;
    zero where the frame holds less than ``min_area`` px of weight (``central`` makes them
    central moments); ``count``: the blobs (>= ``BLOB_ALPHA`` membership, 8-neighbour) of at
    least ``min_blob`` pixels and ``rel`` times the frame's largest.
    """
    f, h, wp = shape
    pq = np.asarray(orders(order), dtype=np.int64)
    sums = np.zeros((f, 4))
    raw = np.zeros((f, len(pq)))
    count = np.zeros(f, dtype=np.int64)
    solid, member = int(np.ceil(SOLID * SCALE)), int(BLOB_ALPHA * SCALE + 0.5)
    limits = np.asarray([min_area * SCALE, WINDOW, min_blob, rel])
    dims = np.asarray([h, wp // GROUP, width, solid, member], dtype=np.int64)
    _colour(groups, codes, table, dims, limits, pq, sums, raw, count)
    return sums, raw, count


@_kernel(
    numba.types.void(
        _array(_I64),
        _array(numba.types.int32, 2),
        _array(numba.types.uint16),
        _array(_I64),
        _array(_F64),
        _array(_I64, 2),
        _OUT_F64,
        _OUT_F64,
        _OUT_I64,
    )
)
def _colour(groups, codes, table, dims, limits, pq, sums, raw, count):
    h, per_row, width, solid, member = dims[0], dims[1], dims[2], dims[3], dims[4]
    min_w, window, min_blob, rel = limits[0], limits[1], limits[2], limits[3]
    n = len(groups)
    frame, row, col0 = _locate(groups, h, per_row)
    weight, bits = np.empty((n, GROUP), np.int64), np.empty(n, np.int64)
    per_group = np.empty((n, 3), np.int64)  # weight, sum_j j w_j, weight on the border
    for i in range(n):
        _group(codes[i], table, member, weight[i], bits, i, per_group[i])
        if row[i] == 0 or row[i] == h - 1:
            per_group[i, 2] = per_group[i, 0]
        else:
            if col0[i] == 0:
                per_group[i, 2] += weight[i, 0]
            if col0[i] <= width - 1 < col0[i] + GROUP:
                per_group[i, 2] += weight[i, width - 1 - col0[i]]
    runs = np.empty((4 * n + 1, 5), np.int64)  # row, first, last column, parent, size
    i0 = 0
    while i0 < n:
        fr, i1 = frame[i0], _span(frame, i0)
        tot = sx = sy = edge = 0  # integers: exact
        for i in range(i0, i1):
            tot += per_group[i, 0]
            sx += per_group[i, 0] * col0[i] + per_group[i, 1]
            sy += per_group[i, 0] * row[i]
            edge += per_group[i, 2]
        sums[fr, 0], sums[fr, 1], sums[fr, 2], sums[fr, 3] = tot, sx, sy, edge
        if tot >= min_w:
            cx, cy = sx / tot, sy / tot
            reach = window * np.sqrt(tot / SCALE / np.pi) + 2.0
            _moments(weight[i0:i1], row[i0:i1], col0[i0:i1], cx, cy, reach, solid, pq, raw[fr])
        count[fr] = _blobs(bits[i0:i1], row[i0:i1], col0[i0:i1], runs, min_blob, rel)
        i0 = i1


@_jit
def _locate(groups, h, per_row):
    """Frame, row and first column of each group of a chunk (``per_row`` groups a row)."""
    frame, row, col0 = np.empty_like(groups), np.empty_like(groups), np.empty_like(groups)
    for i in range(len(groups)):
        frame[i], rest = divmod(groups[i], h * per_row)
        row[i], c = divmod(rest, per_row)
        col0[i] = c * GROUP
    return frame, row, col0


@_jit
def _span(frame, i0):
    """The end of the groups of frame ``frame[i0]`` from ``i0`` (groups are in frame order)."""
    i1 = i0
    while i1 < len(frame) and frame[i1] == frame[i0]:
        i1 += 1
    return i1


@_jit
def _group(codes, table, member, weight, bits, i, out):
    """Weights of one group's 8 pixels, the bits of its blob pixels and ``out`` = (sum w_j,
    sum j w_j, 0)."""
    s = sj = m = 0
    for j in range(GROUP):
        w = table[codes[j]]
        weight[j] = w
        s += w
        sj += j * w
        if w >= member:
            m |= 1 << j
    bits[i] = m
    out[0], out[1], out[2] = s, sj, 0


@_jit
def _moments(weight, row, col0, cx, cy, reach, solid, pq, raw):
    """Add to ``raw`` [M] the moments about (cx, cy) of the solid pixels of one frame's groups
    that reach within ``reach`` px of it."""
    bq = np.empty(MAX_ORDER + 1)
    for i in range(len(row)):
        b = row[i] - cy
        a = col0[i] - cx
        near = max(a, -(a + GROUP - 1), 0.0)
        if near * near + b * b > reach * reach:
            continue
        t0 = t1 = t2 = t3 = t4 = 0.0  # t_m = sum_j w_j x_j^m (one row: one b)
        for j in range(GROUP):
            w = weight[i, j]
            if w >= solid:
                x = a + j
                wx = w * x
                t0 += w
                t1 += wx
                wx *= x
                t2 += wx
                wx *= x
                t3 += wx
                t4 += wx * x
        if t0 == 0.0:
            continue
        bq[0] = 1.0
        for m in range(1, MAX_ORDER + 1):
            bq[m] = bq[m - 1] * b
        for k in range(len(pq)):
            p = pq[k, 0]
            t = t0 if p == 0 else t1 if p == 1 else t2 if p == 2 else t3 if p == 3 else t4
            raw[k] += t * bq[pq[k, 1]]


@_jit
def _blobs(bits, row, col0, runs, min_blob, rel):
    """Blobs of one frame's groups (``bits``: their member pixels): runs of member pixels per
    row, joined when they touch on consecutive rows; those of at least ``min_blob`` pixels and
    ``rel`` times the largest."""
    nr = 0
    for i in range(len(bits)):
        if bits[i] == 0:
            continue
        for j in range(GROUP):
            if not (bits[i] >> j) & 1:
                continue
            col = col0[i] + j
            if nr > 0 and runs[nr - 1, 0] == row[i] and runs[nr - 1, 2] == col - 1:
                runs[nr - 1, 2] = col
            else:
                runs[nr, 0], runs[nr, 1], runs[nr, 2], runs[nr, 3] = row[i], col, col, nr
                nr += 1
    if nr == 0:
        return 0
    _join_rows(nr, runs)
    runs[:nr, 4] = 0
    for r in range(nr):
        runs[_root(runs[:, 3], r), 4] += runs[r, 2] - runs[r, 1] + 1
    largest = runs[:nr, 4].max()
    count = 0
    for r in range(nr):
        if runs[r, 3] == r and runs[r, 4] >= min_blob and runs[r, 4] >= rel * largest:
            count += 1
    return count


@_jit
def _join_rows(nr, runs):
    """Join the runs (in row order) that touch a run of the previous row, diagonals included."""
    lo = hi = r = 0  # runs lo:hi: the previous row's
    while r < nr:
        e = r
        while e < nr and runs[e, 0] == runs[r, 0]:
            e += 1
        if hi > lo and runs[lo, 0] == runs[r, 0] - 1:
            for a in range(r, e):
                for s in range(lo, hi):
                    if runs[s, 1] <= runs[a, 2] + 1 and runs[s, 2] >= runs[a, 1] - 1:
                        _union(runs[:, 3], a, s)
        lo, hi, r = r, e, e


@_jit
def _union(parent, a, b):
    ra, rb = _root(parent, a), _root(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)


@_jit
def _root(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def central(raw: np.ndarray, pq: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Moments about an arbitrary origin, [..., M] in the order ``pq`` (``orders(n)``), ->
    central moments about their own centroid (the binomial shift), same shape; NaN where the
    mass is 0."""
    m = {key: raw[..., k] for k, key in enumerate(pq)}
    with np.errstate(divide="ignore", invalid="ignore"):
        dx, dy = -m[(1, 0)] / m[(0, 0)], -m[(0, 1)] / m[(0, 0)]
    out = np.empty_like(raw)
    binom = [[1], [1, 1], [1, 2, 1], [1, 3, 3, 1], [1, 4, 6, 4, 1]]
    for k, (p, q) in enumerate(pq):
        acc = np.zeros_like(m[(0, 0)])
        for i in range(p + 1):
            for j in range(q + 1):
                acc = acc + binom[p][i] * binom[q][j] * dx ** (p - i) * dy ** (q - j) * m[(i, j)]
        out[..., k] = acc
    out[~(m[(0, 0)] > 0)] = np.nan
    return out


def eroded(
    groups: np.ndarray,
    codes: np.ndarray,
    table: np.ndarray,
    shape: tuple[int, int, int],
    width: int,
) -> np.ndarray:
    """Pixels of a chunk (as in ``colour``) whose colour is set in ``table`` (bool [2**24])
    and whose 4 neighbours in the frame are set too, per frame: int64 [F] (a 3x3-cross
    erosion; pixels outside the frame count as unset)."""
    f, h, wp = shape
    out = np.zeros(f, dtype=np.int64)
    _eroded(groups, codes, table, np.asarray([h, wp, width], dtype=np.int64), out)
    return out


@_kernel(
    numba.types.void(
        _array(_I64),
        _array(numba.types.int32, 2),
        _array(numba.types.boolean),
        _array(_I64),
        _OUT_I64,
    )
)
def _eroded(groups, codes, table, dims, out):
    h, wp, width = dims[0], dims[1], dims[2]
    hit = np.zeros((len(groups), GROUP), dtype=np.bool_)
    for i in range(len(groups)):
        for j in range(GROUP):
            hit[i, j] = table[codes[i, j]]
    some = np.flatnonzero(hit.sum(axis=1))  # the groups with a pixel of the table
    frame, row, col0 = _locate(groups[some], h, wp // GROUP)
    mark = np.zeros((h, wp), dtype=np.bool_)
    i0 = 0
    while i0 < len(some):
        i1 = _span(frame, i0)
        for step in range(3):  # mark, count, clear
            for k in range(i0, i1):
                r = row[k]
                for j in range(GROUP):
                    c = col0[k] + j
                    if not hit[some[k], j]:
                        continue
                    if step == 0:
                        mark[r, c] = True
                    elif step == 2:
                        mark[r, c] = False
                    elif 0 < c < width - 1 and 0 < r < h - 1:
                        if mark[r, c - 1] and mark[r, c + 1] and mark[r - 1, c] and mark[r + 1, c]:
                            out[frame[k]] += 1
        i0 = i1

"""The pixel scan under ``eval.parse``: every per-frame sum a video's objects need, in one pass.

A frame is scanned once as 64-bit words against pure white; only 64-pixel blocks with a flagged
word are copied out and their 8-pixel *groups* tested against the background band (channels
>= ``256 - 2**bits``, which no tracked colour can weigh); the few groups left (a ball video
touches a few per cent of them) are decoded into 24-bit colour codes, and everything below is
computed on those groups only, per frame and tracked colour:

* ``weights``: the membership weight of each pixel (a table lookup, ``membership_tables``);
* ``sums``: weight, its column and row moments and the weight on the image border (for the
  centroid, the area and whether the object touches the border);
* ``moments``: central moments of order <= 2 (or 4) about the frame's centroid, of the pixels with
  membership >= ``SOLID`` within ``WINDOW * radius + 2`` px (far codec ringing never weighs on a
  second moment); computed per group from the sums ``sum_j j^m w_j`` (m <= 4) of its 8 pixels;
* ``blobs``: connected components (8-neighbour) of the pixels with membership >= 1/2, found on
  row runs (a ball is one run per row) with a sparse-graph labelling;
* ``foreign``: pixels of an optional colour table (colours no tracked object explains) left
  after a 3x3-cross erosion, per frame.

numpy and scipy only: torch's CPU kernels were slower at these small, gather-heavy steps. No
BLAS call either (the 8-pixel sums are einsum loops): OpenBLAS's threads spin beside the
evaluator's worker processes and cost a third of the wall time on 2 cores (measured).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCALE = 65535  # weights are tabulated as uint16 a * SCALE
GROUP = 8  # pixels per group: 24 bytes = 3 uint64 words
SOLID = 0.25  # membership counted in the moments
WINDOW = 1.6  # moments: pixels within WINDOW * radius + 2 px of the centroid
BLOB_ALPHA = 0.5  # membership of a blob pixel
MAX_ORDER = 4


def orders(order: int) -> tuple[tuple[int, int], ...]:
    """The (p, q) of the moments of order p + q <= ``order`` (<= ``MAX_ORDER``), by order."""
    return tuple((p, n - p) for n in range(order + 1) for p in range(n, -1, -1))


_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)  # 8 white bytes
_J = np.arange(GROUP, dtype=np.float64)
_J32 = _J.astype(np.float32)
_POWERS = np.stack([_J**m for m in range(5)]).astype(np.float32)  # [5, 8]
_BINOM = [[1], [1, 1], [1, 2, 1], [1, 3, 3, 1], [1, 4, 6, 4, 1]]


def _rows(words: np.ndarray, width: int) -> np.ndarray:
    """Contiguous uint64 ``words`` as a 1-D array of ``width``-word records (a view)."""
    return words.view(np.dtype((np.void, 8 * width)))


def codes(words: np.ndarray) -> np.ndarray:
    """Table indices of the 8 pixels of each group from its 3 little-endian words [n, 3]:
    ``(255 - R) + 256 (255 - G) + 65536 (255 - B)``, int64 [8, n] (row j: pixel j)."""
    a, b, c = words.T.copy()  # three contiguous rows
    out = np.empty((GROUP, len(words)), dtype=np.uint64)
    for j, (word, shift) in enumerate(((a, 0), (a, 24), (a, 48), (b, 8), (b, 32), (b, 56))):
        np.right_shift(word, np.uint64(shift), out=out[j])
    out[2] |= b << np.uint64(16)  # pixel 2 spans words a and b, pixel 5 words b and c
    out[5] |= c << np.uint64(8)
    np.right_shift(c, np.uint64(16), out=out[6])
    np.right_shift(c, np.uint64(40), out=out[7])
    out &= np.uint64(0xFFFFFF)
    out ^= np.uint64(0xFFFFFF)  # 255 - value: near-white noise shares a few table lines
    return out.view(np.int64)


class Scanner:
    """Finds the 8-pixel groups worth looking up; buffers reused across chunks.

    ``words``: the most uint64 words a chunk holds; ``bits``: channels >= ``256 - 2**bits`` are
    background for every tracked colour (``parse.white_bits``).
    """

    def __init__(self, words: int, bits: int):
        byte = (0xFF << bits) & 0xFF
        self.mask = np.uint64(int.from_bytes(bytes([byte] * 8), "little"))
        self.flags = np.zeros(words, dtype=bool)  # page-faulted once, not per chunk

    def groups(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(groups [n], codes [8, n])`` of the groups of ``flat`` (uint8 bytes, a whole number
        of 8-pixel groups) holding a non-background pixel.

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
        # rows gathered as 192-byte records: ndarray.take(axis=0) on [n, 24] uint64 runs
        # ~10x slower here (a per-element loop), fancy indexing ~1.3x slower
        cand = _rows(words[:nw], 24).take(active).view(np.uint64).reshape(-1, 3)  # [m * 8, 3]
        first = (active[:, None] * GROUP + np.arange(GROUP)).reshape(-1)
        if nw < len(words):  # a last partial block: its few groups are all candidates
            cand = np.concatenate([cand, words[nw:].reshape(-1, 3)])
            first = np.concatenate([first, np.arange(nw // 3, len(words) // 3)])
        both = np.bitwise_and(cand[:, 0], cand[:, 1])
        np.bitwise_and(both, cand[:, 2], out=both)
        np.bitwise_and(both, self.mask, out=both)
        keep = np.flatnonzero(np.not_equal(both, self.mask))
        return first[keep], codes(
            _rows(cand.reshape(-1), 3).take(keep).view(np.uint64).reshape(-1, 3)
        )


@dataclass
class Chunk:
    """Where the candidate groups of a chunk of F frames [F, H, Wp] lie."""

    frames: int
    height: int
    width: int  # real width (columns beyond it are white padding)
    padded: int  # Wp, a multiple of GROUP
    groups: np.ndarray  # [n] group index within the chunk, ascending
    frame: np.ndarray  # [n] frame of each group, non-decreasing
    row: np.ndarray  # [n] float64 row of each group
    col0: np.ndarray  # [n] float64 first column of each group
    starts: np.ndarray  # [F] first group of each frame (searchsorted)
    has: np.ndarray  # [F] bool: the frame has a group

    @classmethod
    def locate(cls, groups: np.ndarray, shape: tuple[int, int, int], width: int) -> Chunk:
        f, h, wp = shape
        per_row = wp // GROUP
        row_all = groups // per_row  # frame * H + row
        frame = row_all // h
        starts = np.searchsorted(frame, np.arange(f))
        has = np.diff(np.append(starts, len(groups))) > 0
        col0 = ((groups - row_all * per_row) * GROUP).astype(np.float64)
        row = (row_all - frame * h).astype(np.float64)
        return cls(f, h, width, wp, groups, frame, row, col0, starts, has)

    def per_frame(self, values: np.ndarray, sel: np.ndarray | None = None) -> np.ndarray:
        """Sums over each frame's groups of ``values`` [M, n] (or [M, len(sel)] over the groups
        ``sel``, ascending): [M, F] float64."""
        out = np.zeros((len(values), self.frames))
        if sel is None:
            starts, has = self.starts, self.has
        else:
            frame = self.frame[sel]
            starts = np.searchsorted(frame, np.arange(self.frames))
            has = np.diff(np.append(starts, len(frame))) > 0
        if has.any():
            out[:, has] = np.add.reduceat(values, starts[has], axis=1)
        return out

    def pixel_index(self, member: np.ndarray) -> np.ndarray:
        """Sorted flat indices (frame * H * Wp + row * Wp + col) of the pixels set in
        ``member`` bool [8, n]."""
        g = np.flatnonzero(member.any(axis=0))
        idx = self.groups[g, None] * GROUP + np.arange(GROUP)  # [m, 8], ascending in C order
        return idx[member[:, g].T]


def sums(chunk: Chunk, wf: np.ndarray) -> np.ndarray:
    """Per frame: weight, column moment, row moment, weight on the border; [4, F] (units of
    1/SCALE pixel). ``wf`` float32 [8, n] weights."""
    total = wf.sum(axis=0, dtype=np.float64)
    edge_row = (chunk.row == 0) | (chunk.row == chunk.height - 1)
    first_col = chunk.col0 == 0
    last_col = chunk.col0 == (chunk.width - 1) // GROUP * GROUP
    values = np.empty((4, len(total)))
    values[0] = total
    values[1] = total * chunk.col0 + np.einsum("j,jn->n", _J32, wf)
    values[2] = total * chunk.row
    values[3] = total * edge_row + wf[0] * first_col + wf[(chunk.width - 1) % GROUP] * last_col
    return chunk.per_frame(values)


def moments(
    chunk: Chunk, solid: np.ndarray, centre: np.ndarray, radius: np.ndarray, order: int = 2
) -> np.ndarray:
    """Central moments mu_pq (``orders(order)``) per frame, float64 [M, F], in pixels (mass in
    px), of the solid weights ``solid`` [8, n] (membership >= ``SOLID``, else 0) of the groups
    that reach within ``WINDOW * radius + 2`` px of ``centre`` [F, 2] (col, row; NaN: no
    object; ``radius`` [F] px). The window is tested per 8-pixel group: it only keeps far codec
    ringing out of the moments."""
    cx, cy = np.nan_to_num(centre.T, nan=-1e6)  # [F]
    reach = WINDOW * np.nan_to_num(radius) + 2.0  # [F]
    fr = chunk.frame
    b = chunk.row - cy[fr]
    a = chunk.col0 - cx[fr]  # column offset of pixel 0 of the group
    near = np.maximum(np.maximum(a, -(a + GROUP - 1)), 0.0)  # column gap to the centre
    sel = np.flatnonzero(near * near + b * b <= reach[fr] ** 2)
    w = solid[:, sel]
    has = w.any(axis=0)
    sel, w, a, b = sel[has], w[:, has], a[sel[has]], b[sel[has]]
    t = np.einsum("mj,jn->mn", _POWERS[: order + 1], w).astype(np.float64)  # sum_j j^m w_j
    up = [t[0], a * t[0] + t[1]]  # sum_j w_j (a + j)^p, by the binomial theorem
    a2 = a * a
    up.append(a2 * t[0] + 2 * a * t[1] + t[2])
    if order >= 3:
        up.append(a * (a2 * t[0] + 3 * a * t[1] + 3 * t[2]) + t[3])
    if order >= 4:
        up.append(a2 * (a2 * t[0] + 4 * a * t[1] + 6 * t[2]) + 4 * a * t[3] + t[4])
    bq = [None, b, b * b]
    if order >= 3:
        bq += [bq[2] * b, bq[2] * bq[2]]
    frame = fr[sel]
    starts = np.searchsorted(frame, np.arange(chunk.frames))
    present = np.diff(np.append(starts, len(frame))) > 0
    pq = orders(order)
    raw = np.zeros((len(pq), chunk.frames))
    if present.any():
        tmp = np.empty_like(a)
        for k, (p, q) in enumerate(pq):
            v = up[p] if q == 0 else np.multiply(up[p], bq[q], out=tmp)
            raw[k, present] = np.add.reduceat(v, starts[present])
    return central(raw / SCALE, pq)


def central(raw: np.ndarray, pq: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Moments about an arbitrary origin, [M, ...] in the order ``pq`` (``orders(n)``), ->
    central moments about their own centroid (the binomial shift), same shape; NaN where the
    mass is 0."""
    m = {key: raw[k] for k, key in enumerate(pq)}
    with np.errstate(divide="ignore", invalid="ignore"):
        dx, dy = -m[(1, 0)] / m[(0, 0)], -m[(0, 1)] / m[(0, 0)]
    out = np.empty_like(raw)
    for k, (p, q) in enumerate(pq):
        acc = np.zeros_like(m[(0, 0)])
        for i in range(p + 1):
            for j in range(q + 1):
                coef = _BINOM[p][i] * _BINOM[q][j]
                acc = acc + coef * dx ** (p - i) * dy ** (q - j) * m[(i, j)]
        out[k] = acc
    out[:, ~(m[(0, 0)] > 0)] = np.nan
    return out


def blobs(
    chunk: Chunk, weight: np.ndarray, min_px: float, rel: float
) -> tuple[np.ndarray, np.ndarray]:
    """Connected components (8-neighbour, within a frame) of the pixels with membership >=
    ``BLOB_ALPHA``: ``(count [F], largest [F])``: the components of at least ``min_px`` pixels
    and ``rel`` times the frame's largest, and the size in pixels of the largest.

    Fast path: a frame whose member pixels form one run per row, on consecutive rows whose runs
    touch, is one blob (a ball always is); only the other frames are labelled pixel by pixel.
    """
    f, h = chunk.frames, chunk.height
    count, largest = np.zeros(f, dtype=np.int64), np.zeros(f, dtype=np.int64)
    member = weight >= int(BLOB_ALPHA * SCALE + 0.5)
    g = np.flatnonzero(member.any(axis=0))
    if g.size == 0:
        return count, largest
    m = member[:, g]
    cnt = m.sum(axis=0)
    first = chunk.col0[g] + m.argmax(axis=0)
    last = chunk.col0[g] + (GROUP - 1 - m[::-1].argmax(axis=0))
    key = chunk.groups[g] // (chunk.padded // GROUP)  # frame * H + row, non-decreasing
    rs = np.flatnonzero(np.r_[True, np.diff(key) != 0])
    rkey, rframe = key[rs], key[rs] // h
    r_first = np.minimum.reduceat(first, rs)
    r_last = np.maximum.reduceat(last, rs)
    r_cnt = np.add.reduceat(cnt, rs)
    complex_ = np.zeros(f, dtype=bool)
    complex_[rframe[r_last - r_first + 1 != r_cnt]] = True  # a row with two runs
    touch = (rkey[1:] == rkey[:-1] + 1) & (r_first[1:] <= r_last[:-1] + 1)
    touch &= r_last[1:] >= r_first[:-1] - 1
    complex_[rframe[1:][(rframe[1:] == rframe[:-1]) & ~touch]] = True  # rows apart
    size = np.bincount(rframe, weights=r_cnt, minlength=f).astype(np.int64)
    simple = ~complex_ & (size > 0)
    largest[simple] = size[simple]
    count[simple] = size[simple] >= min_px
    if complex_.any():
        sub = member * complex_[chunk.frame][None, :]
        c, lg = _label(chunk, sub, min_px, rel)
        count[complex_], largest[complex_] = c[complex_], lg[complex_]
    return count, largest


def _label(chunk: Chunk, member: np.ndarray, min_px: float, rel: float):
    """``blobs`` by labelling: runs of member pixels per row, joined when they touch on
    consecutive rows (diagonals included), components by a sparse-graph search."""
    from scipy import sparse  # only frames that are not one run per row get here
    from scipy.sparse import csgraph

    f, h, wp = chunk.frames, chunk.height, chunk.padded
    idx = chunk.pixel_index(member)
    count, largest = np.zeros(f, dtype=np.int64), np.zeros(f, dtype=np.int64)
    if idx.size == 0:
        return count, largest
    row_id = idx // wp  # frame * H + row
    brk = np.flatnonzero((np.diff(idx) != 1) | (np.diff(row_id) != 0)) + 1
    start = np.concatenate([[0], brk])
    end = np.concatenate([brk, [len(idx)]]) - 1
    rid, c0, c1 = row_id[start], idx[start] % wp, idx[end] % wp
    length = end - start + 1
    # Runs of the previous row (same frame) that touch a run, diagonals included.
    lo = np.searchsorted(rid, rid - 1, "left")
    hi = np.searchsorted(rid, rid - 1, "right")
    hi = np.where(rid % h == 0, lo, hi)  # the first row of a frame has no previous row
    n_cand = hi - lo
    run_b = np.repeat(np.arange(len(rid)), n_cand)
    offs = np.arange(n_cand.sum()) - np.repeat(np.cumsum(n_cand) - n_cand, n_cand)
    run_a = lo[run_b] + offs
    touch = (c0[run_a] <= c1[run_b] + 1) & (c1[run_a] >= c0[run_b] - 1)
    run_a, run_b = run_a[touch], run_b[touch]
    graph = sparse.coo_matrix(
        (np.ones(len(run_a), dtype=np.int8), (run_a, run_b)), shape=(len(rid), len(rid))
    )
    n, label = csgraph.connected_components(graph, directed=False)
    size = np.bincount(label, weights=length, minlength=n)
    frame = np.zeros(n, dtype=np.int64)
    frame[label] = rid // h  # every run of a component is in one frame
    np.maximum.at(largest, frame, size.astype(np.int64))
    big = (size >= min_px) & (size >= rel * largest[frame])
    count += np.bincount(frame[big], minlength=f)
    return count, largest


def eroded(chunk: Chunk, member: np.ndarray) -> np.ndarray:
    """Pixels set in ``member`` bool [8, n] whose 4 neighbours (in the frame) are set too, per
    frame: int64 [F] (a 3x3-cross erosion; pixels outside the frame count as unset)."""
    idx = chunk.pixel_index(member)
    f, h, wp, w = chunk.frames, chunk.height, chunk.padded, chunk.width
    if idx.size == 0:
        return np.zeros(f, dtype=np.int64)
    col, row = idx % wp, (idx // wp) % h

    def has(q: np.ndarray) -> np.ndarray:
        k = np.minimum(np.searchsorted(idx, q), len(idx) - 1)
        return idx[k] == q

    ok = (col > 0) & (col < w - 1) & (row > 0) & (row < h - 1)
    ok &= has(idx - 1) & has(idx + 1) & has(idx - wp) & has(idx + wp)
    return np.bincount(idx[ok] // (h * wp), minlength=f).astype(np.int64)

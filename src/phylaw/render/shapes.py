"""Anti-aliased rasteriser for the combinatorial scenes: discs, rotated bars, jars and sticks.

Input is a ``physics.state.SceneTrajectory`` (body origins ``pos`` [B, T, N, 2] and ``angle``
[B, T, N], and per body its convex ``parts``, disc ``radius`` and ``colour``); output uint8 RGB
videos [B, T, H, W, 3] on white, in the bodies' colours (PHYRE's: dynamic gray, static black,
the red ball ``PHYRE_RED``; ``render.palette``), with ``render.geometry.PixelGrid``'s world ->
pixel mapping, so 512 px is PHYRE's canvas pixel for pixel and 256 px the paper's videos.
Square grids only.

Coverage profiles are those of ``render.coverage`` (one-pixel ramps across polygon edges, exact
in area for parts at least one pixel thick; the smoothstep discs of ``render.raster``). A body is
the union of its convex parts, painted part after part: where two parts overlap (a jar's corners,
the sticks' crossing) edge coverages combine as ``1 - (1 - a1)(1 - a2)``. Bodies are composited in
slot order, ``c = c (1 - a) + colour a`` in float32, rounded to nearest.

Speed. Nothing is evaluated on the full frame. A body's coverage (a *patch*, ``coverage.Patches``)
is computed once per distinct pose: static bodies once per video, a body at rest (asleep in the
engine, or creeping by less than ``POSE_EPS_PX``, a move that changes no pixel by more than half
a grey level) once per rest pose. Patches are kept sparse and painted by scatter, solid pixels
with one write per channel and edge pixels blended. A frame in which no body moved is a copy of
the previous one. Measured ~6 ms of CPU per 32 x 256 x 256 video on one core (about 70 % making
patches, 30 % painting). Pass a reused ``out`` buffer: fresh memory costs page faults.
"""

from __future__ import annotations

import numpy as np

from phylaw import PhylawError
from phylaw.physics.state import SceneTrajectory
from phylaw.render.coverage import patches
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import BACKGROUND, palette_table

POSE_EPS_PX = 0.5 / 255  # smaller moves change no pixel by more than half a grey level


def _ragged_arange(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for every (s, c). int64 [sum(counts)]."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    shift = np.repeat(np.asarray(starts, dtype=np.int64) - (ends - counts), counts)
    return np.arange(total, dtype=np.int64) + shift


def _instances(
    pos: np.ndarray, angle: np.ndarray, present: np.ndarray, reach_px: np.ndarray, scale: float
):
    """Distinct poses per body: which frames need a new patch and which patch each frame shows.

    A body gets a new patch when no point of it has moved by more than ``POSE_EPS_PX`` since
    its current patch was made (tracked from that pose, so errors never accumulate): ``reach_px``
    [B, N] bounds the distance of its points from its origin, so a pose change moves a point by
    at most ``|d pos| scale + |d angle| reach_px``. Returns ``(first, active)``: ``first`` bool
    [B, T, N] marks frames that make a new patch; ``active`` int64 [B, T, N] is the index (into
    ``np.flatnonzero(first)``) of the patch shown in each frame, -1 where nothing is drawn.
    """
    ok = present[:, None, :] & np.isfinite(pos).all(-1) & np.isfinite(angle)
    first = np.zeros_like(ok)
    first[:, 0] = ok[:, 0]
    ref_pos, ref_angle = pos[:, 0].copy(), angle[:, 0].copy()
    with np.errstate(invalid="ignore"):
        for k in range(1, pos.shape[1]):
            move = np.linalg.norm(pos[:, k] - ref_pos, axis=-1) * scale
            move += np.abs(angle[:, k] - ref_angle) * reach_px
            new = ok[:, k] & ~(ok[:, k - 1] & (move <= POSE_EPS_PX))
            first[:, k] = new
            ref_pos[new], ref_angle[new] = pos[:, k][new], angle[:, k][new]
    number = np.full(first.shape, -1, dtype=np.int64)
    number[first] = np.arange(int(first.sum()))
    t_index = np.arange(pos.shape[1])[None, :, None]
    src = np.maximum.accumulate(np.where(first, t_index, -1), axis=1)  # frame of the patch
    active = np.take_along_axis(number, np.maximum(src, 0), axis=1)
    return first, np.where(ok & (src >= 0), active, -1)


def _check(traj: SceneTrajectory, grid: PixelGrid, out) -> None:
    pos = traj.pos
    if pos.ndim != 4 or pos.shape[-1] != 2:
        raise PhylawError(f"render_scenes: pos must have shape [B, T, N, 2], got {pos.shape}")
    b, t, n, _ = pos.shape
    for name, want in (
        ("angle", (b, t, n)),
        ("colour", (b, n)),
        ("radius", (b, n)),
    ):
        if np.shape(getattr(traj, name)) != want:
            raise PhylawError(
                f"render_scenes: {name} must have shape {want}, got {np.shape(getattr(traj, name))}"
            )
    if np.shape(traj.parts)[:2] != (b, n) or np.shape(traj.parts)[-2:] != (4, 2):
        raise PhylawError(f"render_scenes: parts must be [B, N, P, 4, 2], got {traj.parts.shape}")
    if not grid.is_square:
        raise PhylawError("render_scenes: scenes are drawn on square grids only")
    want = (b, t, grid.height_px, grid.width_px, 3)
    if out is not None and (
        out.shape != want or out.dtype != np.uint8 or not out.flags.c_contiguous
    ):
        raise PhylawError(
            f"render_scenes: out must be a C-contiguous uint8 array of shape {want}, "
            f"got {out.dtype} {out.shape}"
        )


def render_scenes(
    traj: SceneTrajectory, grid: PixelGrid, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Draw the B scenes of T frames of ``traj``. Returns uint8 [B, T, H, W, 3] (``out`` if
    given). ``grid``: a square pixel grid. Bodies with a non-finite pose are not drawn in that
    frame."""
    _check(traj, grid, out)
    pos = np.asarray(traj.pos, dtype=np.float64)
    angle = np.asarray(traj.angle, dtype=np.float64)
    b, t, n, _ = pos.shape
    size = grid.width_px
    if out is None:
        out = np.empty((b, t, size, size, 3), dtype=np.uint8)
    if b * t == 0:
        return out
    frames = out.reshape(b * t, size * size, 3)
    scale = float(grid.px_per_world[0])
    body_quads = np.asarray(traj.parts, dtype=np.float64)  # [B, N, P, 4, 2] world units
    body_radius = np.asarray(traj.radius, dtype=np.float64)  # [B, N]
    reach = np.fmax(
        np.linalg.norm(np.nan_to_num(body_quads), axis=-1).max(axis=(-1, -2)),
        np.nan_to_num(body_radius),
    )
    present = np.asarray(traj.colour) >= 0
    first, active = _instances(pos, angle, present, reach * scale, scale)
    bi, ti, ni = np.nonzero(first)
    quads, radius = body_quads[bi, ni], body_radius[bi, ni]  # [M, P, 4, 2], [M]
    pose_pos, pose_angle = pos[bi, ti, ni], angle[bi, ti, ni]
    c, s = np.cos(pose_angle)[:, None, None], np.sin(pose_angle)[:, None, None]
    world = np.stack(
        [
            c * quads[..., 0] - s * quads[..., 1] + pose_pos[:, None, None, 0],
            s * quads[..., 0] + c * quads[..., 1] + pose_pos[:, None, None, 1],
        ],
        axis=-1,
    )
    sparse = patches(
        grid.world_to_px(world), grid.world_to_px(pose_pos), np.nan_to_num(radius) * scale, size
    )
    changed = np.ones((b, t), dtype=bool)
    changed[:, 1:] = (active[:, 1:] != active[:, :-1]).any(-1)
    channels = [frames.reshape(-1, 3)[:, ch] for ch in range(3)]  # strided views: fast scatter
    if len(set(BACKGROUND)) == 1:
        out.fill(BACKGROUND[0])  # a memset; broadcasting an RGB triple is 40x slower
    else:
        for ch in range(3):
            channels[ch].fill(BACKGROUND[ch])
    rgb = palette_table()[np.maximum(np.asarray(traj.colour), 0)]  # [B, N, 3] uint8
    key = np.flatnonzero(changed.reshape(-1))  # frames drawn; the others are copies
    parts = sparse.solid_count.shape[1]
    for slot in range(n):
        patch = active.reshape(-1, n)[key, slot]
        draw = patch >= 0
        f, p = key[draw], patch[draw]
        colour = rgb[f // t, slot]  # [F, 3]
        base = f * (size * size)
        count = sparse.solid_count[p].reshape(-1)  # [F * parts]: all parts' solid pixels at once
        idx = _ragged_arange(sparse.solid_start[p].reshape(-1), count)
        where = np.repeat(np.repeat(base, parts), count) + sparse.solid_idx[idx]
        for ch in range(3):
            channels[ch][where] = np.repeat(np.repeat(colour[:, ch], parts), count)
        for j in range(parts):  # part by part: two parts' edges may share a pixel
            count = sparse.edge_count[p, j]
            if not count.any():
                continue
            idx = _ragged_arange(sparse.edge_start[p, j], count)
            where = np.repeat(base, count) + sparse.edge_idx[idx]
            alpha = sparse.edge_alpha[idx]
            for ch in range(3):
                value = channels[ch][where].astype(np.float32)
                value += alpha * (np.repeat(colour[:, ch].astype(np.float32), count) - value)
                value += 0.5
                channels[ch][where] = value  # truncating value + 0.5 rounds to nearest
    flat_key = changed.reshape(-1)
    last = 0
    for frame in range(b * t):  # unchanged frames copy the last drawn one (a memcpy each)
        if flat_key[frame]:
            last = frame
        else:
            frames[frame] = frames[last]
    return out

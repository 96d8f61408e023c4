"""Inject abnormalities into ground-truth combinatorial scenes, to validate ``eval.scene_flags``.

Each defect edits one body (``body`` [B], a slot index) of each of B scenes from frame ``start``
[B] to the end, using the ground-truth states (``physics.scenes.SceneTrajectory``: per-body
geometry, per-frame poses) and returns the rendered videos, uint8 [B, T, H, W, 3]. These are the
abnormalities the paper's Fig. 20 shows in generated videos, plus a copy and a colour change:

==============  ================================================================================
defect          edit (from ``start`` on)
==============  ================================================================================
vanish          the body is not drawn
duplicate       a copy of it is drawn at ``offset`` (world units), moving with it
resize          it is drawn scaled by ``scale`` about its origin (every dimension)
squash          it is stretched by ``sqrt(aspect)`` along ``direction`` (from its major axis) and
                shrunk as much across, about its centroid: area kept
break_apart     it is cut across its major axis (through its centre, shifted by ``cut`` of its
                RMS extent) and the two pieces are pulled ``gap`` world units apart
penetrate       it is moved by ``shift`` (world units, ``penetration_shift`` finds one) into body
                ``other`` and carried along rigidly with it (overlapping it)
recolour        it is drawn in ``rgb``
==============  ================================================================================

Vanish, duplicate, resize and penetrate edit states and call the scene renderer
(``render.shapes``), so the result is a clean render. Squash, break and recolour need shapes no
body form has: the body is hidden from ``start`` and its deformed pieces are drawn over the frame
by a supersampled point-in-shape rasteriser (``SUPERSAMPLE`` x ``SUPERSAMPLE`` samples a pixel,
in a window around the body), composited ``p (1 - a) + c a``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import cKDTree

from phylaw.physics.scenes.kinds import colour_of, form_of, local_parts, scene_record
from phylaw.physics.state import WORLD_SIZE, Colour, SceneTrajectory
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import PALETTE
from phylaw.render.shapes import render_scenes

SUPERSAMPLE = 4  # samples per pixel side of the point-in-shape rasteriser
SAMPLE_WORLD = 0.01  # spacing of the points that measure overlaps, world units


# ------------------------------------------------------------------------------ geometry
def _rot(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def _inside(kind: int, dims: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether body-coordinate points ``y`` [..., 2] lie in the body, bool [...]."""
    polys, r = local_parts(int(form_of(np.array(kind))), dims)
    out = (y * y).sum(-1) <= r * r if r > 0 else np.zeros(y.shape[:-1], dtype=bool)
    for q in polys:  # counter-clockwise: inside every edge's left half-plane
        e = np.roll(q, -1, axis=0) - q
        ok = np.ones(y.shape[:-1], dtype=bool)
        for k in range(4):
            ok &= e[k, 0] * (y[..., 1] - q[k, 1]) - e[k, 1] * (y[..., 0] - q[k, 0]) >= 0
        out |= ok
    return out


def _local_points(kind: int, dims: np.ndarray, spacing: float = SAMPLE_WORLD) -> np.ndarray:
    """Points on a ``spacing`` grid inside the body, body coordinates [P, 2]."""
    polys, r = local_parts(int(form_of(np.array(kind))), dims)
    verts = np.concatenate(polys) if polys else np.array([[-r, -r], [r, r]])
    lo, hi = verts.min(0) - spacing, verts.max(0) + spacing
    gx = np.arange(lo[0], hi[0], spacing)
    gy = np.arange(lo[1], hi[1], spacing)
    pts = np.stack(np.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2)
    return pts[_inside(kind, dims, pts)]


def world_points(
    traj: SceneTrajectory, i: int, t: int, spacing: float = SAMPLE_WORLD
) -> np.ndarray:
    """Points on a ``spacing`` grid inside body i of scene 0 of ``traj`` in frame t, world
    coordinates [P, 2]."""
    pts = _local_points(int(traj.kind[0, i]), traj.dims[0, i], spacing)
    return pts @ _rot(float(traj.angle[0, t, i])).T + traj.pos[0, t, i]


def _hits(traj: SceneTrajectory, j: int, t: int, world: np.ndarray) -> np.ndarray:
    """Whether world points [..., 2] lie in body j of scene 0 in frame t, bool [...]."""
    local = (world - traj.pos[0, t, j]) @ _rot(float(traj.angle[0, t, j]))
    return _inside(int(traj.kind[0, j]), traj.dims[0, j], local)


def body_frame(kind: int, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroid [2], major axis (unit vector) [2] and RMS principal extents [2] of a body, in
    body coordinates."""
    pts = _local_points(kind, dims, spacing=SAMPLE_WORLD * 2)
    centre = pts.mean(0)
    val, vec = np.linalg.eigh(np.cov((pts - centre).T))
    return centre, vec[:, 1], np.sqrt(val[::-1])


def overlap_fraction(
    traj: SceneTrajectory,
    i: int,
    j: int,
    t: int,
    shifts: np.ndarray,
    spacing: float = SAMPLE_WORLD,
) -> np.ndarray:
    """Overlap of body i moved by each of ``shifts`` [S, 2] (world) with body j in frame t of
    scene 0 of ``traj``, as a fraction of the smaller body's area (on a ``spacing`` grid), [S]."""
    pts_i = world_points(traj, i, t, spacing)
    n_j = len(_local_points(int(traj.kind[0, j]), traj.dims[0, j], spacing))
    hit = _hits(traj, j, t, pts_i[None] + np.asarray(shifts)[:, None]).sum(-1)
    return hit / max(min(len(pts_i), n_j), 1)


def penetration_shift(
    traj: SceneTrajectory, i: int, j: int, t: int, fraction: float, steps: int = 40
) -> np.ndarray | None:
    """The shortest move of body i towards body j's centroid (scene 0 of ``traj``, frame t) that
    makes them overlap by ``fraction`` of the smaller area: world [2], or None if none does
    (or the moved body would leave the world)."""
    centre = []
    for b in (i, j):
        c, _, _ = body_frame(int(traj.kind[0, b]), traj.dims[0, b])
        centre.append(traj.pos[0, t, b] + _rot(float(traj.angle[0, t, b])) @ c)
    shifts = np.linspace(0.0, 1.0, steps + 1)[1:, None] * (centre[1] - centre[0])
    reach = np.flatnonzero(overlap_fraction(traj, i, j, t, shifts) >= fraction)
    if len(reach) == 0:
        return None
    shift = shifts[reach[0]]
    world = world_points(traj, i, t, SAMPLE_WORLD * 4) + shift
    return shift if ((world > 0) & (world < WORLD_SIZE)).all() else None


def clearance(traj: SceneTrajectory, i: int, t: int) -> float:
    """Distance (world) from body i of scene 0 of ``traj`` to the nearest other body of its
    colour in frame t (inf if none): below ~1 px their blobs merge, hiding a change of shape."""
    colour = colour_of(traj.kind[0])
    used = np.flatnonzero(traj.kind[0] >= 0)
    others = [int(j) for j in used if j != i and colour[j] == colour[i]]
    if not others:
        return float("inf")
    near = np.concatenate([world_points(traj, j, t, 3 * SAMPLE_WORLD) for j in others])
    dist, _ = cKDTree(near).query(world_points(traj, i, t, 3 * SAMPLE_WORLD))
    return float(dist.min())


def copy_is_clear(traj: SceneTrajectory, i: int, t: int, offset: np.ndarray) -> bool:
    """Whether a copy of body i of scene 0 moved by ``offset`` (world) lies inside the world and
    overlaps no body in frame t."""
    world = world_points(traj, i, t, 3 * SAMPLE_WORLD) + offset
    if not ((world > 0.02) & (world < WORLD_SIZE - 0.02)).all():
        return False
    for j in np.flatnonzero(traj.kind[0] >= 0):
        if _hits(traj, int(j), t, world).any():
            return False
        if j != i and _hits(traj, i, t, world_points(traj, int(j), t, 0.03) - offset).any():
            return False
    return True


# ------------------------------------------------------------------------------ drawing
def _render(pos, angle, kind, dims, grid: PixelGrid) -> np.ndarray:
    return render_scenes(scene_record(np.zeros(pos.shape[1]), pos, angle, kind, dims), grid)


def _hidden(traj: SceneTrajectory, body: np.ndarray, start: np.ndarray):
    """Copies of ``pos`` and ``angle`` with ``body`` [B] not drawn from ``start`` [B] on."""
    pos, angle = traj.pos.astype(np.float64), traj.angle.astype(np.float64)
    for b in range(traj.batch_size):
        pos[b, start[b] :, body[b]] = np.nan
    return pos, angle


def _extra_slot(traj: SceneTrajectory, body: np.ndarray, start: np.ndarray, dims_scale, pos_new):
    """Arrays with one more slot per scene: body's kind and ``dims * dims_scale`` [B], drawn at
    ``pos_new`` [B, T, 2] (body's angles) from ``start`` on."""
    b_idx = np.arange(traj.batch_size)
    t = traj.num_frames
    shown = np.arange(t)[None, :] >= np.asarray(start)[:, None]  # [B, T]
    pos = np.concatenate([traj.pos, np.where(shown[..., None], pos_new, np.nan)[:, :, None]], 2)
    angle = np.concatenate([traj.angle, traj.angle[b_idx, :, body][:, :, None]], 2)
    kind = np.concatenate([traj.kind, traj.kind[b_idx, body][:, None]], 1)
    scale = np.asarray(dims_scale, dtype=np.float64)[:, None]
    dims = np.concatenate([traj.dims, (traj.dims[b_idx, body] * scale)[:, None]], 1)
    return pos, angle, kind, dims


def _rgb(kind: int) -> np.ndarray:
    return np.asarray(PALETTE[Colour(int(colour_of(np.array(kind))))], dtype=np.float32)


def _draw_pieces(video, grid: PixelGrid, kind, dims, pos, angle, pieces, rgb, start) -> None:
    """Composite the pieces of one body over frames ``start..`` of ``video`` [T, H, W, 3] in
    place. ``pieces``: list of ``(a, b, keep)``: a body-coordinate point y shows source point
    ``a @ y + b`` of the body, when ``keep(source)`` (None: always)."""
    polys, r = local_parts(int(form_of(np.array(kind))), dims)
    verts = np.concatenate(polys) if polys else r * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1.0]])
    ss = SUPERSAMPLE
    sub = (np.arange(ss) + 0.5) / ss - 0.5
    size = grid.width_px
    for t in range(start, video.shape[0]):
        rot = _rot(float(angle[t]))
        dest = [np.linalg.solve(a, (verts - b).T).T for a, b, _ in pieces]  # piece vertices
        world = np.concatenate(dest) @ rot.T + pos[t]
        px = grid.world_to_px(world)
        lo = np.clip(np.floor(px.min(0)).astype(int) - 1, 0, size - 1)
        hi = np.clip(np.ceil(px.max(0)).astype(int) + 1, 0, size - 1)
        cols = lo[0] + np.arange(hi[0] - lo[0] + 1)
        rows = lo[1] + np.arange(hi[1] - lo[1] + 1)
        cc = (cols[None, :, None, None] + sub[None, None, None, :]).astype(np.float64)
        rr = (rows[:, None, None, None] + sub[None, None, :, None]).astype(np.float64)
        cc, rr = np.broadcast_arrays(cc, rr)  # [h, w, ss, ss]
        y = (grid.px_to_world(np.stack([cc, rr], -1)) - pos[t]) @ rot  # body coordinates
        hit = np.zeros(cc.shape, dtype=bool)
        for a, b, keep in pieces:
            src = y @ a.T + b
            ok = _inside(kind, dims, src)
            if keep is not None:
                ok &= keep(src)
            hit |= ok
        alpha = hit.mean((-1, -2))[..., None].astype(np.float32)  # [h, w, 1]
        win = video[t, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32)
        out = win * (1.0 - alpha) + rgb * alpha
        video[t, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = np.rint(out).astype(np.uint8)


def _redraw(traj, body, start, grid, pieces_of, rgb_of) -> np.ndarray:
    """Hide ``body`` from ``start`` and draw ``pieces_of(b)`` in ``rgb_of(b)`` instead."""
    body, start = np.asarray(body), np.asarray(start)
    pos, angle = _hidden(traj, body, start)
    videos = _render(pos, angle, traj.kind, traj.dims, grid)
    for b in range(traj.batch_size):
        i = int(body[b])
        kind, dims = int(traj.kind[b, i]), traj.dims[b, i].astype(np.float64)
        _draw_pieces(
            videos[b], grid, kind, dims, traj.pos[b, :, i].astype(np.float64),
            traj.angle[b, :, i].astype(np.float64), pieces_of(b), rgb_of(b), int(start[b]),
        )  # fmt: skip
    return videos


# ------------------------------------------------------------------------------ defects
def vanish(traj: SceneTrajectory, body, start, grid: PixelGrid) -> np.ndarray:
    """``body`` [B] is not drawn from ``start`` [B] on. uint8 [B, T, H, W, 3]."""
    pos, angle = _hidden(traj, np.asarray(body), np.asarray(start))
    return _render(pos, angle, traj.kind, traj.dims, grid)


def duplicate(traj: SceneTrajectory, body, start, offset, grid: PixelGrid) -> np.ndarray:
    """A copy of ``body`` is drawn ``offset`` [B, 2] (world) away from ``start`` on."""
    body = np.asarray(body)
    pos_new = traj.pos[np.arange(traj.batch_size), :, body] + np.asarray(offset)[:, None]
    arrays = _extra_slot(traj, body, start, np.ones(len(body)), pos_new)
    return _render(*arrays, grid)


def resize(traj: SceneTrajectory, body, start, scale, grid: PixelGrid) -> np.ndarray:
    """``body`` is drawn with every dimension times ``scale`` [B] (about its origin)."""
    body, start = np.asarray(body), np.asarray(start)
    pos, angle = _hidden(traj, body, start)
    hidden = traj.with_poses(pos, angle)
    pos_new = traj.pos[np.arange(traj.batch_size), :, body]
    return _render(*_extra_slot(hidden, body, start, scale, pos_new), grid)


def squash(traj: SceneTrajectory, body, start, aspect, direction, grid: PixelGrid) -> np.ndarray:
    """``body`` [B] is stretched by ``sqrt(aspect)`` [B] along ``direction`` [B] (radians from
    its major axis; 0 lengthens it, pi/2 thickens it) and shrunk as much across, about its
    centroid, from ``start`` [B] on: area kept. (Oblique to a thin body's axis, an
    area-preserving stretch is mostly a shear, which moves few pixels.)"""
    body = np.asarray(body)

    def pieces(b):
        i = int(body[b])
        centre, axis, _ = body_frame(int(traj.kind[b, i]), traj.dims[b, i])
        rot = _rot(float(np.arctan2(axis[1], axis[0]) + np.asarray(direction)[b]))
        k = np.sqrt(float(np.asarray(aspect)[b]))
        inv = rot @ np.diag([1.0 / k, k]) @ rot.T  # destination -> source
        return [(inv, centre - inv @ centre, None)]

    return _redraw(traj, body, start, grid, pieces, lambda b: _rgb(traj.kind[b, body[b]]))


def break_apart(traj: SceneTrajectory, body, start, gap, cut, grid: PixelGrid) -> np.ndarray:
    """``body`` is cut across its major axis and the pieces pulled ``gap`` [B] world units apart;
    the cut passes ``cut`` [B] (a fraction of the RMS extent) off the centroid."""

    body = np.asarray(body)

    def pieces(b):
        i = int(body[b])
        centre, axis, extent = body_frame(int(traj.kind[b, i]), traj.dims[b, i])
        p = centre + float(np.asarray(cut)[b]) * extent[0] * axis
        half = 0.5 * float(np.asarray(gap)[b]) * axis
        eye = np.eye(2)
        return [
            (eye, -half, lambda src, p=p, n=axis: (src - p) @ n > 0),
            (eye, half, lambda src, p=p, n=axis: (src - p) @ n <= 0),
        ]

    return _redraw(traj, body, start, grid, pieces, lambda b: _rgb(traj.kind[b, body[b]]))


def penetrate(traj: SceneTrajectory, body, other, start, shift, grid: PixelGrid) -> np.ndarray:
    """``body`` moves by ``shift`` [B, 2] at ``start`` (into ``other``, see
    ``penetration_shift``) and from then on keeps its pose relative to ``other``."""
    pos, angle = traj.pos.astype(np.float64), traj.angle.astype(np.float64)
    for b in range(traj.batch_size):
        i, j, s = int(body[b]), int(other[b]), int(start[b])
        rel = pos[b, s, i] + shift[b] - pos[b, s, j]
        turn = angle[b, s:, j] - angle[b, s, j]  # [T - s]
        c, sn = np.cos(turn), np.sin(turn)
        pos[b, s:, i, 0] = pos[b, s:, j, 0] + c * rel[0] - sn * rel[1]
        pos[b, s:, i, 1] = pos[b, s:, j, 1] + sn * rel[0] + c * rel[1]
        angle[b, s:, i] = angle[b, s, i] + turn
    return _render(pos, angle, traj.kind, traj.dims, grid)


def recolour(traj: SceneTrajectory, body, start, rgb, grid: PixelGrid) -> np.ndarray:
    """``body`` is drawn in colour ``rgb`` [B, 3] from ``start`` on."""
    same = [(np.eye(2), np.zeros(2), None)]
    colours = np.asarray(rgb, dtype=np.float32)
    return _redraw(traj, body, start, grid, lambda b: same, lambda b: colours[b])


SCENE_DEFECTS: dict[str, Callable[..., np.ndarray]] = {
    "vanish": vanish,
    "duplicate": duplicate,
    "resize": resize,
    "squash": squash,
    "break_apart": break_apart,
    "penetrate": penetrate,
    "recolour": recolour,
}

"""Inject physical-plausibility defects into uint8 videos, to validate ``eval.plausibility``.

Each function takes videos uint8 [B, T, H, W, 3] on the white background, the RGB of the object
to edit and a frame range ``[start, stop)`` per video, and returns an edited copy (the input is
never changed). The defects are the abnormalities a person flags in a generated video (paper
Sec. 4.1, Fig. 20): an object disappears, a new one appears, an object is duplicated (the count
changes), it grows or shrinks, it is squashed out of shape, it changes colour, it teleports.

Pixel model. A pixel p is ``w (1 - a) + c a`` for the background w and the object colour c
(what the renderer draws, ``render.raster``); ``object_alpha`` inverts it by least squares, so an
object can be erased (``p + a (w - c)``), recoloured (``p + a (c' - c)``) or moved and reshaped
(its alpha layer is resampled by an affine map about its per-frame centroid, bilinearly, and
composited back ``p (1 - a') + c a'``). This works on any video without its states, but is
exact only where one object covers a pixel; at a contact of two balls a few blended pixels keep
a trace of the edited object. Edit clean renders, then pass the result through the codec.

Magnitudes are arguments (scalars or arrays [B]); ``hue_rotate`` makes realistic colour targets.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from phylaw import PhylawError
from phylaw.render.palette import BACKGROUND

RGB = tuple[int, int, int] | np.ndarray
ALPHA_RESIDUAL_TOL = 60.0  # grey levels: pixels farther than this from the colour's line are not it
ALPHA_MIN_COS = 0.9  # ... or whose difference from white points this far off the colour's
EDGE_PX = 1.5  # anti-aliasing ramp of an added disc, as ``render.raster.EDGE_PX``
CHUNK_FRAMES = 256  # frames resampled at once (bounds the coordinate temporaries)


# --------------------------------------------------------------------------------- helpers
def _check(videos: np.ndarray) -> np.ndarray:
    videos = np.asarray(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != np.uint8:
        raise PhylawError(
            f"defects: videos must be uint8 [B, T, H, W, 3], got {videos.dtype} {videos.shape}"
        )
    return videos


def frame_mask(
    batch: int, num_frames: int, start: np.ndarray | int, stop: np.ndarray | int | None = None
) -> np.ndarray:
    """Frames edited in each video, bool [B, T]: ``start[b] <= t < stop[b]`` (stop None = T)."""
    t = np.arange(num_frames)
    start = np.broadcast_to(np.asarray(start), (batch,))
    stop = np.broadcast_to(np.asarray(num_frames if stop is None else stop), (batch,))
    return (t >= start[:, None]) & (t < stop[:, None])


def _per_video(value, batch: int, tail: tuple[int, ...] = ()) -> np.ndarray:
    """Broadcast a scalar or per-video value to float64 [B, *tail]."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (batch, *tail))


def object_alpha(frames: np.ndarray, rgb: RGB) -> np.ndarray:
    """Coverage of colour ``rgb`` in each pixel, float32 [..., H, W] for frames [..., H, W, 3].

    Least-squares ``a`` of ``p = w (1 - a) + c a`` clipped to [0, 1]; 0 where the residual exceeds
    ``ALPHA_RESIDUAL_TOL`` grey levels or ``w - p`` points more than ``acos(ALPHA_MIN_COS)`` away
    from ``w - c`` (near white every colour line is close: a pale red edge is not pale blue).
    """
    w = np.asarray(BACKGROUND, dtype=np.float32)
    e = w - np.asarray(rgb, dtype=np.float32)  # [3] background minus colour
    q = w - frames.astype(np.float32)  # [..., 3]
    dot = q @ e
    e2 = max(float(e @ e), 1e-6)
    a = np.clip(dot / e2, 0.0, 1.0)
    resid = np.linalg.norm(q - a[..., None] * e, axis=-1)
    aligned = dot >= ALPHA_MIN_COS * np.sqrt(e2) * np.linalg.norm(q, axis=-1)
    return np.where((resid <= ALPHA_RESIDUAL_TOL) & aligned, a, 0.0).astype(np.float32)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def hue_rotate(rgb: RGB, degrees: float) -> tuple[int, int, int]:
    """``rgb`` with its hue turned by ``degrees`` (saturation and value kept), e.g. red +30 ->
    orange (255, 128, 0): a realistic "the ball changed colour" target off the palette."""
    h, s, v = colorsys.rgb_to_hsv(*(np.asarray(rgb, dtype=np.float64) / 255.0))
    out = colorsys.hsv_to_rgb((h + degrees / 360.0) % 1.0, s, v)
    return tuple(int(round(255 * c)) for c in out)


# --------------------------------------------------------------------------------- defects
def disappear(
    videos: np.ndarray, rgb: RGB, start: np.ndarray | int, stop: np.ndarray | int | None = None
) -> np.ndarray:
    """Erase the object of colour ``rgb`` from frames ``[start, stop)``: uint8 [B, T, H, W, 3]."""
    videos = _check(videos)
    out = videos.copy()
    sel = frame_mask(*videos.shape[:2], start, stop)
    w = np.asarray(BACKGROUND, dtype=np.float32)
    frames = videos[sel]
    a = object_alpha(frames, rgb)
    out[sel] = _to_uint8(frames + a[..., None] * (w - np.asarray(rgb, np.float32)))
    return out


def recolour(
    videos: np.ndarray,
    rgb: RGB,
    new_rgb: RGB,
    start: np.ndarray | int,
    stop: np.ndarray | int | None = None,
) -> np.ndarray:
    """Paint the object of colour ``rgb`` in ``new_rgb`` in frames ``[start, stop)``."""
    videos = _check(videos)
    out = videos.copy()
    sel = frame_mask(*videos.shape[:2], start, stop)
    frames = videos[sel]
    a = object_alpha(frames, rgb)
    delta = np.asarray(new_rgb, np.float32) - np.asarray(rgb, np.float32)
    out[sel] = _to_uint8(frames + a[..., None] * delta)
    return out


def warp(
    videos: np.ndarray,
    rgb: RGB,
    start: np.ndarray | int,
    stop: np.ndarray | int | None = None,
    *,
    matrix: np.ndarray | None = None,
    shift_px: np.ndarray | None = None,
    keep_original: bool = False,
) -> np.ndarray:
    """Move and reshape the object of colour ``rgb`` in frames ``[start, stop)``.

    Its alpha layer is mapped by ``x -> centroid + matrix (x - centroid) + shift_px`` about its
    alpha-weighted centroid in each frame (index coordinates, (col, row)); ``matrix`` [B, 2, 2] or
    [2, 2] (identity if None), ``shift_px`` [B, 2] or [2] (zero if None). With ``keep_original``
    the object stays where it was and the mapped copy is added (a duplicate).
    """
    videos = _check(videos)
    b, t, h, w_px, _ = videos.shape
    out = videos.copy()
    sel = frame_mask(b, t, start, stop)
    mat = _per_video(np.eye(2) if matrix is None else matrix, b, (2, 2))
    shift = _per_video(np.zeros(2) if shift_px is None else shift_px, b, (2,))
    vid = np.nonzero(sel)[0]  # video of each selected frame
    flat = np.flatnonzero(sel.reshape(-1))
    bg = np.asarray(BACKGROUND, dtype=np.float32)
    colour = np.asarray(rgb, np.float32)
    cols = np.arange(w_px, dtype=np.float32)
    rows = np.arange(h, dtype=np.float32)
    view = out.reshape(b * t, h, w_px, 3)
    for i0 in range(0, len(flat), CHUNK_FRAMES):
        idx, v = flat[i0 : i0 + CHUNK_FRAMES], vid[i0 : i0 + CHUNK_FRAMES]
        frames = view[idx].astype(np.float32)  # [F, H, W, 3]
        a = object_alpha(frames, rgb)  # [F, H, W]
        mass = a.sum((1, 2))
        cx = (a.sum(1) @ cols) / np.maximum(mass, 1e-6)  # [F] centroid column
        cy = (a.sum(2) @ rows) / np.maximum(mass, 1e-6)
        inv = np.linalg.inv(mat[v])  # [F, 2, 2] output -> source
        dx = cols[None, None, :] - (cx + shift[v, 0])[:, None, None]  # [F, 1, W]
        dy = rows[None, :, None] - (cy + shift[v, 1])[:, None, None]  # [F, H, 1]
        src_x = cx[:, None, None] + inv[:, 0, 0, None, None] * dx + inv[:, 0, 1, None, None] * dy
        src_y = cy[:, None, None] + inv[:, 1, 0, None, None] * dx + inv[:, 1, 1, None, None] * dy
        f_idx = np.broadcast_to(np.arange(len(idx), dtype=np.float32)[:, None, None], src_x.shape)
        moved = ndimage.map_coordinates(a, [f_idx, src_y, src_x], order=1, cval=0.0)
        moved = np.where(mass[:, None, None] > 0, moved, 0.0)[..., None]
        base = frames if keep_original else frames + a[..., None] * (bg - colour)
        view[idx] = _to_uint8(base * (1.0 - moved) + colour * moved)
    return out


def resize(
    videos: np.ndarray,
    rgb: RGB,
    scale: np.ndarray | float,
    start: np.ndarray | int,
    stop: np.ndarray | int | None = None,
) -> np.ndarray:
    """Scale the object by ``scale`` (scalar or [B]; its diameter, so its area by ``scale**2``)
    about its centroid: a rigid body that grows or shrinks."""
    b = _check(videos).shape[0]
    s = _per_video(scale, b)
    return warp(videos, rgb, start, stop, matrix=s[:, None, None] * np.eye(2))


def squash(
    videos: np.ndarray,
    rgb: RGB,
    aspect: np.ndarray | float,
    angle_rad: np.ndarray | float,
    start: np.ndarray | int,
    stop: np.ndarray | int | None = None,
) -> np.ndarray:
    """Deform the object into an ellipse of axis ratio ``aspect`` (> 1) at ``angle_rad``, area
    kept: a disc stays a disc in area but not in shape (a rigid body that "fails to keep its
    shape", paper Fig. 20)."""
    b = _check(videos).shape[0]
    k = np.sqrt(_per_video(aspect, b))
    ang = _per_video(angle_rad, b)
    c, s = np.cos(ang), np.sin(ang)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # [B, 2, 2]
    diag = np.zeros((b, 2, 2))
    diag[:, 0, 0], diag[:, 1, 1] = k, 1.0 / k
    return warp(videos, rgb, start, stop, matrix=rot @ diag @ np.swapaxes(rot, -1, -2))


def teleport(
    videos: np.ndarray,
    rgb: RGB,
    shift_px: np.ndarray,
    start: np.ndarray | int,
    stop: np.ndarray | int | None = None,
) -> np.ndarray:
    """Displace the object by ``shift_px`` ([B, 2] or [2], (col, row)) in frames ``[start, stop)``:
    a jump at ``start`` (and back at ``stop``) that no force in the scene explains."""
    return warp(videos, rgb, start, stop, shift_px=shift_px)


def duplicate(
    videos: np.ndarray,
    rgb: RGB,
    shift_px: np.ndarray,
    start: np.ndarray | int,
    stop: np.ndarray | int | None = None,
) -> np.ndarray:
    """Add a copy of the object displaced by ``shift_px`` ([B, 2] or [2], px) in ``[start, stop)``:
    the object count changes."""
    return warp(videos, rgb, start, stop, shift_px=shift_px, keep_original=True)


def appear(
    videos: np.ndarray,
    rgb: RGB,
    centre_px: np.ndarray,
    radius_px: np.ndarray | float,
    start: np.ndarray | int,
    stop: np.ndarray | int | None = None,
    velocity_px: np.ndarray | None = None,
) -> np.ndarray:
    """Draw a new anti-aliased disc of colour ``rgb`` from frame ``start`` on.

    ``centre_px`` [B, 2] (col, row) at ``start``, moving by ``velocity_px`` [B, 2] per frame
    (still if None); ``radius_px`` scalar or [B]. The disc is drawn over the other objects.
    """
    videos = _check(videos)
    b, t, h, w_px, _ = videos.shape
    sel = frame_mask(b, t, start, stop)
    start_b = _per_video(start, b)
    centre = _per_video(centre_px, b, (2,))
    vel = _per_video(np.zeros(2) if velocity_px is None else velocity_px, b, (2,))
    radius = _per_video(radius_px, b)
    vid, frame = np.nonzero(sel)
    c = centre[vid] + vel[vid] * (frame - start_b[vid])[:, None]  # [F, 2]
    d = np.hypot(
        np.arange(w_px)[None, None, :] - c[:, 0, None, None],
        np.arange(h)[None, :, None] - c[:, 1, None, None],
    )
    u = np.clip((radius[vid, None, None] - d) / EDGE_PX + 0.5, 0.0, 1.0)
    a = (u * u * (3.0 - 2.0 * u))[..., None].astype(np.float32)
    out = videos.copy()
    out[sel] = _to_uint8(videos[sel] * (1.0 - a) + np.asarray(rgb, np.float32) * a)
    return out


DEFECTS: dict[str, Callable[..., np.ndarray]] = {
    "disappear": disappear,
    "appear": appear,
    "duplicate": duplicate,
    "resize": resize,
    "squash": squash,
    "recolour": recolour,
    "teleport": teleport,
}

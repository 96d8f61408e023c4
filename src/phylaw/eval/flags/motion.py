"""Kinematics of parsed balls for the plausibility flags (``flags.balls``): time-shift and
fill helpers over frames, contacts, velocities from contact-free steps, where each object should
be next, and whether it is leaving through a border (all arrays [B, T, K, ...], world units).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from phylaw.eval.parse import ParsedStates
from phylaw.render.palette import BACKGROUND

BORDER_NORMALS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])  # l, r, b, t


def ffill(valid: np.ndarray) -> np.ndarray:
    """Index of the last frame <= t where ``valid`` [B, T, ...] holds, -1 if none (same shape)."""
    t = np.arange(valid.shape[1]).reshape((1, -1) + (1,) * (valid.ndim - 2))
    return np.maximum.accumulate(np.where(valid, t, -1), axis=1)


def take(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``x`` [B, T, K, ...] at frame ``idx`` [B, T, K] (NaN where idx < 0)."""
    extra = x.ndim - idx.ndim
    i = np.maximum(idx, 0).reshape(idx.shape + (1,) * extra)
    out = np.take_along_axis(x, i, axis=1).astype(np.float64)
    out[idx < 0] = np.nan
    return out


def shift(x: np.ndarray, n: int, fill) -> np.ndarray:
    """``x`` [B, T, ...] delayed by n frames along T (``out[:, t] = x[:, t - n]``)."""
    out = np.empty_like(x)
    out[:, :n] = fill
    out[:, n:] = x[:, : x.shape[1] - n]
    return out


def sustained(score: np.ndarray, m: int) -> np.ndarray:
    """Per-frame score [B, T, ...] that held for m frames in a row: min over the window ending
    at t (NaN counts as 0)."""
    s = np.nan_to_num(score, nan=0.0)
    if m <= 1:
        return s
    win = sliding_window_view(s, m, axis=1).min(-1)  # [B, T - m + 1, ...]
    out = np.zeros_like(s)
    out[:, m - 1 :] = win
    return out


def nanreduce(fn, x: np.ndarray) -> np.ndarray:
    """``fn(x, axis=1)`` for a NaN-aware reduction, NaN (silently) where a slice is all NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(x, axis=1)


def nearest_border(pos: np.ndarray, world_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance [...] to the nearest image border and its outward normal [..., 2] (world)."""
    x, y = pos[..., 0], pos[..., 1]
    dist = np.stack([x, world_size - x, y, world_size - y], -1)
    side = np.argmin(np.nan_to_num(dist, nan=np.inf), -1)
    return np.take_along_axis(dist, side[..., None], -1)[..., 0], BORDER_NORMALS[side]


class Motion(NamedTuple):
    """Kinematics of B videos' K objects over T frames (arrays [B, T, K, ...], world units)."""

    margin: float  # contact margin
    touch: np.ndarray  # bool: within r_i + r_j + margin of another visible object
    near: np.ndarray  # bool: touching, or its straight path met another since the last frame
    step: np.ndarray  # [..., 2] displacement since the previous frame
    pred: np.ndarray  # [..., 2] last sighting carried on at the last velocity
    centre: np.ndarray  # [..., 2] the parsed position where visible, else ``pred``
    moving_out: np.ndarray  # bool: its last velocity points out through the nearest border
    leaving: np.ndarray  # bool: ... and its predicted disc reaches that border


def motion(
    parsed: ParsedStates,
    radius: np.ndarray,
    margin: float,
    border_margin: float,
    world_size: float,
) -> Motion:
    """Contacts, velocities and predicted positions from the parsed states; ``radius`` [B, K]
    world units. Velocities come from contact-free steps between two sightings; after a contact
    the first step seen after it is used, and until then the velocity is unknown: the object may
    then have gone as fast as an elastic collision allows, ``|v_i| + 2 max_j |v_i - v_j|``."""
    pos, vis = parsed.pos, parsed.visible
    b, t, k = vis.shape
    # Contacts: touching now, or approaching into contact since the previous frame.
    pair_d = np.full((b, t, k, k), np.inf)
    for i in range(k):
        for j in range(k):
            if i != j:
                d = np.linalg.norm(pos[:, :, i] - pos[:, :, j], axis=-1)
                pair_d[:, :, i, j] = np.where(vis[:, :, i] & vis[:, :, j], d, np.inf)
    reach = radius[:, None, :, None] + radius[:, None, None, :] + margin  # [B, 1, K, K]
    touch = (pair_d < reach).any(-1)
    step = pos - shift(pos, 1, np.nan)  # displacement per frame [B, T, K, 2]
    ok_step = vis & shift(vis, 1, False) & ~touch & shift(~touch, 1, False)
    vel = take(step, ffill(ok_step))  # last contact-free velocity up to t, world/frame
    prev_vel, prev_pos = shift(vel, 1, np.nan), shift(pos, 1, np.nan)
    between = np.zeros((b, t, k), dtype=bool)
    for i in range(k):
        for j in range(k):
            if i != j:
                d0 = prev_pos[:, :, i] - prev_pos[:, :, j]
                u = np.nan_to_num(prev_vel[:, :, i] - prev_vel[:, :, j])
                s = np.clip(-(d0 * u).sum(-1) / np.maximum((u * u).sum(-1), 1e-12), 0.0, 1.0)
                closest = np.linalg.norm(d0 + s[..., None] * u, axis=-1)
                between[:, :, i] |= np.nan_to_num(closest, nan=np.inf) < reach[:, :, i, j]
    near = touch | between
    # The fastest a collision can send each object: |v_i| + 2 max_j |v_i - v_j| (elastic bound).
    speed = np.linalg.norm(np.nan_to_num(vel), axis=-1)
    kick = np.zeros((b, t, k))
    for i in range(k):
        for j in range(k):
            if i != j:
                rel = np.linalg.norm(np.nan_to_num(vel[:, :, i] - vel[:, :, j]), axis=-1)
                kick[:, :, i] = np.maximum(kick[:, :, i], 2.0 * rel)
    bound = np.where(np.isnan(vel[..., 0]), np.inf, speed + kick)  # world/frame, [B, T, K]
    # After a contact the velocity is the latest step after it (clean if possible), else unknown.
    after = ffill(near)
    clean, seen = ffill(ok_step), ffill(vis & shift(vis, 1, False))
    vel = np.where(
        (clean > after)[..., None],
        vel,
        np.where((seen > after)[..., None], take(step, seen), np.nan),
    )
    prev_vel = shift(vel, 1, np.nan)

    # Where each object should be: its last sighting carried on at its last velocity.
    last = ffill(vis)
    prev_last = shift(last, 1, -1)
    gap = np.arange(t)[None, :, None] - prev_last
    pred = take(pos, prev_last) + np.nan_to_num(prev_vel) * gap[..., None]
    centre = np.where(vis[..., None], pos, pred)
    border_d, normal = nearest_border(centre, world_size)
    outward = (np.nan_to_num(prev_vel) * normal).sum(-1)
    unknown = np.isnan(prev_vel[..., 0])  # since a contact: it may move at up to its bound
    moving_out = (outward > 0) | unknown
    prev_bound = shift(bound, 1, np.inf)
    reachable = np.where(np.isfinite(prev_bound), prev_bound * np.maximum(gap, 0), np.inf)
    slack = np.where(unknown, reachable, 0.0)
    leaving = moving_out & (border_d < radius[:, None] + border_margin + slack)
    return Motion(margin, touch, near, step, pred, centre, moving_out, leaving)


def occupied(
    videos: np.ndarray, pred: np.ndarray, ppw: float, world_size: float, background: float
) -> np.ndarray:
    """Whether the 3x3 pixels around each predicted centre ``pred`` [B, T, K, 2] (world) are on
    average farther than ``background`` grey levels from white: bool [B, T, K]."""
    b, t, h, w, _ = videos.shape
    col = np.rint(np.nan_to_num(pred[..., 0], nan=-10) * ppw - 0.5).astype(np.int64)
    row = np.rint((world_size - np.nan_to_num(pred[..., 1], nan=-10)) * ppw - 0.5).astype(np.int64)
    inside = (col >= 1) & (col < w - 1) & (row >= 1) & (row < h - 1)
    col, row = np.clip(col, 1, w - 2), np.clip(row, 1, h - 2)
    bi = np.arange(b)[:, None, None]
    ti = np.arange(t)[None, :, None]
    total = np.zeros((b, t, pred.shape[2], 3))
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            total += videos[bi, ti, row + dr, col + dc].astype(np.float64)
    dist = np.linalg.norm(np.asarray(BACKGROUND, np.float64) - total / 9.0, axis=-1)
    return inside & (dist > background)

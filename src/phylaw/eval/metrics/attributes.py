"""What a generated video did: the velocity, size, colour and shape of its bodies, measured.

The mechanism studies of the paper's Sec. 5 ask what the model generated, not only how far it
is from the law: did the ball keep its conditioned speed, size, colour and shape, or take a
training case's? For every video this module measures, over the *generated* frames (after the
condition frames), beside the conditioned values (the truth):

* **velocity** (vx, vy): the least-squares slope of the parsed centre over the usable frames
  (world units/s; signed, so a reversed ball has vx < 0);
* **colour**: the palette colour (the split's colours, ``floor.split_palette``) with the most
  soft area over the generated frames, and its share of all tracked area (``colour_share``);
  "none" when no colour shows. With one body the other attributes are measured on this
  colour's column, so a ball that switched colour is still followed; with more bodies each is
  measured on its own colour's column;
* **shape**: disc, square, ring or ambiguous, from two moment invariants of the solid part of
  the object (``parse``'s moments up to order 4, pixel units), per usable frame:

      J  = 2 pi (mu20 + mu02) / mu00^2            1 disc, pi/3 square, (1 + q^2) / (1 - q^2)
                                                   ring of inner radius q r (5/3 at q = 1/2)
      h4 = |(mu40 - 6 mu22 + mu04, 4 (mu31 - mu13))| / (mu40 + 2 mu22 + mu04)
                                                   0 disc and ring, 0.43 axis-aligned square

  (J is the polar moment against a disc of the same area, which has the least of any shape;
  h4 is the 4-fold harmonic of the fourth moments, invariant to rotation.) The video's class
  is that of the medians over its usable frames: ring when J is past the midpoint between a
  square's and the split's ring's (``ring_inner_ratio``), else square when h4 >= ``H4_CUT``,
  else disc; **ambiguous** when no frame is usable, the median J is outside what any of the
  three shapes gives (``J_MIN``, ``J_MAX_FACTOR`` x the ring's: two blobs, a smear), or fewer
  than ``AGREE`` of the frames give the same class (a shape between classes, or changing).
  An object smaller than ``SMALL_PX`` (the radius of the disc of its area: a collision ball of
  r = 0.5 at 32 px is 1.6 px) is too small for the fourth moments to tell a disc from a
  square (J still tells a ring): read as either, it takes the one of the two the split has for
  that body (every collision ball is a disc), and is ambiguous where the split has both.
  Why medians: at 32 px one frame of a disc reaches h4 0.26 at some sub-pixel phases while
  its median over a few frames stays below 0.2 (``benchmarks/bench_attributes.py``);
* **size**: shape-aware, from the soft area A (world units^2, median over usable frames):
  a disc's radius sqrt(A / pi), a square's half side sqrt(A) / 2, a ring's outer radius
  sqrt(A / (pi (1 - q^2))); an ambiguous shape is sized as its conditioned shape.

Usable frames: generated frames where the object is in view (not cut by the border) and shows
one blob. Measured accuracy on ground-truth videos of every study at 32, 64 and 128 px:
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from phylaw.data.store import Store
from phylaw.eval.parse import ParsedStates
from phylaw.physics.state import RING_INNER_RATIO, Colour, Shape, Trajectory

H4_CUT = 0.2  # square at or above, disc below (0.43 and 0 in the continuum)
J_MIN = 0.9  # below: no shape (a disc has the least J of any shape, 1)
J_MAX_FACTOR = 1.3  # above this times the ring's J: no shape (two blobs, a smear)
AGREE = 0.5  # share of the usable frames that must give the video's class
SMALL_PX = 2.0  # px: below this radius (of the disc of its area) the moments cannot tell a disc
# from a square (at 1.6 px their median h4 overlap over 0.15-0.4): the split's only shape, if any
AMBIGUOUS, NONE = -1, -1  # codes: an unclear shape; no colour seen
SHAPE_NAMES = {int(s): s.name.lower() for s in Shape} | {AMBIGUOUS: "ambiguous"}
COLOUR_NAMES = {int(c): c.name.lower() for c in Colour} | {NONE: "none"}


@dataclass(frozen=True)
class Attributes:
    """Attributes of N bodies in B videos (arrays [B, N]): ``vx``, ``vy`` world units/s,
    ``size`` world units (radius, half side or outer radius), ``colour`` and ``shape`` codes
    (``Colour``, ``Shape``; -1: none seen / ambiguous), ``frames`` (usable frames measured),
    ``colour_share`` (the colour's share of the tracked area)."""

    vx: np.ndarray
    vy: np.ndarray
    size: np.ndarray
    colour: np.ndarray
    shape: np.ndarray
    frames: np.ndarray
    colour_share: np.ndarray


# --------------------------------------------------------------------------- shape
def ring_j(ratio: float) -> float:
    """J of a ring of inner radius ``ratio`` x its outer radius (continuum)."""
    return (1 + ratio**2) / (1 - ratio**2)


def shape_invariants(parsed: ParsedStates) -> tuple[np.ndarray, np.ndarray]:
    """J and h4 (module docstring), each [B, T, K], NaN where missing. Needs the moments up
    to order 4 (``parse_videos(..., moments_order=4)``)."""
    m = parsed.moment
    with np.errstate(divide="ignore", invalid="ignore"):
        j = 2 * np.pi * (m(2, 0) + m(0, 2)) / m(0, 0) ** 2
        c4 = m(4, 0) - 6 * m(2, 2) + m(0, 4)
        s4 = 4 * (m(3, 1) - m(1, 3))
        h4 = np.hypot(c4, s4) / (m(4, 0) + 2 * m(2, 2) + m(0, 4))
    return j, h4


def shape_class(j: np.ndarray, h4: np.ndarray, ring_ratio: float) -> np.ndarray:
    """Shape codes (``Shape``, or ``AMBIGUOUS``) of invariants ``j``, ``h4`` (any shape)."""
    ring = ring_j(ring_ratio)
    ring_cut = (np.pi / 3 + ring) / 2
    out = np.where(h4 >= H4_CUT, int(Shape.SQUARE), int(Shape.DISC))
    out = np.where(j >= ring_cut, int(Shape.RING), out)
    bad = ~np.isfinite(j) | ~np.isfinite(h4) | (j < J_MIN) | (j > J_MAX_FACTOR * ring)
    return np.where(bad, AMBIGUOUS, out)


def classify(
    j: np.ndarray,
    h4: np.ndarray,
    usable: np.ndarray,
    ring_ratio: float,
    radius_px: np.ndarray | None = None,
    only: np.ndarray | None = None,
) -> np.ndarray:
    """The class of each object from its frames: invariants ``j``, ``h4`` and ``usable`` [B, T,
    N] -> codes [B, N] (module docstring: medians, then the frames' agreement). ``radius_px``
    [B, N]: the radius of the disc of the object's area in pixels; an object below ``SMALL_PX``
    read as a disc or a square (not a ring, not ruled out by J) is ``only`` [B, N] (the one
    of disc and square the split has for that body; -1 when it has both or neither: then
    ambiguous)."""
    jm = _nanmedian(np.where(usable, j, np.nan))
    hm = _nanmedian(np.where(usable, h4, np.nan))
    video = shape_class(jm, hm, ring_ratio)  # [B, N]
    frames = shape_class(j, h4, ring_ratio)  # [B, T, N]
    n = usable.sum(1)
    agree = (usable & (frames == video[:, None])).sum(1)
    ok = (n > 0) & (agree >= AGREE * np.maximum(n, 1))
    out = np.where(ok, video, AMBIGUOUS)
    if radius_px is None:
        return out
    flat = (video == Shape.DISC) | (video == Shape.SQUARE)  # J rules out a ring
    small = (n > 0) & flat & (radius_px < SMALL_PX)
    known = np.full(out.shape, AMBIGUOUS) if only is None else np.asarray(only)
    return np.where(small, known, out)


def _nanmedian(x: np.ndarray) -> np.ndarray:
    """Median over frames (axis 1) of the defined values; NaN where none is (an object never
    seen, by design: numpy's warning is silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(x, axis=1)


# --------------------------------------------------------------------------- size, velocity
def size_of(area_w2: np.ndarray, shape: np.ndarray, ring_ratio: float) -> np.ndarray:
    """Size (world units) of objects of soft area ``area_w2`` (world units^2) and ``shape``
    codes (broadcast): radius, half side or outer radius."""
    disc = np.sqrt(area_w2 / np.pi)
    square = np.sqrt(area_w2) / 2
    ring = np.sqrt(area_w2 / (np.pi * (1 - ring_ratio**2)))
    return np.select([shape == Shape.SQUARE, shape == Shape.RING], [square, ring], disc)


def ls_slope(times: np.ndarray, x: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``x`` [B, T, N] over ``times`` [T] on the ``usable`` frames:
    [B, N], NaN with fewer than two frames."""
    w = usable.astype(np.float64)
    n = w.sum(1)
    t = times[None, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        tm = (w * t).sum(1) / n
        xs = np.where(usable, x, 0.0)
        xm = (w * xs).sum(1) / n
        dt = (t - tm[:, None]) * w
        den = (dt * dt).sum(1)
        slope = (dt * (xs - xm[:, None])).sum(1) / den
    return np.where((n >= 2) & (den > 0), slope, np.nan)


# --------------------------------------------------------------------------- videos
def _columns(parsed: ParsedStates, colours: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Palette columns [B, N] measured per body (module docstring) and the colour's share of
    the tracked area over the generated frames [B, N]."""
    area = np.nansum(parsed.area_px[:, c:], axis=1)  # [B, K]
    total = area.sum(1, keepdims=True)
    palette = np.asarray([int(k) for k in parsed.colours])
    if colours.shape[1] == 1:
        col = area.argmax(1)[:, None]
    else:
        hit = colours[..., None] == palette
        col = hit.argmax(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.take_along_axis(area, col, 1) / total
    return col, np.where(total > 0, share, np.nan)


def _pick(x: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Columns ``col`` [B, N] of per-column states ``x`` [B, T, K, ...] -> [B, T, N, ...]."""
    b = np.arange(len(col))[:, None]
    return np.moveaxis(np.moveaxis(x, 2, 1)[b, col], 2, 1)


def generated_attributes(
    parsed: ParsedStates,
    colours: np.ndarray,
    given_shape: np.ndarray,
    times: np.ndarray,
    num_cond_frames: int,
    ring_ratio: float,
    only: np.ndarray | None = None,
) -> Attributes:
    """Measure the generated frames of videos parsed for the split's palette (``parsed``: all
    palette columns, moments up to order 4). ``colours``, ``given_shape``: the conditioned
    bodies' codes [B, N]; ``times`` [T] of the frames; ``ring_ratio``: the split's ring inner
    radius / radius; ``only`` [N] or [B, N]: the one of disc and square each body takes in the
    split (-1 where it takes both or neither), the class of an object too small to tell them
    apart (``SMALL_PX``)."""
    c = num_cond_frames
    colours = np.asarray(colours, dtype=np.int64)
    col, share = _columns(parsed, colours, c)
    palette = np.asarray([int(k) for k in parsed.colours])
    seen = _pick(parsed.visible, col)[:, c:].any(1)  # [B, N]
    usable = _pick(parsed.in_view & (parsed.count == 1), col)[:, c:]
    j, h4 = (_pick(x, col)[:, c:] for x in shape_invariants(parsed))
    usable &= np.isfinite(j) & np.isfinite(h4)
    area_px = _pick(parsed.area_px, col)[:, c:]
    radius_px = np.sqrt(_nanmedian(np.where(usable, area_px, np.nan)) / np.pi)
    shape = classify(j, h4, usable, ring_ratio, radius_px, only)
    px = float(parsed.grid.world_len_to_px(1.0))
    area = area_px / px**2
    sized = np.where(shape == AMBIGUOUS, np.asarray(given_shape), shape)
    size = _nanmedian(np.where(usable, size_of(area, sized[:, None], ring_ratio), np.nan))
    pos = _pick(parsed.pos, col)[:, c:]
    t = np.asarray(times, dtype=np.float64)[c:]
    return Attributes(
        vx=ls_slope(t, pos[..., 0], usable),
        vy=ls_slope(t, pos[..., 1], usable),
        size=size,
        colour=np.where(seen, palette[col], NONE),
        shape=np.where(seen, shape, AMBIGUOUS),
        frames=usable.sum(1),
        colour_share=np.where(seen, share, np.nan),
    )


def given_attributes(truth: Trajectory, num_cond_frames: int) -> Attributes:
    """The conditioned values of ``truth`` [B, T, N]: its velocity over the generated frames
    (the exact one where known, else the slope of its positions), size, colour and shape."""
    c = num_cond_frames
    b = truth.bodies
    every = np.ones(truth.pos[:, c:, :, 0].shape, dtype=bool)
    if truth.vel is not None:
        vx, vy = truth.vel[:, c:, :, 0].mean(1), truth.vel[:, c:, :, 1].mean(1)
    else:
        t = truth.times[c:]
        vx, vy = (ls_slope(t, truth.pos[:, c:, :, d], every) for d in (0, 1))
    size = np.asarray(b.size, dtype=np.float64)
    return Attributes(
        vx, vy, size, np.asarray(b.colour, np.int64), np.asarray(b.shape, np.int64),
        every.sum(1), np.ones_like(size),
    )  # fmt: skip


def _num(x) -> float | None:
    x = float(x)
    return round(x, 6) if np.isfinite(x) else None


def attribute_records(given: Attributes, generated: Attributes) -> list[dict]:
    """Per-video JSON fields: ``given_*`` (vx, vy, size, colour, shape) and ``gen_*`` (the
    same, with ``frames`` and ``colour_share``); with more than one body every key ends in
    the body's number (``gen_vx1``)."""
    n = given.vx.shape[1]
    out = []
    for i in range(given.vx.shape[0]):
        rec: dict = {}
        for k in range(n):
            tag = "" if n == 1 else str(k + 1)
            for prefix, a in (("given", given), ("gen", generated)):
                rec[f"{prefix}_vx{tag}"] = _num(a.vx[i, k])
                rec[f"{prefix}_vy{tag}"] = _num(a.vy[i, k])
                rec[f"{prefix}_size{tag}"] = _num(a.size[i, k])
                rec[f"{prefix}_colour{tag}"] = COLOUR_NAMES[int(a.colour[i, k])]
                rec[f"{prefix}_shape{tag}"] = SHAPE_NAMES[int(a.shape[i, k])]
            rec[f"gen_frames{tag}"] = int(generated.frames[i, k])
            rec[f"gen_colour_share{tag}"] = _num(generated.colour_share[i, k])
        out.append(rec)
    return out


def video_attributes(store: Store, palette: ParsedStates, truth: Trajectory, c: int) -> list[dict]:
    """Per-video record fields of a region split's videos (``attribute_records``): their
    conditioned values from ``truth`` and what they did, from ``palette``, the videos parsed
    for the split's palette with moments up to order 4 (``c`` condition frames)."""
    table = store.manifest["bodies"]
    ratio = float(table.get("ring_inner_ratio", RING_INNER_RATIO))
    slots = table.get("shape_values") or [[s] for s in table["shape"]]
    flat = [[s for s in slot if s in (Shape.DISC, Shape.SQUARE)] for slot in slots]
    only = np.array([f[0] if len(f) == 1 else -1 for f in flat])  # [N]: disc or square
    b = truth.bodies
    gen = generated_attributes(palette, b.colour, b.shape, truth.times, c, ratio, only)
    return attribute_records(given_attributes(truth, c), gen)

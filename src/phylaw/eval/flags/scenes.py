"""Automatic abnormality flags for the combinatorial scenes: the paper's human "abnormal" label.

The paper (Sec. 4.2, Table 2, Fig. 20) has people mark a generated PHYRE-style video "abnormal"
when it looks physically implausible; its examples are objects that vanish and rigid bodies that
break or lose their shape. Here that judgement is made from the pixels of a generated video
(uint8 [B, T, H, W, 3]) and what the evaluation may know of the scene: its bodies at t = 0
(``start``: the ``physics.state.SceneTrajectory`` of the given frame, with each body's colour,
static or dynamic, parts and pose), never the ground truth of later frames, since a model's
motion may legitimately differ.

Idea: rigid bodies keep their area and shape and never overlap, static bodies never move, and
each colour is a fixed set of bodies. So in every frame each colour's blobs (``eval.scene_blobs``:
connected components of its soft membership, with area and principal second moments) must be
explained by a partition of that colour's *units* (its dynamic bodies, and its groups of touching
static bodies), drawn alone at t = 0 at the video's resolution (``scene_units``), so that
anti-aliasing affects reference and video alike: a blob is one unit (same area, same shape) or
several touching units (the sum of their areas), every unit is in exactly one blob, a static unit
where it was. ``eval.scene_explain`` gives the residuals (1 = tolerance) and finds the
assignment whose largest residual is smallest, exactly; a frame whose best assignment still
leaves a residual above 1 is unexplained, and its residuals name the flags:

============  ===================================================================================
flag          raised for (a frame that cannot be explained, in a run of ``min_frames`` such)
============  ===================================================================================
vanishes      a unit in no blob, or a merged blob short of a whole member's area
duplicates    a blob of no unit that has a unit's area and shape (a copy), or something new; a
              merged blob with a whole unit's area too much
breaks        a blob of no unit that fits none while a unit's blob is short of area (fragments)
resizes       a blob of one unit with the wrong area (or of several, too large)
deforms       a blob of one unit with the right area and the wrong shape (squashed, bent)
penetrates    a blob short of area that merges several units or touches another component
              (bodies overlap: the one drawn later hides part of the other)
recolours     a solid region of a colour that is no blend of the scene's colours, larger than in
              frame 0 (``scene_blobs.foreign_counts``); or a unit gone from its colour while a
              blob of its area and shape, or as many foreign pixels, appeared
============  ===================================================================================

Validation (``benchmarks/bench_scene_flags.py``): each defect of ``eval.scene_defects``
injected into ground-truth renders of the 70 templates, observable placements. Thresholds were
set on seed 0; recall and false positives are reported on seed 1.

Known limits. Bodies of one colour that touch form one blob, judged by area only: a deformation
while merged is missed, and so is a swap of equal-area bodies. A body moving through another is
seen only while they overlap. Bodies a few pixels across (PHYRE's static balls and the smallest
red balls at 64 px) can vanish or be hidden, but a change of their shape is below the noise. The
tolerances are for clean renders: a model's blur or a lossy codec need them re-tuned.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from phylaw import PhylawError
from phylaw.eval.flags.scene_blobs import (
    SCENE_COLOURS,
    Blobs,
    components,
    memberships,
    principal,
    scene_blobs,
)
from phylaw.eval.flags.scene_explain import (
    Explanation,
    SceneTolerances,
    Units,
    area_residuals,
    explain,
    shape_residuals,
)
from phylaw.physics.state import SceneTrajectory
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render_trajectory

SCENE_FLAGS = (
    "vanishes",
    "duplicates",
    "breaks",
    "resizes",
    "deforms",
    "penetrates",
    "recolours",
)
_F = {name: i for i, name in enumerate(SCENE_FLAGS)}
_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity, as ``scene_blobs``


# ------------------------------------------------------------------------------ references
def scene_start(traj: SceneTrajectory, frame: int = 0) -> SceneTrajectory:
    """The scenes at their given frame ``frame`` (what a generated video is conditioned on):
    the record of that one frame."""
    return traj.at_frames([frame])


def scene_units(
    start: SceneTrajectory, grid: PixelGrid, mask_alpha: float = SceneTolerances.mask_alpha
) -> list[list[Units]]:
    """Units of each scene colour (``SCENE_COLOURS``) in each of the B scenes, [B][K].

    Each scene is drawn as N + 1 layers: its static bodies together (each component of a colour
    is one unit), then every dynamic body alone (one unit, however many components it shows).
    """
    b, n = start.colour.shape
    colour = np.asarray(start.colour)
    dynamic = np.asarray(start.dynamic)
    static = start.present & ~dynamic
    show = np.zeros((b, n + 1, n), dtype=bool)  # [B, layer, slot]
    show[:, 0] = static
    show[:, 1:] = np.eye(n, dtype=bool)[None] & dynamic[:, None, :]
    pos = np.where(show[..., None], np.asarray(start.pos[:, 0], np.float64)[:, None], np.nan)
    angle = np.broadcast_to(np.asarray(start.angle[:, 0], np.float64)[:, None], show.shape)
    out = []
    for i in range(b):
        layered = start[i : i + 1].with_poses(pos[i : i + 1], np.array(angle[i : i + 1]))
        layers = render_trajectory(layered, grid)
        weights, _ = memberships(layers[0])  # [K, N+1, H, W]
        per_colour = []
        for k, c in enumerate(SCENE_COLOURS):
            frame, raw, edge, _, _ = components(weights[k], mask_alpha)
            labels, n_static = ndimage.label(weights[k, 0] >= mask_alpha, structure=_EIGHT)
            place = ndimage.maximum_filter(
                labels[None] == np.arange(1, n_static + 1)[:, None, None], size=(1, 3, 3)
            )  # [S, H, W]: static components, in the order ``components`` numbers them
            groups, edges = [raw[frame == 0]], [edge[frame == 0]]
            for s in np.flatnonzero(dynamic[i] & (colour[i] == c)):
                groups.append(raw[frame == s + 1].sum(0, keepdims=True))
                edges.append(edge[frame == s + 1].sum(0, keepdims=True))
            raw_u, edge_u = np.concatenate(groups), np.concatenate(edges)
            keep = raw_u[:, 0] > 0  # a dynamic body too small to show has no unit
            units = Units(raw_u[keep, 0], edge_u[keep], np.sqrt(principal(raw_u[keep])), place)
            per_colour.append(units)
        out.append(per_colour)
    return out


# ------------------------------------------------------------------------------ naming
def flag_evidence(
    blobs: Blobs, units: Units, tol: SceneTolerances
) -> tuple[np.ndarray, Explanation]:
    """Per-flag scores of one colour, [F, len(SCENE_FLAGS)], and its explanation (``score`` [F]:
    the minimax residual): each residual of the best assignment is credited to the flag that
    best names it (module docstring)."""
    ex = explain(blobs, units, tol)
    n = len(units.area)
    f = len(ex.score)
    bits = (ex.assign[..., None] >> np.arange(n)) & 1 == 1  # [F, M, N] members of each blob
    k = bits.sum(-1)
    smallest = np.where(bits, units.area, np.inf).min(-1, initial=np.inf)  # [F, M]
    c = ex.cost
    bad = c > 1.0
    area_led = np.abs(ex.area_res) >= ex.shape_res
    stray = (k == 0) & bad
    loss = (k >= 1) & area_led & (ex.area_res < 0)
    gain = (k >= 1) & area_led & (ex.area_res > 0)
    whole_lost = (k >= 2) & (-ex.diff_px >= 0.75 * smallest)  # a member's worth missing
    whole_gained = (k >= 2) & (ex.diff_px >= 0.75 * units.area.min(initial=np.inf))
    pieces = (stray & ~ex.fits).any(-1, keepdims=True)  # a fragment somewhere in the frame
    lossy = (loss & bad).any(-1, keepdims=True)
    penetrates = loss & ~whole_lost & ((k >= 2) | blobs.touch)
    breaks = (loss & ~whole_lost & ~penetrates & pieces) | (stray & ~ex.fits & lossy)
    names = {
        "vanishes": loss & whole_lost,
        "duplicates": (stray & (ex.fits | ~lossy)) | (gain & whole_gained),
        "breaks": breaks,
        "resizes": (loss & ~whole_lost & ~penetrates & ~breaks) | (gain & ~whole_gained),
        "deforms": (k == 1) & ~area_led,
        "penetrates": penetrates,
    }
    out = np.zeros((f, len(SCENE_FLAGS)))
    for name, where in names.items():
        out[:, _F[name]] = np.where(where, c, 0.0).max(-1, initial=0.0)
    gone = ((ex.missing[:, None] >> np.arange(n)) & 1) == 1  # [F, N]
    out[:, _F["vanishes"]] = np.maximum(
        out[:, _F["vanishes"]], np.where(gone, ex.lost, 0.0).max(-1, initial=0.0)
    )
    return out, ex


def recolour_evidence(
    blobs: list[Blobs],
    exs: list[Explanation],
    units: list[Units],
    foreign_px: np.ndarray,
    tol: SceneTolerances,
) -> np.ndarray:
    """Evidence that a body changed colour, [F]: a unit of one colour in no blob while a blob of
    no unit of another colour has its area and shape, or while as many foreign pixels
    (``foreign_px`` [F], all of them, beyond frame 0's) appeared. The unit's residual."""
    f = len(foreign_px)
    out = np.zeros(f)
    for k, (ex, u) in enumerate(zip(exs, units, strict=True)):
        n = len(u.area)
        gone = ((ex.missing[:, None] >> np.arange(n)) & 1) == 1  # [F, N]
        if not gone.any():
            continue
        lost = np.where(gone, ex.lost, 0.0)  # [F, N]
        foreign = (foreign_px - foreign_px[0])[:, None] >= 0.5 * u.area
        out = np.maximum(out, np.where(foreign, lost, 0.0).max(-1, initial=0.0))
        for k2, (ex2, b2) in enumerate(zip(exs, blobs, strict=True)):
            if k2 == k:
                continue
            stray = (ex2.assign == 0) & (ex2.cost > 1.0)  # [F, M]
            fit = np.maximum(np.abs(area_residuals(b2, u, tol)), shape_residuals(b2, u, tol))
            match = stray[..., None] & (fit <= 1.0) & gone[:, None]  # [F, M, N]
            out = np.maximum(out, np.where(match, lost[:, None], 0.0).max((1, 2), initial=0.0))
    return out


# ------------------------------------------------------------------------------ the flags
def _runs(score: np.ndarray, m: int) -> np.ndarray:
    """For each frame of ``score`` [T], the largest minimum over windows of m frames that contain
    it: above 1 exactly where the frame is in a run of at least m frames above 1. [T]."""
    if m <= 1 or len(score) < m:
        return score if m <= 1 else np.zeros_like(score)
    win = sliding_window_view(score, m).min(-1)  # [T - m + 1], window starting at t
    pad = np.concatenate([np.full(m - 1, -np.inf), win, np.full(m - 1, -np.inf)])
    return sliding_window_view(pad, m).max(-1)


def scene_flag_scores(
    videos: np.ndarray,
    start: SceneTrajectory,
    *,
    num_cond_frames: int = 1,
    tolerances: SceneTolerances | None = None,
) -> np.ndarray:
    """Evidence for each flag in each frame, float64 [B, T, len(SCENE_FLAGS)]; a flag is raised
    in a frame where its score exceeds 1. ``videos`` uint8 [B, T, H, W, 3] (square), ``start``
    the scenes at their given frame (``scene_start``; its first frame is used); the first
    ``num_cond_frames`` frames (given, not generated) score 0; ``tolerances`` default to
    ``SceneTolerances()``.
    """
    tol = tolerances or SceneTolerances()
    videos = np.asarray(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != np.uint8:
        raise PhylawError(f"scene_flags: videos must be uint8 [B, T, H, W, 3], got {videos.shape}")
    b, t, h, w, _ = videos.shape
    if h != w:
        raise PhylawError(f"scene_flags: square frames only, got {h}x{w}")
    if start.batch_size != b:
        raise PhylawError(f"scene_flags: {start.batch_size} scenes for {b} videos")
    c = int(num_cond_frames)
    if not 1 <= c < t:
        raise PhylawError(f"num_cond_frames must be in [1, {t - 1}] for {t} frames, got {c}")
    units = scene_units(start, PixelGrid.square(w), tol.mask_alpha)
    out = np.zeros((b, t, len(SCENE_FLAGS)))
    for i in range(b):
        blobs, foreign = scene_blobs(
            videos[i],
            places=[u.place for u in units[i]],
            mask_alpha=tol.mask_alpha,
            colour_residual=tol.colour_residual,
            colour_background=tol.colour_background,
        )
        total, exs = np.zeros(t), []
        for k in range(len(SCENE_COLOURS)):
            named, ex = flag_evidence(blobs[k], units[i][k], tol)
            out[i] = np.maximum(out[i], named)
            total = np.maximum(total, ex.score)
            exs.append(ex)
        out[i, :, _F["recolours"]] = recolour_evidence(blobs, exs, units[i], foreign[:, 1], tol)
        out[i] = np.minimum(out[i], _runs(total, tol.min_frames)[:, None])
        region = np.maximum(foreign[:, 0] - foreign[0, 0], 0) / tol.colour_min_px
        region = np.minimum(region, _runs(region, tol.min_frames))
        out[i, :, _F["recolours"]] = np.maximum(out[i, :, _F["recolours"]], region)
    out[:, :c] = 0.0
    return out


def scene_flag_matrix(videos: np.ndarray, start: SceneTrajectory, **kw) -> np.ndarray:
    """Flags as a matrix, bool [B, len(SCENE_FLAGS)]; arguments as ``scene_flag_scores``.
    ``abnormal = matrix.any(1)``."""
    return (scene_flag_scores(videos, start, **kw) > 1.0).any(1)


def scene_flags(videos: np.ndarray, start: SceneTrajectory, **kw) -> list[list[str]]:
    """The names (from ``SCENE_FLAGS``) raised for each of the B videos; an empty list is a
    plausible video. Arguments as ``scene_flag_scores``."""
    return [
        [SCENE_FLAGS[f] for f in np.flatnonzero(r)] for r in scene_flag_matrix(videos, start, **kw)
    ]

"""Physics metrics of generated videos: velocity error (the paper's e) and its companions.

Inputs: the states parsed from B generated videos (``parse.ParsedStates``) and the ground-truth
``Trajectory`` of the same scenes. Every metric is a per-video float64 [B], NaN only where the
*ground truth* leaves nothing to score (``reason`` says why); a model's failure never makes a
video leave a mean.

Which frames count (paper Sec. 3.1; reference section 2.3):

* generated frames only: the first ``num_cond_frames`` (c) frames condition the model and are
  skipped, so with c = 3 frame 3 is the first evaluated one and the first velocity sample is
  frames 3 -> 4 (the authors' ``CONDITION_FRAMES = 4`` skips indices 0..2, the same frames);
* frames where every ground-truth ball is fully in view: ``x - r >= 0``, ``x + r <= 10``,
  ``y - r >= 0``, ``y + r <= 10`` with the true radius (the authors check only the outer edges of
  the two collision balls); a velocity sample needs both of its frames;
* collision: the paper scores only frames after the collision. The contact is found from the
  ground truth (the first frame whose exact velocity differs from the previous one, or, without
  exact velocities, the authors' rule: finite-difference velocity jumps by more than 0.1) and the
  velocity sample spanning it is skipped. The unprefixed metrics are post-contact; ``pre_*``
  report the same metrics before contact.

Which objects count as *tracked* in a valid frame: the ball's colour is visible (``parse``) and
shows no second blob (a duplicate or a break-up: ``ParsedStates.count`` > 1). A ball cut by the
image border while the ground truth is fully in view is placed where its true body (disc, ring
or square of its true size) would show the area it shows (``parse.recentre_cut``): the centroid
of the visible part lies inside the true centre, and a ball that overshoots out of view must not
look closer than it is.

Monotone in failure. A velocity sample whose ball is not tracked in both frames is charged

    |v^| + MISSING_SPEED          (MISSING_SPEED = 10 world units/s)

the largest error of any tracked ball no faster than 10 world units/s (one world width per
second; every speed of the testbed is below it: OOD up to 6, a parabola falls at most 8). So
losing a ball, freezing it or duplicating it can only raise e: an erased ball scores more than
a frozen one (|v^|), and a ball erased for a few frames more than a clean one. Positions are
charged the distance from the true centre to the farthest corner of the world (the worst any
ball in view can be), radii as if the ball had shrunk to nothing. The authors' evaluator
substitutes x = 10 for a missing ball (reference section 2.2) and drops a video whose ball is
missing in its first frame; ``velocity_error_mean_authors`` keeps that rule for comparisons
with their numbers.

Metrics (velocities are finite differences over the frame interval from ``truth.times``; the
ground-truth comparator is the finite difference of the true positions, as the authors', which
equals the exact velocity for uniform and collision motion and its mid-interval value for the
parabola, where the parsed difference estimates the same quantity):

* ``velocity_error``: e = 1/(N|T|) sum_i sum_t |v_t^i - v^_t^i|, with |.| the Euclidean norm of
  the 2-D velocity difference (the paper's Sec. 3.1 definition; balls move in x for uniform and
  collision, in x and y for the parabola; a parsed vertical drift counts); ``velocity_error_x``
  uses |vx - v^x| only (the authors' ``abs_x_vel_err_avg`` / ``post_vel_err_avg``);
* ``velocity_error_mean``: per ball, |mean_t vx - mean_t v^x| over the tracked samples (the
  authors' code metric ``vel_error`` / ``post_vel_error``, which their figures' numbers match),
  weighted by the tracked share of the valid samples, plus the untracked share times the
  penalty above (|v^x| + MISSING_SPEED); mean over balls. ``velocity_error_mean_authors``: the
  same mean-velocity gap with the authors' imputation of a missing ball (x = 10; in collisions
  the red ball x = 0, the blue x = 10) and no penalty;
* ``position_error``: mean Euclidean |x - x^|; ``radius_drift``: max - min of the parsed radius
  (the authors' ``delta_r``, largest over balls; a missing ball has radius 0);
  ``radius_error``: mean |r - r^|;
* collision: ``momentum_error`` / ``energy_error``: mean |P - P^| (2-D) and |E - E^| against the
  ground truth at the same sample; ``post_momentum_error_avg`` / ``post_energy_error_avg``: the
  authors' absolute x-only versions against the initial momentum m1 v1 - m2 v2 and energy. An
  untracked ball adds its penalty, m (|v^| + MISSING_SPEED) and m (|v^| + MISSING_SPEED)^2 / 2.
  Masses are r^2 of the TRUE radii (the authors use the initial radii; a parsed radius would
  fold the radius error into the conservation error). Units: r^2 * world units/s (momentum) and
  r^2 * (world units/s)^2 (energy).

Counts per video: ``n_valid_frames`` and ``n_velocity_samples`` (what the ground truth lets us
score), ``n_tracked_samples`` (samples with every ball tracked), ``tracked_fraction`` (tracked
ball-samples / valid ball-samples, a value), ``missing_frames`` and ``duplicate_frames``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phylaw import PhylawError
from phylaw.eval.parse import ParsedStates, parse_videos, recentre_cut
from phylaw.physics.state import WORLD_SIZE, Trajectory
from phylaw.render.geometry import PixelGrid

NUM_COND_FRAMES = 3  # the paper conditions on the first 3 frames
CONTACT_JUMP = 0.1  # world units/s: the authors' velocity jump marking the collision sample
WITH_CONTACT = frozenset({"collision"})  # scenarios scored after the contact
MISSING_SPEED = 10.0  # world units/s: the penalty speed of an untracked ball (see above)
AUTHORS_MISSING_X = {"collision": (0.0, 10.0)}  # slot -> x; others 10 (reference 2.2)

BASE_METRICS = (
    "velocity_error",
    "velocity_error_x",
    "velocity_error_mean",
    "velocity_error_mean_authors",
    "position_error",
    "radius_drift",
    "radius_error",
    "tracked_fraction",
)
CONSERVATION_METRICS = ("momentum_error", "energy_error")
COUNTS = (
    "n_valid_frames",
    "n_velocity_samples",
    "n_tracked_samples",
    "missing_frames",
    "duplicate_frames",
)

NO_VIEW = "no {}generated frame with the ground-truth balls fully in view"
NO_CONTACT = "no contact within the video, so no post-contact frame"
NO_PAIR = "no two consecutive {}generated frames with the ground-truth balls fully in view"


@dataclass(frozen=True)
class VideoMetrics:
    """Per-video metrics of B videos of one scenario.

    ``values``: metric name -> float64 [B] (NaN where undefined); ``counts``: name -> int64 [B]
    (``COUNTS``, with ``pre_`` copies for collision, and ``contact_sample``); ``reason`` [B]
    str: why ``velocity_error`` is NaN, "" where defined.
    """

    scenario: str
    values: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    reason: np.ndarray

    @property
    def batch_size(self) -> int:
        return len(self.reason)

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.values:
            return self.values[name]
        if name in self.counts:
            return self.counts[name]
        raise KeyError(f"no metric {name!r}; have {sorted(self.values) + sorted(self.counts)}")

    def select(self, idx) -> VideoMetrics:
        """The metrics of the videos ``idx`` (an index array, mask or slice)."""
        pick = {k: v[idx] for k, v in self.values.items()}
        return VideoMetrics(
            self.scenario, pick, {k: v[idx] for k, v in self.counts.items()}, self.reason[idx]
        )

    def with_values(self, extra: dict[str, np.ndarray]) -> VideoMetrics:
        """The same metrics with ``extra`` values added (each [B])."""
        return VideoMetrics(self.scenario, {**self.values, **extra}, self.counts, self.reason)

    @staticmethod
    def concat(parts: Sequence[VideoMetrics]) -> VideoMetrics:
        """Join the metrics of consecutive batches (same scenario)."""
        if not parts:
            raise PhylawError("VideoMetrics.concat: nothing to join")
        first = parts[0]
        if any(p.scenario != first.scenario for p in parts):
            raise PhylawError("VideoMetrics.concat: the batches are of different scenarios")
        cat = {k: np.concatenate([p.values[k] for p in parts]) for k in first.values}
        counts = {k: np.concatenate([p.counts[k] for p in parts]) for k in first.counts}
        return VideoMetrics(first.scenario, cat, counts, np.concatenate([p.reason for p in parts]))

    def to_records(self) -> list[dict]:
        """One JSON-able dict per video (NaN -> None)."""
        rows = []
        for i in range(self.batch_size):
            row = {k: _num(v[i]) for k, v in self.values.items()}
            row.update({k: int(v[i]) for k, v in self.counts.items()})
            row["reason"] = str(self.reason[i])
            rows.append(row)
        return rows


def _num(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


# --------------------------------------------------------------------------------- helpers
def _masked_mean(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of ``x`` [B, S] over the entries where ``mask`` [B, S]; NaN where none. [B]."""
    n = mask.sum(axis=1)
    total = np.where(mask, x, 0.0).sum(axis=1)
    return np.divide(total, n, out=np.full(len(n), np.nan), where=n > 0)


def _fully_in_view(pos: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """True where every ball of [B, T, N, 2] with radii [B, N] lies inside the world. [B, T]."""
    r = radius[:, None, :, None]
    return ((pos - r >= 0.0) & (pos + r <= WORLD_SIZE)).all(axis=(-1, -2))


def _farthest_corner(pos: np.ndarray) -> np.ndarray:
    """Distance from each position [..., 2] to the farthest corner of the world, [...]."""
    far = np.maximum(pos, WORLD_SIZE - pos)
    return np.linalg.norm(far, axis=-1)


def contact_sample(truth: Trajectory) -> np.ndarray:
    """Index s of the velocity sample (frames s -> s+1) spanning the first contact, [B] int64.

    ``S = T - 1`` (no post-contact sample) when the velocities never change. Uses the exact
    velocities when present, else the authors' rule on finite differences (a jump > 0.1).
    """
    s = truth.num_frames - 1
    if truth.vel is not None:
        jump = np.abs(np.diff(truth.vel, axis=1)).max(axis=(-1, -2)) > 1e-9  # [B, S]
        first = np.argmax(jump, axis=1)
    else:
        v = np.diff(truth.pos, axis=1) / np.diff(truth.times)[None, :, None, None]
        jump = np.abs(np.diff(v[..., 0], axis=1)).max(axis=-1) > CONTACT_JUMP  # [B, S - 1]
        first = np.argmax(jump, axis=1) + 1
    return np.where(jump.any(axis=1), first, s).astype(np.int64)


def _check(parsed: ParsedStates, truth: Trajectory, num_cond_frames: int) -> None:
    if parsed.pos.shape != truth.pos.shape:
        raise PhylawError(
            f"physics metrics: parsed states {parsed.pos.shape} do not match the ground truth "
            f"{truth.pos.shape} ([B, T, N, 2]); parse the same videos, frames and bodies"
        )
    if not (np.asarray(truth.bodies.colour) == parsed.codes()).all():
        raise PhylawError(
            "physics metrics: the parsed colours are not the ground-truth body colours; parse "
            "with the bodies' colours in slot order (ParsedStates.for_bodies)"
        )
    if not 0 <= num_cond_frames < truth.num_frames - 1:
        raise PhylawError(
            f"invalid num_cond_frames {num_cond_frames}: give 0..{truth.num_frames - 2}"
        )


# --------------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class _Track:
    """Parsed kinematics of B videos against the truth (arrays over frames T / samples S)."""

    pos: np.ndarray  # [B, T, N, 2] parsed centres (cut discs recentred)
    tracked: np.ndarray  # [B, T, N] visible with one blob
    v: np.ndarray  # [B, S, N, 2] parsed velocity (NaN where untracked)
    v_true: np.ndarray  # [B, S, N, 2]
    pair: np.ndarray  # [B, S, N] tracked in both frames of the sample
    size: np.ndarray  # [B, T, N] parsed radius, 0 where untracked
    radius: np.ndarray  # [B, N] true radius


def _track(parsed: ParsedStates, truth: Trajectory) -> _Track:
    radius = np.asarray(truth.bodies.size, dtype=np.float64)
    pos = recentre_cut(parsed, truth.bodies)
    tracked = parsed.visible & (parsed.count <= 1)
    dt = np.diff(truth.times)[None, :, None, None]
    pair = tracked[:, 1:] & tracked[:, :-1]
    v = np.where(pair[..., None], np.diff(pos, axis=1) / dt, np.nan)
    size = np.where(tracked, parsed.size, 0.0)
    return _Track(pos, tracked, v, np.diff(truth.pos, axis=1) / dt, pair, size, radius)


def _velocity_metrics(k: _Track, samples: np.ndarray, truth: Trajectory, scenario: str) -> dict:
    """e, its x part and the mean-velocity gaps over the valid samples [B, S]."""
    vt, pair = k.v_true, k.pair
    speed = np.linalg.norm(vt, axis=-1)
    err = np.where(pair, np.linalg.norm(k.v - vt, axis=-1), speed + MISSING_SPEED)  # [B, S, N]
    err_x = np.where(pair, np.abs(k.v[..., 0] - vt[..., 0]), np.abs(vt[..., 0]) + MISSING_SPEED)
    out = {
        "velocity_error": _masked_mean(err.mean(-1), samples),
        "velocity_error_x": _masked_mean(err_x.mean(-1), samples),
    }
    gaps, authors = [], []
    dt = np.diff(truth.times)[None, :]
    for i in range(vt.shape[2]):
        ok = samples & pair[:, :, i]
        gap = np.abs(_masked_mean(k.v[:, :, i, 0], ok) - _masked_mean(vt[:, :, i, 0], ok))
        n_ok, n_all = ok.sum(1), samples.sum(1)
        penalty = np.where(samples & ~pair[:, :, i], np.abs(vt[:, :, i, 0]) + MISSING_SPEED, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            mixed = (np.nan_to_num(gap) * n_ok + penalty.sum(1)) / n_all
        gaps.append(np.where(n_all > 0, mixed, np.nan))
        x_missing = AUTHORS_MISSING_X.get(scenario, (10.0,) * vt.shape[2])[i]
        x = np.where(k.tracked[:, :, i], k.pos[:, :, i, 0], x_missing)
        vx = np.diff(x, axis=1) / dt
        authors.append(np.abs(_masked_mean(vx, samples) - _masked_mean(vt[:, :, i, 0], samples)))
    out["velocity_error_mean"] = np.mean(gaps, axis=0)
    out["velocity_error_mean_authors"] = np.mean(authors, axis=0)
    out["tracked_fraction"] = _masked_mean(pair.mean(-1), samples)
    return out


def _state_metrics(k: _Track, frames: np.ndarray, truth: Trajectory) -> dict:
    """Position and radius metrics over the valid frames [B, T]."""
    err = np.linalg.norm(k.pos - truth.pos, axis=-1)
    dp = np.where(k.tracked, err, _farthest_corner(truth.pos)).mean(-1)  # [B, T]
    hi = np.where(frames[..., None], k.size, -np.inf).max(axis=1)  # [B, N]
    lo = np.where(frames[..., None], k.size, np.inf).min(axis=1)
    dr = np.abs(k.size - k.radius[:, None]).mean(-1)  # [B, T]
    return {
        "position_error": _masked_mean(dp, frames),
        "radius_drift": np.where(frames.any(axis=1), (hi - lo).max(axis=-1), np.nan),
        "radius_error": _masked_mean(dr, frames),
    }


def _conservation_metrics(k: _Track, samples: np.ndarray, truth: Trajectory) -> dict:
    """Momentum and energy errors (collision) over the valid samples [B, S]."""
    m = k.radius**2  # [B, N] relative masses, true radii
    vt, pair = k.v_true, k.pair
    v = np.where(pair[..., None], k.v, 0.0)
    miss = np.where(pair, 0.0, np.linalg.norm(vt, axis=-1) + MISSING_SPEED)  # [B, S, N]
    mm = m[:, None]
    dp = np.where(pair[..., None], v - vt, 0.0)
    p_err = np.linalg.norm((mm[..., None] * dp).sum(2), axis=-1) + (mm * miss).sum(-1)
    e_gen = 0.5 * (mm * np.where(pair, (v**2).sum(-1), 0.0)).sum(-1)
    e_true = 0.5 * (mm * np.where(pair, (vt**2).sum(-1), 0.0)).sum(-1)
    e_err = np.abs(e_gen - e_true) + 0.5 * (mm * miss**2).sum(-1)
    # the authors' x-only errors against the initial momentum and energy (of the tracked balls)
    v0 = truth.vel[:, 0, :, 0] if truth.vel is not None else vt[:, 0, :, 0]  # [B, N]
    miss_x = np.where(pair, 0.0, np.abs(vt[..., 0]) + MISSING_SPEED)
    vx = np.where(pair, v[..., 0], 0.0)
    p0 = ((m * v0)[:, None] * pair).sum(-1)  # [B, S]
    e0 = ((0.5 * m * v0**2)[:, None] * pair).sum(-1)
    p_avg = np.abs((mm * vx).sum(-1) - p0) + (mm * miss_x).sum(-1)
    e_avg = np.abs((0.5 * mm * vx**2).sum(-1) - e0) + 0.5 * (mm * miss_x**2).sum(-1)
    return {
        "momentum_error": _masked_mean(p_err, samples),
        "energy_error": _masked_mean(e_err, samples),
        "momentum_error_avg": _masked_mean(p_avg, samples),
        "energy_error_avg": _masked_mean(e_avg, samples),
    }


def _segments(truth: Trajectory, scenario: str, b: int, t: int):
    """{prefix: (frames [B, T], samples [B, S])} of the scored segments, and the contact."""
    idx = np.arange(t - 1)[None, :]
    if scenario not in WITH_CONTACT:
        return {"": (np.ones((b, t), bool), np.ones((b, t - 1), bool))}, None
    sc = contact_sample(truth)[:, None]  # [B, 1]
    segments = {
        "": (np.arange(t)[None, :] > sc, idx > sc),  # post-contact frames and samples
        "pre_": (np.arange(t)[None, :] <= sc, idx < sc),
    }
    return segments, sc


def scored_samples(
    parsed: ParsedStates, truth: Trajectory, scenario: str, num_cond_frames: int = NUM_COND_FRAMES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which velocity samples e counts and how: ``(valid [B, S], tracked [B, S, N], v [B, S,
    N, 2])``: valid samples of the unprefixed metrics (generated frames, the truth fully in
    view, post-contact for collision), whether each ball was tracked in both frames (else it
    is charged the penalty), and the parsed velocities (cut discs recentred; NaN untracked).
    For plots that must show what the metric sees."""
    _check(parsed, truth, num_cond_frames)
    b, t = truth.pos.shape[:2]
    k = _track(parsed, truth)
    valid = _fully_in_view(truth.pos, k.radius) & (np.arange(t) >= num_cond_frames)
    seg_frames, seg_samples = _segments(truth, scenario, b, t)[0][""]
    frames = valid & seg_frames
    return seg_samples & frames[:, :-1] & frames[:, 1:], k.pair, k.v


def physics_metrics(
    parsed: ParsedStates,
    truth: Trajectory,
    scenario: str,
    num_cond_frames: int = NUM_COND_FRAMES,
) -> VideoMetrics:
    """Per-video physics metrics of B generated videos (see the module docstring).

    ``parsed``: states parsed from the generated videos, [B, T, N]; ``truth``: the ground-truth
    trajectories of the same scenes, [B, T, N] (colours in the same slot order); ``scenario``:
    a registered scenario name (collision is scored after the contact); ``num_cond_frames``:
    the conditioning frames, which are not scored. Returns ``VideoMetrics`` [B]. (The
    scenario only decides whether frames count after a contact, ``WITH_CONTACT``.)
    """
    _check(parsed, truth, num_cond_frames)
    b, t = truth.pos.shape[:2]
    k = _track(parsed, truth)
    valid = _fully_in_view(truth.pos, k.radius) & (np.arange(t) >= num_cond_frames)  # [B, T]
    segments, sc = _segments(truth, scenario, b, t)
    values: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    reason = np.full(b, "", dtype=object)
    for prefix, (seg_frames, seg_samples) in segments.items():
        frames = valid & seg_frames
        samples = seg_samples & frames[:, :-1] & frames[:, 1:]
        names = _velocity_metrics(k, samples, truth, scenario)
        names.update(_state_metrics(k, frames, truth))
        if scenario in WITH_CONTACT:
            names.update(_conservation_metrics(k, samples, truth))
        for name, value in names.items():
            key = f"{prefix or 'post_'}{name}" if name.endswith("_avg") else f"{prefix}{name}"
            values[key] = value
        all_tracked = k.pair.all(-1)
        counts[f"{prefix}n_valid_frames"] = frames.sum(axis=1)
        counts[f"{prefix}n_velocity_samples"] = samples.sum(axis=1)
        counts[f"{prefix}n_tracked_samples"] = (samples & all_tracked).sum(axis=1)
        counts[f"{prefix}missing_frames"] = (frames & ~parsed.visible.all(-1)).sum(axis=1)
        counts[f"{prefix}duplicate_frames"] = (frames & (parsed.count > 1).any(-1)).sum(axis=1)
        if prefix == "":
            seg = "" if sc is None else "post-contact "
            no_view = ~frames.any(axis=1)
            reason[no_view] = NO_VIEW.format(seg)
            if sc is not None:
                reason[no_view & (sc[:, 0] >= t - 1)] = NO_CONTACT
            reason[~no_view & ~samples.any(axis=1)] = NO_PAIR.format(seg)
    if sc is not None:
        counts["contact_sample"] = sc[:, 0]
    return VideoMetrics(scenario, values, counts, reason.astype(str))


def evaluate_videos(
    videos: np.ndarray,
    truth: Trajectory,
    scenario: str,
    grid: PixelGrid | None = None,
    num_cond_frames: int = NUM_COND_FRAMES,
) -> VideoMetrics:
    """Parse ``videos`` uint8 [B, T, H, W, 3] (drawn on ``grid``) for the bodies' colours and
    score them against ``truth``: ``physics_metrics(parse_videos(...), truth, ...)``."""
    colour = np.asarray(truth.bodies.colour)
    palette = tuple(dict.fromkeys(int(c) for c in colour.reshape(-1)))
    parsed = parse_videos(videos, palette, grid).for_bodies(colour)
    return physics_metrics(parsed, truth, scenario, num_cond_frames)

"""Physics metrics of generated videos: velocity error (the paper's e) and its companions.

Inputs: the states parsed from B generated videos (``parse.ParsedStates``) and the ground-truth
``Trajectory`` of the same scenes. Every metric is a per-video float64 [B], NaN where undefined.

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
  report the same metrics before contact;
* a frame where a parsed ball is missing is excluded, never imputed (the authors substitute
  x = 10); ``missing_frames`` counts such frames among the valid ones. With no valid frame left
  a metric is NaN and ``reason`` says why. Validity follows the ground truth only: a generated
  ball cut by the image border (``ParsedStates.in_view`` False) is scored at the centroid it
  shows, as in the authors' code.

Metrics (velocities are finite differences over the frame interval from ``truth.times``; the
ground-truth comparator is the finite difference of the true positions, as the authors', which
equals the exact velocity for uniform and collision motion and its mid-interval value for the
parabola, where the parsed difference estimates the same quantity):

* ``velocity_error``: e = 1/(N|T|) sum_i sum_t |v_t^i - v^_t^i|, with |.| the Euclidean norm of
  the 2-D velocity difference (balls move in x for uniform and collision, in x and y for the
  parabola; a parsed vertical drift counts); ``velocity_error_x`` uses |vx - v^x| only (the
  authors' ``abs_x_vel_err_avg`` / ``post_vel_err_avg``);
* ``velocity_error_mean``: mean over balls of |mean_t vx - mean_t v^x|, the authors' headline
  (``vel_error`` = |mean vx - v| for uniform motion, ``post_vel_error`` for collision);
* ``position_error``: mean Euclidean |x - x^|; ``radius_drift``: max - min of the parsed radius
  (the authors' ``delta_r``, largest over balls); ``radius_error``: mean |r - r^|;
* collision: ``momentum_error`` / ``energy_error``: mean |P - P^| (2-D) and |E - E^| against the
  ground truth at the same sample; ``post_momentum_error_avg`` / ``post_energy_error_avg``: the
  authors' absolute x-only versions against the initial momentum m1 v1 - m2 v2 and energy.
  Masses are r^2 of the TRUE radii (the authors use the initial radii; a parsed radius would
  fold the radius error into the conservation error). Units: r^2 * world units/s (momentum) and
  r^2 * (world units/s)^2 (energy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phylaw import PhylawError
from phylaw.eval.parse import ParsedStates, parse_videos
from phylaw.physics.scenarios import get_scenario
from phylaw.physics.state import WORLD_SIZE, Trajectory
from phylaw.render.geometry import PixelGrid

NUM_COND_FRAMES = 3  # the paper conditions on the first 3 frames
CONTACT_JUMP = 0.1  # world units/s: the authors' velocity jump marking the collision sample
WITH_CONTACT = frozenset({"collision"})  # scenarios scored after the contact

BASE_METRICS = (
    "velocity_error",
    "velocity_error_x",
    "velocity_error_mean",
    "position_error",
    "radius_drift",
    "radius_error",
)
CONSERVATION_METRICS = ("momentum_error", "energy_error")
COUNTS = ("n_valid_frames", "n_velocity_samples", "missing_frames")

NO_VIEW = "no {}generated frame with the ground-truth balls fully in view"
NO_CONTACT = "no contact within the video, so no post-contact frame"
MISSING = "a parsed ball is missing in every valid {}frame"
NO_PAIR = "no two consecutive valid {}frames with the parsed balls visible"


@dataclass(frozen=True)
class VideoMetrics:
    """Per-video metrics of B videos of one scenario.

    ``values``: metric name -> float64 [B] (NaN where undefined); ``counts``: name -> int64 [B]
    (``n_valid_frames``, ``n_velocity_samples``, ``missing_frames``, ``pre_*`` for collision,
    ``contact_sample``); ``reason`` [B] str: why ``velocity_error`` is NaN, "" where defined.
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
    want = np.asarray([int(c) for c in parsed.colours])
    if not (np.asarray(truth.bodies.colour) == want).all():
        raise PhylawError(
            "physics metrics: the parsed colours are not the ground-truth body colours "
            f"{[c.name.lower() for c in parsed.colours]}; parse with the bodies' colours in order"
        )
    if not 0 <= num_cond_frames < truth.num_frames - 1:
        raise PhylawError(
            f"invalid num_cond_frames {num_cond_frames}: give 0..{truth.num_frames - 2}"
        )


# --------------------------------------------------------------------------------- metrics
def _segment_metrics(
    frames: np.ndarray,
    samples: np.ndarray,
    parsed: ParsedStates,
    truth: Trajectory,
    v: np.ndarray,
    v_true: np.ndarray,
    conservation: bool,
) -> dict[str, np.ndarray]:
    """Metrics over the frames [B, T] and velocity samples [B, S] selected (all balls visible).

    ``v``, ``v_true`` [B, S, N, 2]: parsed and true finite-difference velocities.
    """
    radius = np.asarray(truth.bodies.size, dtype=np.float64)  # [B, N]
    dv = v - v_true
    out = {
        "velocity_error": _masked_mean(np.linalg.norm(dv, axis=-1).mean(-1), samples),
        "velocity_error_x": _masked_mean(np.abs(dv[..., 0]).mean(-1), samples),
    }
    gap = [
        np.abs(_masked_mean(v[:, :, i, 0], samples) - _masked_mean(v_true[:, :, i, 0], samples))
        for i in range(v.shape[2])
    ]
    out["velocity_error_mean"] = np.mean(gap, axis=0)
    dp = np.linalg.norm(parsed.pos - truth.pos, axis=-1).mean(-1)  # [B, T]
    out["position_error"] = _masked_mean(dp, frames)
    hi = np.where(frames[..., None], parsed.size, -np.inf).max(axis=1)  # [B, N]
    lo = np.where(frames[..., None], parsed.size, np.inf).min(axis=1)
    out["radius_drift"] = np.where(frames.any(axis=1), (hi - lo).max(axis=-1), np.nan)
    dr = np.abs(parsed.size - radius[:, None]).mean(-1)  # [B, T]
    out["radius_error"] = _masked_mean(dr, frames)
    if conservation:
        m = radius**2  # [B, N] relative masses, true radii
        p = (m[:, None, :, None] * v).sum(axis=2)  # [B, S, 2]
        p_true = (m[:, None, :, None] * v_true).sum(axis=2)
        e = 0.5 * (m[:, None] * (v**2).sum(-1)).sum(-1)  # [B, S]
        e_true = 0.5 * (m[:, None] * (v_true**2).sum(-1)).sum(-1)
        out["momentum_error"] = _masked_mean(np.linalg.norm(p - p_true, axis=-1), samples)
        out["energy_error"] = _masked_mean(np.abs(e - e_true), samples)
        v0 = truth.vel[:, 0, :, 0] if truth.vel is not None else v_true[:, 0, :, 0]  # [B, N]
        p0 = (m * v0).sum(-1)[:, None]
        e0 = (0.5 * m * v0**2).sum(-1)[:, None]
        vx = v[..., 0]
        out["momentum_error_avg"] = _masked_mean(np.abs((m[:, None] * vx).sum(-1) - p0), samples)
        out["energy_error_avg"] = _masked_mean(
            np.abs((0.5 * m[:, None] * vx**2).sum(-1) - e0), samples
        )
    return out


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
    the conditioning frames, which are not scored. Returns ``VideoMetrics`` [B].
    """
    get_scenario(scenario)
    _check(parsed, truth, num_cond_frames)
    b, t = truth.pos.shape[:2]
    dt = np.diff(truth.times)[None, :, None, None]
    v = np.diff(parsed.pos, axis=1) / dt  # [B, S, N, 2], NaN where a ball is missing
    v_true = np.diff(truth.pos, axis=1) / dt
    radius = np.asarray(truth.bodies.size, dtype=np.float64)
    valid = _fully_in_view(truth.pos, radius) & (np.arange(t) >= num_cond_frames)  # [B, T]
    visible = parsed.visible.all(axis=-1)

    idx = np.arange(t - 1)[None, :]
    if scenario in WITH_CONTACT:
        sc = contact_sample(truth)[:, None]  # [B, 1]
        segments = {
            "": (np.arange(t)[None, :] > sc, idx > sc),  # post-contact frames and samples
            "pre_": (np.arange(t)[None, :] <= sc, idx < sc),
        }
    else:
        sc = None
        segments = {"": (np.ones((b, t), bool), np.ones((b, t - 1), bool))}

    values: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    reason = np.full(b, "", dtype=object)
    for prefix, (seg_frames, seg_samples) in segments.items():
        ok = valid & seg_frames
        frames = ok & visible
        samples = seg_samples & frames[:, :-1] & frames[:, 1:]
        names = _segment_metrics(
            frames, samples, parsed, truth, v, v_true, scenario in WITH_CONTACT
        )
        for name, value in names.items():
            if name.endswith("_avg"):  # the authors' names: pre_/post_ prefix
                values[f"{prefix or 'post_'}{name}"] = value
            else:
                values[f"{prefix}{name}"] = value
        counts[f"{prefix}n_valid_frames"] = frames.sum(axis=1)
        counts[f"{prefix}n_velocity_samples"] = samples.sum(axis=1)
        counts[f"{prefix}missing_frames"] = (ok & ~visible).sum(axis=1)
        if prefix == "":
            seg = "" if sc is None else "post-contact "
            no_view = ~ok.any(axis=1)
            reason[no_view] = NO_VIEW.format(seg)
            if sc is not None:
                reason[no_view & (sc[:, 0] >= t - 1)] = NO_CONTACT
            reason[~no_view & ~frames.any(axis=1)] = MISSING.format(seg)
            reason[frames.any(axis=1) & ~samples.any(axis=1)] = NO_PAIR.format(seg)
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
    colours = tuple(int(c) for c in np.asarray(truth.bodies.colour)[0])
    parsed = parse_videos(videos, colours, grid)
    return physics_metrics(parsed, truth, scenario, num_cond_frames)

"""Group per-video metrics by the split's levels: count, mean, median and a bootstrap CI.

Groups: ``"overall"`` (every video) and one per level of the split under ``"levels"``
(``store.levels``: ``"id"`` for eval-id, every OOD level name for eval-ood; the overall group is
not called "all" because the collision OOD level with every parameter out is). Every level is
reported: unlike the authors' evaluator (reference
section 2.5) nothing is filtered (they drop r < 0.6 one-ball videos and collisions with a radius
<= 0.5, most small-radius OOD videos and the smallest ID radius). A metric is NaN only where the
ground truth leaves nothing to score (no frame pair with every ball fully in view, see
``physics.VideoMetrics.reason``): the same videos for every model; they are left out of that
metric's statistics, counted in ``n_nan`` and their reasons tallied per group. Every group says
what its means stand on: ``videos``, ``scored`` (videos with a defined e), ``velocity_samples``
(frame pairs scored) and ``tracked_fraction`` (of the ball-samples, those where the generated
ball was found once in both frames; the rest carry the missing-ball penalty).

Confidence interval: percentile bootstrap of the mean, ``resamples`` draws of the group's videos
with replacement, seeded (same inputs and seed, same bytes). It is vectorised as one count
matrix W [R, n] per group (how often each video is drawn): the resampled means of all metrics
are ``(W @ x) / (W @ defined)``, i.e. each resample averages its defined values, so NaN videos
are resampled like the others and simply not averaged.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from phylaw import PhylawError
from phylaw.eval.metrics.physics import VideoMetrics

RESAMPLES = 1000
CONFIDENCE = 0.95


def _num(x) -> float | None:
    """A JSON-able float (NaN and inf -> None)."""
    x = float(x)
    return x if np.isfinite(x) else None


def bootstrap_means(
    values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0, key: str = ""
) -> np.ndarray:
    """Bootstrap means of each column of ``values`` [n, M] (NaN = undefined). Returns [R, M].

    A resample draws n rows with replacement (from ``seed`` and ``key``, e.g. the group name)
    and averages each column over its defined entries (NaN where it drew none).
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return np.full((resamples, values.shape[1]), np.nan)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    draws = rng.integers(0, n, size=(resamples, n))
    offsets = (np.arange(resamples) * n)[:, None]
    w = np.bincount((draws + offsets).ravel(), minlength=resamples * n).reshape(resamples, n)
    defined = np.isfinite(values)
    sums = w @ np.where(defined, values, 0.0)  # [R, M]
    counts = w @ defined.astype(np.float64)
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def summarize(
    values: Mapping[str, np.ndarray],
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    key: str = "",
) -> dict[str, dict]:
    """Statistics of each metric (name -> [n] float): ``count`` (defined), ``n_nan``, ``mean``,
    ``median``, ``ci_low``/``ci_high`` (bootstrap of the mean) as JSON-able numbers."""
    names = list(values)
    if not names:
        return {}
    x = np.stack([np.asarray(values[k], dtype=np.float64) for k in names], axis=1)  # [n, M]
    means = bootstrap_means(x, resamples, seed, key)
    tail = 100 * (1 - confidence) / 2
    out: dict[str, dict] = {}
    for j, name in enumerate(names):
        col = x[:, j]
        ok = np.isfinite(col)
        boot = means[:, j][np.isfinite(means[:, j])]
        lo, hi = np.percentile(boot, [tail, 100 - tail]) if boot.size else (np.nan, np.nan)
        out[name] = {
            "count": int(ok.sum()),
            "n_nan": int((~ok).sum()),
            "mean": _num(col[ok].mean()) if ok.any() else None,
            "median": _num(np.median(col[ok])) if ok.any() else None,
            "ci_low": _num(lo),
            "ci_high": _num(hi),
        }
    return out


def stand_on(metrics: VideoMetrics) -> dict:
    """What a group's means stand on: ``scored`` videos (e defined), ``velocity_samples``
    (valid frame pairs) and ``tracked_fraction`` of the ball-samples (None without samples)."""
    out: dict = {}
    if "velocity_error" in metrics.values:
        out["scored"] = int(np.isfinite(metrics.values["velocity_error"]).sum())
    if "n_velocity_samples" in metrics.counts and "tracked_fraction" in metrics.values:
        n = metrics.counts["n_velocity_samples"].astype(np.float64)
        tf = np.nan_to_num(metrics.values["tracked_fraction"])
        out["velocity_samples"] = int(n.sum())
        out["tracked_fraction"] = _num((tf * n).sum() / n.sum()) if n.sum() else None
    return out


def aggregate(
    metrics: VideoMetrics,
    level: np.ndarray,
    level_names: Sequence[str],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict:
    """Per-group statistics of per-video metrics, as a JSON-able dict.

    ``metrics``: B videos; ``level`` [B] int: each video's index into ``level_names`` (the
    store's ``level`` column and ``store.levels``). Returns ``{"scenario", "bootstrap",
    "overall": group, "levels": {level name: group}}`` with group = ``{"videos", "scored",
    "velocity_samples", "tracked_fraction"`` (``stand_on``), ``"metrics": {name: stats},
    "counts": {name: sum}, "nan_reasons": {reason: videos}}`` and stats as in ``summarize``.
    """
    level = np.asarray(level)
    if level.shape != (metrics.batch_size,):
        raise PhylawError(
            f"aggregate: level must have one code per video ({metrics.batch_size}), "
            f"got shape {level.shape}"
        )
    if level.size and (level.min() < 0 or level.max() >= len(level_names)):
        raise PhylawError(
            f"aggregate: level codes must index the {len(level_names)} level names "
            f"{list(level_names)}; got codes {sorted(set(level.tolist()))}"
        )
    if not 0 < confidence < 1 or resamples < 1:
        raise PhylawError("aggregate: confidence must be in (0, 1) and resamples >= 1")
    if len(set(level_names)) != len(level_names):
        raise PhylawError(f"aggregate: level names must be distinct, got {list(level_names)}")

    def group(sel: np.ndarray, key: str) -> dict:
        part = metrics.select(sel)
        reasons = Counter(str(r) for r in part.reason if r)
        return {
            "videos": int(sel.sum()),
            **stand_on(part),
            "metrics": summarize(part.values, resamples, seed, confidence, key=key),
            "counts": {k: int(v.sum()) for k, v in part.counts.items() if k != "contact_sample"},
            "nan_reasons": dict(sorted(reasons.items())),
        }

    return {
        "scenario": metrics.scenario,
        "bootstrap": {"resamples": resamples, "seed": seed, "confidence": confidence},
        "overall": group(np.ones(metrics.batch_size, dtype=bool), "overall"),
        "levels": {name: group(level == code, name) for code, name in enumerate(level_names)},
    }

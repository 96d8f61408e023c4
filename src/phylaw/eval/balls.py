"""Scoring videos of the fundamental scenarios (balls): physics, flags, fidelity, the floor.

One batch: the pixels are parsed once (``parse``: positions, sizes, blob counts, moments and
foreign colours), the physics is scored against the simulator (``metrics.physics``: e and its
companions), the plausibility flags are raised (``flags.balls``), and when asked PSNR and SSIM
against the ground truth rendered at the same resolution. On a region split (the Sec. 5
studies) each video's record also says what it did: the conditioned and the generated
velocity, size, colour and shape (``metrics.attributes``). At the end the parse floor: the same
evaluation of the ground-truth videos on the same rows, frames and condition frames, through the
mp4 codec when the videos came as mp4 (``floor``; cached beside the split).
"""

from __future__ import annotations

import numpy as np

from phylaw.data.store import Store
from phylaw.eval.flags.balls import (
    FLAGS,
    PlausibilityTolerances,
    foreign_table,
    parse_for_flags,
    plausibility_matrix,
)
from phylaw.eval.floor import parse_bodies, parse_floor, split_palette
from phylaw.eval.metrics.attributes import video_attributes
from phylaw.eval.metrics.physics import NUM_COND_FRAMES, VideoMetrics, physics_metrics
from phylaw.eval.sources import FolderSource
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render_trajectory

__all__ = ["BallScorer", "format_table"]


class BallScorer:
    """The scorer of ``eval.run.evaluate`` for uniform, collision and parabola splits."""

    flags = FLAGS
    level_key = "level"
    default_cond = NUM_COND_FRAMES
    forks = True  # numpy only: batches may be scored in forked processes

    def prepare(self, store: Store, cfg) -> None:
        """Build the lookup tables once, before workers fork (they share them)."""
        colours = split_palette(store)
        parse_for_flags(np.full((1, 1, 8, 8, 3), 255, np.uint8), colours)
        t = PlausibilityTolerances()
        foreign_table(colours, t.colour_residual, t.colour_background, t.solid_alpha)

    def score(self, store: Store, rows: np.ndarray, videos: np.ndarray, cfg):
        """``(metrics [b], flags [b, F], extra {})`` of one batch of videos [b, T, H, W, 3]."""
        grid = PixelGrid(videos.shape[3], videos.shape[2])
        truth = store.trajectory(rows)
        if cfg.frames is not None:
            truth = truth.at_frames(list(cfg.frames))
        studied = "regions" in store.manifest  # a Sec. 5 split: what each video did, too
        order = {"moments_order": 4} if studied else {}
        parsed, palette = parse_bodies(videos, store, truth.bodies, grid, **order)
        metrics = physics_metrics(parsed, truth, store.scenario, cfg.num_cond_frames)
        flags = plausibility_matrix(parsed, videos, num_cond_frames=cfg.num_cond_frames)
        extra = {"abnormal": flags.any(1).astype(np.float64)}
        fields = video_attributes(store, palette, truth, cfg.num_cond_frames) if studied else []
        if cfg.fidelity:  # imported here: it brings torch (a second of start-up)
            from phylaw.eval.metrics.fidelity import frame_range_mean, psnr, ssim

            reference = render_trajectory(truth, grid)
            extra["psnr"] = frame_range_mean(psnr(videos, reference), cfg.num_cond_frames)
            extra["ssim"] = frame_range_mean(ssim(videos, reference), cfg.num_cond_frames)
        return metrics.with_values(extra), flags, {"records": fields}

    def finish(self, store: Store, rows: np.ndarray, extras: list, summary: dict, cfg, ctx):
        """Add the parse floor, on the scored rows, frames and condition frames."""
        if not cfg.floor:
            return
        source = ctx.source
        codec = isinstance(source, FolderSource) and any(
            p.suffix.lower() == ".mp4" for p in source.files.values()
        )
        _, summary["floor"] = parse_floor(
            store,
            summary["resolution"],
            codec,
            rows=np.sort(rows),
            frames=cfg.frames,
            num_cond_frames=cfg.num_cond_frames,
            resamples=cfg.resamples,
            seed=cfg.seed,
            run_batches=ctx.floor_batches,
        )


def record_values(metrics: VideoMetrics) -> list[dict]:
    """Per-video JSON records of the metrics."""
    return metrics.to_records()


# --------------------------------------------------------------------------- the table
def _cell(stats: dict | None, scale: float = 1.0, ci: bool = True) -> str:
    if not stats or stats.get("mean") is None:
        return "-"
    lo, hi = stats.get("ci_low"), stats.get("ci_high")
    text = f"{stats['mean'] * scale:.4f}"
    if ci and lo is not None and hi is not None:
        text += f" [{lo * scale:.3f}, {hi * scale:.3f}]"
    return text


def _tracked(group: dict | None) -> str:
    tf = (group or {}).get("tracked_fraction")
    return "-" if tf is None else f"{100 * tf:.1f}%"


def format_table(summary: dict) -> str:
    """A plain-text table: one row per group (overall, then each level): what it stands on
    (videos, scored, tracked ball-samples), e with its interval, the authors' |mean v - v|, the
    floor's e and tracking, and the abnormal rate."""
    floor = summary.get("floor", {})
    groups = [("overall", summary["overall"], floor.get("overall"))]
    groups += [
        (name, g, floor.get("levels", {}).get(name)) for name, g in summary["levels"].items()
    ]
    w = max(8, *(len(name) for name, _, _ in groups))
    head = (
        f"{'group':<{w}} {'videos':>6} {'scored':>6} {'tracked':>8}  "
        f"{'e (paper Sec. 3.1) [95% CI]':<29} {'|mean v - v|':<12} {'floor e':<8} "
        f"{'tracked':>8} {'abnormal':>8}"
    )
    lines = [
        f"{summary['scenario']} {summary['split']}: {summary['videos']} videos scored, "
        f"{summary['failures']} failed; {summary.get('resolution', '?')} px, frames "
        f"{summary.get('frame_indices') or 'all'}, {summary['num_cond_frames']} given",
        head,
        "-" * len(head),
    ]
    for name, g, fl in groups:
        m = g["metrics"]
        abnormal = m.get("abnormal", {}).get("mean")
        lines.append(
            f"{name:<{w}} {g['videos']:>6} {g.get('scored', '-'):>6} {_tracked(g):>8}  "
            f"{_cell(m.get('velocity_error')):<29} "
            f"{_cell(m.get('velocity_error_mean'), ci=False):<12} "
            f"{_cell((fl or {}).get('metrics', {}).get('velocity_error'), ci=False):<8} "
            f"{_tracked(fl):>8} {'-' if abnormal is None else f'{100 * abnormal:.1f}%':>8}"
        )
    drawn, kept = summary.get("level_candidates") or {}, summary.get("level_kept") or {}
    if any(kept.get(k, n) < n for k, n in drawn.items()):
        lines.append(
            "the split's placement rule kept per level: "
            + ", ".join(f"{k} {kept[k]} of {drawn[k]}" for k in summary["levels"] if k in drawn)
            + " drawn ('phylaw data info' shows which parameters it favours)"
        )
    lines.append(
        "e: per-frame velocity error over the generated frames, a ball not found (or found "
        "twice) charged |v| + 10; scored: videos whose ground truth has a frame pair in view; "
        "tracked: ball-samples found once in both frames."
    )
    return "\n".join(lines)

"""Scoring videos of combinatorial scenes (the paper's Sec. 4.2, Table 2).

``eval.run.evaluate`` scores with ``SceneScorer`` when ``--data`` is a combinatorial split. For
each video: the ground truth is rendered at the video's size and frames; fidelity is PSNR and
SSIM over the generated frames (and LPIPS when its weights are given), FVD over the set when
I3D's are (and the videos have the 9 frames it needs); the abnormality flags of
``flags.scenes`` replace the paper's human "abnormal" label. The same flags on the ground truth
itself, rendered at the same size and frames, give the floor of the abnormal rate (what the
flags cost a perfect model).

Settings follow spec/reference.md 3.6 except that metrics average over the generated frames
(the authors average over all 32 frames, the given first one included; ``metrics.fidelity``).
Records: id, template, psnr, ssim, lpips, abnormal, flags; the summary adds the rate of each
flag, FVD and the floor.
"""

from __future__ import annotations

import os

import numpy as np

from phylaw.data.store import Store
from phylaw.eval.flags.scenes import SCENE_FLAGS, scene_flag_matrix, scene_start
from phylaw.eval.metrics.physics import VideoMetrics
from phylaw.eval.sources import BatchFailure
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render_trajectory

__all__ = ["SceneScorer", "format_scene_table"]

FVD_MIN_FRAMES = 9  # I3D's temporal receptive field (metrics.fidelity.i3d_features)


def _network(kind: str, path: str | None):
    """LPIPS or I3D from ``path`` (or its environment variable), or None when neither is set."""
    from phylaw.eval.metrics.nets.i3d import I3D, I3D_ENV
    from phylaw.eval.metrics.nets.lpips import LPIPS, LPIPS_ENV

    cls, env = (LPIPS, LPIPS_ENV) if kind == "lpips" else (I3D, I3D_ENV)
    if path is None and not os.environ.get(env):
        return None
    return cls.from_file(path).eval()


class SceneScorer:
    """The scorer of ``eval.run.evaluate`` for combinatorial (PHYRE-style) splits."""

    flags = SCENE_FLAGS
    level_key = "template"
    default_cond = 1  # the paper conditions on the first frame
    forks = False  # torch (SSIM, LPIPS, I3D): scored in this process

    def prepare(self, store: Store, cfg) -> None:
        """Load the networks whose weights are given (LPIPS, I3D for FVD)."""
        self.lpips = _network("lpips", cfg.lpips_weights)
        self.i3d = _network("i3d", cfg.i3d_weights)

    def score(self, store: Store, rows: np.ndarray, videos: np.ndarray, cfg):
        """``(metrics [b], flags [b, F], extra)`` of one batch; ``extra`` holds the I3D
        features (for FVD) and the flags of the ground truth (the floor)."""
        from phylaw.eval.metrics.fidelity import (
            frame_range_mean,
            i3d_features,
            lpips_distance,
            psnr,
            ssim,
        )

        b, t, h, w, _ = videos.shape
        if h != w:
            raise BatchFailure(f"frames must be square, got {h}x{w}")
        c = cfg.num_cond_frames
        traj = store.trajectory(rows)
        frames = list(range(traj.num_frames)) if cfg.frames is None else list(cfg.frames)
        # all frames drawn, then picked: a body at rest reuses its pose's pixels frame to frame
        truth = render_trajectory(traj, PixelGrid(w, h))[:, frames]
        start = scene_start(traj, frames[0])
        flags = scene_flag_matrix(videos, start, num_cond_frames=c)
        part = {
            "psnr": frame_range_mean(psnr(videos, truth), c),
            "ssim": frame_range_mean(ssim(videos, truth), c),
            "abnormal": flags.any(1).astype(np.float64),
        }
        if self.lpips is not None and min(h, w) >= 31:
            part["lpips"] = frame_range_mean(lpips_distance(videos, truth, self.lpips), c)
        for k, name in enumerate(SCENE_FLAGS):
            part[f"flag_{name}"] = flags[:, k].astype(np.float64)
        extra = {}
        if cfg.floor:
            extra["floor"] = scene_flag_matrix(truth, start, num_cond_frames=c)
        if self.i3d is not None and t >= FVD_MIN_FRAMES:
            extra["features"] = (i3d_features(videos, self.i3d), i3d_features(truth, self.i3d))
        metrics = VideoMetrics("combinatorial", part, {}, np.full(b, "", dtype=object))
        return metrics, flags, extra

    def finish(self, store: Store, rows: np.ndarray, extras: list, summary: dict, cfg, ctx):
        """FVD over the set, the flags' floor on the ground truth, what was skipped and why."""
        from phylaw.eval.metrics.fidelity import fvd

        feats = [e["features"] for e in extras if "features" in e]
        notes = {}
        if self.lpips is None:
            notes["lpips"] = "skipped: no weights (--lpips-weights or PHYLAW_LPIPS_WEIGHTS)"
        n_frames = len(summary["frame_indices"] or range(store.manifest["num_frames"]))
        if self.i3d is None:
            notes["fvd"] = "skipped: no weights (--i3d-weights or PHYLAW_I3D_WEIGHTS)"
        elif not feats:
            notes["fvd"] = f"skipped: I3D needs {FVD_MIN_FRAMES} frames, the videos have {n_frames}"
        elif len(rows) < 2:
            notes["fvd"] = "skipped: FVD needs at least 2 videos"
        gen = [f[0] for f in feats]
        ref = [f[1] for f in feats]
        summary.update(
            flags=list(SCENE_FLAGS),
            fvd=fvd(np.concatenate(gen), np.concatenate(ref)) if feats and len(rows) >= 2 else None,
            skipped=notes,
        )
        floor = [e["floor"] for e in extras if "floor" in e]
        if floor:
            gt = np.concatenate(floor)
            summary["floor"] = {
                "abnormal": float(gt.any(1).mean()),
                "flags": {name: float(gt[:, k].mean()) for k, name in enumerate(SCENE_FLAGS)},
                "videos": int(len(gt)),
            }


def format_scene_table(summary: dict) -> str:
    """A plain-text table: overall, then each template: videos, PSNR, SSIM, LPIPS, abnormal."""
    floor = summary.get("floor") or {}

    def cell(stats: dict | None, scale: float = 1.0, digits: int = 3) -> str:
        if not stats or stats.get("mean") is None:
            return "-"
        return f"{stats['mean'] * scale:.{digits}f}"

    head = f"{'group':<8} {'videos':>6} {'PSNR':>7} {'SSIM':>6} {'LPIPS':>6} {'abnormal %':>10}"
    fvd_line = "-" if summary.get("fvd") is None else f"{summary['fvd']:.1f}"
    lines = [
        f"combinatorial {summary['split']}: {summary['videos']} videos scored, "
        f"{summary['failures']} failed; FVD {fvd_line}",
        head,
        "-" * len(head),
    ]
    groups = [("all", summary["overall"])] + list(summary["levels"].items())
    for name, g in groups:
        m = g["metrics"]
        lines.append(
            f"{name:<8} {g['videos']:>6} {cell(m.get('psnr'), digits=2):>7} "
            f"{cell(m.get('ssim')):>6} {cell(m.get('lpips')):>6} "
            f"{cell(m.get('abnormal'), 100, 1):>10}"
        )
    if floor:
        lines.append(
            f"ground truth (floor): abnormal {100 * floor['abnormal']:.1f} % of "
            f"{floor['videos']} videos"
        )
    rates = {f: summary["overall"]["metrics"].get(f"flag_{f}", {}).get("mean") for f in SCENE_FLAGS}
    lines.append(
        "flags: " + ", ".join(f"{f} {100 * r:.1f} %" for f, r in rates.items() if r is not None)
    )
    for metric, why in summary.get("skipped", {}).items():
        lines.append(f"{metric.upper()} {why}")
    return "\n".join(lines)

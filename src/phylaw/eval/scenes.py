"""Score any model's videos of combinatorial scenes (the paper's Sec. 4.2, Table 2).

``phylaw eval`` routes here when ``--data`` is a combinatorial split. For each video id: the
ground truth is rendered at the video's size and frames; fidelity is PSNR and SSIM over the
generated frames (and LPIPS when its weights are given), FVD over the set when I3D's are (and
the videos have the 9 frames it needs); the abnormality flags of ``eval.scene_flags`` replace
the paper's human "abnormal" label. The same flags on the ground truth itself, rendered at the
same size and frames, give the floor of the abnormal rate (what the flags cost a perfect model).

Settings follow spec/reference.md 3.6 except that metrics average over the generated frames
(the authors average over all 32 frames, the given first one included; ``eval.fidelity``).
Outputs as ``eval.run``: ``videos.jsonl`` (id, template, psnr, ssim, lpips, abnormal, flags),
``summary.json`` (per template and overall: count, mean, median, 95 % bootstrap interval; the
rate of each flag; FVD; the floor), ``failures.json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from phylaw import PhylawError
from phylaw.data.combinatorial import scene_trajectory
from phylaw.data.store import Store, open_store
from phylaw.data.views import render_batch
from phylaw.eval.aggregate import aggregate
from phylaw.eval.fidelity import frame_range_mean, fvd, i3d_features, lpips_distance, psnr, ssim
from phylaw.eval.physics import VideoMetrics
from phylaw.eval.run import EvalResult, read_batches, resolve_frames, write_outputs
from phylaw.eval.scene_flags import SCENE_FLAGS, SceneStart, scene_flag_matrix
from phylaw.eval.sources import Failure, VideoSource
from phylaw.render.geometry import PixelGrid

__all__ = ["SceneEvalConfig", "evaluate_scenes", "format_scene_table"]

FVD_MIN_FRAMES = 9  # I3D's temporal receptive field (eval.fidelity.i3d_features)


@dataclass(frozen=True)
class SceneEvalConfig:
    """How to score scene videos. Weights: a path, or None for the environment variable
    (``PHYLAW_LPIPS_WEIGHTS``, ``PHYLAW_I3D_WEIGHTS``); a metric without weights is skipped."""

    num_cond_frames: int = 1  # the paper conditions on the first frame
    batch: int = 32
    limit: int | None = None
    frames: tuple[int, ...] | None = None  # split frames the videos hold (None: the source's)
    floor: bool = True  # flags on the ground truth too
    lpips_weights: str | None = None
    i3d_weights: str | None = None
    resamples: int = 1000
    seed: int = 0


def _network(kind: str, path: str | None):
    """LPIPS or I3D from ``path`` (or its environment variable), or None when neither is set."""
    from phylaw.eval.i3d import I3D, I3D_ENV
    from phylaw.eval.lpips import LPIPS, LPIPS_ENV

    cls, env = (LPIPS, LPIPS_ENV) if kind == "lpips" else (I3D, I3D_ENV)
    if path is None and not os.environ.get(env):
        return None
    return cls.from_file(path).eval()


def _start(store: Store, rows: np.ndarray, first_frame: int) -> SceneStart:
    traj = scene_trajectory(store, rows)
    return SceneStart(traj.kind, traj.dims, traj.pos[:, first_frame], traj.angle[:, first_frame])


def evaluate_scenes(
    source: VideoSource,
    data: str | Path | Store,
    out: str | Path | None = None,
    cfg: SceneEvalConfig = SceneEvalConfig(),
    progress: bool = True,
) -> EvalResult:
    """Score ``source`` on the combinatorial split ``data`` (module docstring)."""
    store = data if isinstance(data, Store) else open_store(data)
    if callable(source):
        raise PhylawError("scene evaluation reads videos from a file or folder, not a callable")
    cfg = replace(cfg, frames=resolve_frames(cfg, source, store))
    frames = list(range(store.manifest["num_frames"]) if cfg.frames is None else cfg.frames)
    lpips_net, i3d = _network("lpips", cfg.lpips_weights), _network("i3d", cfg.i3d_weights)
    n = len(store) if cfg.limit is None else min(cfg.limit, len(store))
    failures: list[Failure] = list(getattr(source, "duplicates", []))
    values: dict[str, list] = {}
    flag_rows, floor_rows, scored, feats, notes = [], [], [], ([], []), {}
    c = cfg.num_cond_frames
    with tqdm(total=n, unit="video", desc="eval scenes", disable=not progress) as bar:
        for rows, videos in read_batches(store, source, np.arange(n), cfg, failures):
            b, t, h, w, _ = videos.shape
            if h != w:
                failures.extend(
                    Failure(int(i), "shape", f"frames must be square, got {h}x{w}")
                    for i in store.column("index")[rows]
                )
                continue
            truth = render_batch(store, store.get(rows), PixelGrid(w, h))[:, frames]
            start = _start(store, rows, frames[0])
            flags = scene_flag_matrix(videos, start, num_cond_frames=c)
            part = {
                "psnr": frame_range_mean(psnr(videos, truth), c),
                "ssim": frame_range_mean(ssim(videos, truth), c),
                "abnormal": flags.any(1).astype(np.float64),
            }
            if lpips_net is not None and min(h, w) >= 31:
                part["lpips"] = frame_range_mean(lpips_distance(videos, truth, lpips_net), c)
            for k, name in enumerate(SCENE_FLAGS):
                part[f"flag_{name}"] = flags[:, k].astype(np.float64)
            for key, v in part.items():
                values.setdefault(key, []).append(v)
            flag_rows.append(flags)
            if cfg.floor:
                floor_rows.append(scene_flag_matrix(truth, start, num_cond_frames=c))
            if i3d is not None and t >= FVD_MIN_FRAMES:
                feats[0].append(i3d_features(videos, i3d))
                feats[1].append(i3d_features(truth, i3d))
            scored.append(rows)
            bar.update(len(rows))
    if not scored:
        raise PhylawError(
            f"no video could be scored ({len(failures)} failures; first: "
            f"{failures[0].reason if failures else 'none'})"
        )
    rows = np.concatenate(scored)
    metrics = VideoMetrics(
        "combinatorial",
        {k: np.concatenate(v) for k, v in values.items() if len(v) == len(scored)},
        {},
        np.full(len(rows), "", dtype=object),
    )
    level = store.column("level")[rows]
    summary = aggregate(metrics, level, store.levels, resamples=cfg.resamples, seed=cfg.seed)
    if lpips_net is None:
        notes["lpips"] = "skipped: no weights (--lpips-weights or PHYLAW_LPIPS_WEIGHTS)"
    if i3d is None:
        notes["fvd"] = "skipped: no weights (--i3d-weights or PHYLAW_I3D_WEIGHTS)"
    elif not feats[0]:
        notes["fvd"] = f"skipped: I3D needs {FVD_MIN_FRAMES} frames, the videos have {len(frames)}"
    elif len(rows) < 2:
        notes["fvd"] = "skipped: FVD needs at least 2 videos"
    summary.update(
        split=store.split,
        data=str(store.root),
        videos=int(len(rows)),
        failures=len(failures),
        num_cond_frames=c,
        frame_indices=frames,
        flags=list(SCENE_FLAGS),
        fvd=fvd(np.concatenate(feats[0]), np.concatenate(feats[1]))
        if feats[0] and len(rows) >= 2
        else None,
        skipped=notes,
    )
    if floor_rows:
        gt = np.concatenate(floor_rows)
        summary["floor"] = {
            "abnormal": float(gt.any(1).mean()),
            "flags": {name: float(gt[:, k].mean()) for k, name in enumerate(SCENE_FLAGS)},
            "videos": int(len(gt)),
        }
    flags = np.concatenate(flag_rows)
    ids, names = store.column("index"), store.levels
    records = []
    for k, r in enumerate(rows):
        rec = {"id": int(ids[r]), "template": names[int(level[k])]}
        rec.update({m: float(v[k]) for m, v in metrics.values.items() if not m.startswith("flag_")})
        rec["abnormal"] = bool(flags[k].any())
        rec["flags"] = [SCENE_FLAGS[f] for f in np.flatnonzero(flags[k])]
        records.append(rec)
    result = EvalResult(records, summary, failures)
    if out is not None:
        write_outputs(result, Path(out))
    return result


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

"""Score any model's videos on a split: ``phylaw eval --videos PATH --data DIR --out DIR``.

For each video id of the split: parse the pixels (``parse``), score the physics against the
simulator (``physics``), flag implausible videos (``plausibility``), compare pixels with the
ground truth rendered at the same resolution (PSNR, SSIM over the generated frames, when asked).
Then aggregate per group (the whole split and each level) beside the parse floor of the ground
truth at the same resolution (through the mp4 codec when the videos came as mp4). Outputs:

* ``videos.jsonl``: one record per video: ``id``, ``level``, every metric, ``abnormal``, ``flags``;
* ``summary.json``: per group, per metric (``velocity_error`` is the paper's e): count, mean,
  median, 95 % bootstrap interval; the floor; the abnormal rate; the failures;
* ``failures.json``: every video that could not be scored, and why.

Bad videos never stop the run: each becomes a failure and the rest is scored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from phylaw import PhylawError
from phylaw.data.store import Store, atomic_write_bytes, open_store, write_json
from phylaw.eval.aggregate import aggregate
from phylaw.eval.fidelity import frame_range_mean, psnr, ssim
from phylaw.eval.floor import parse_floor, store_colours
from phylaw.eval.parse import parse_videos
from phylaw.eval.physics import VideoMetrics, physics_metrics
from phylaw.eval.plausibility import FLAGS, plausibility_matrix
from phylaw.eval.sources import Failure, FolderSource, Predict, VideoSource, predict_videos
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render

HEADLINE = ("velocity_error", "velocity_error_mean", "abnormal")


@dataclass(frozen=True)
class EvalConfig:
    """How to score. ``resolution`` is needed only for a ``predict`` callable."""

    num_cond_frames: int = 3  # condition frames, not scored
    batch: int = 64  # videos scored at once
    limit: int | None = None  # score only the first N videos of the split
    floor: bool = True  # compute the parse floor beside the result
    fidelity: bool = False  # also PSNR and SSIM against the ground truth (slower)
    resolution: int | None = None  # frame size for a predict callable
    frames: tuple[int, ...] | None = None  # split frames the videos hold (None: the source's
    # own record, e.g. phylaw sample's frame_indices, else all of them)
    resamples: int = 1000  # bootstrap resamples
    seed: int = 0


@dataclass
class EvalResult:
    """Per-video records, the summary dict, and the failures."""

    records: list[dict]
    summary: dict
    failures: list[Failure] = field(default_factory=list)


def _score_batch(store: Store, rows: np.ndarray, videos: np.ndarray, cfg: EvalConfig):
    """Metrics [B] (physics + fidelity + abnormal) and flag lists of one batch of one shape."""
    b, t, h, w, _ = videos.shape
    grid = PixelGrid(w, h)
    truth = store.trajectory(rows)
    if cfg.frames is not None:
        truth = truth.at_frames(list(cfg.frames))
    parsed = parse_videos(videos, store_colours(store), grid, count_blobs=True)
    metrics = physics_metrics(parsed, truth, store.scenario, cfg.num_cond_frames)
    flags = plausibility_matrix(parsed, videos, num_cond_frames=cfg.num_cond_frames)
    extra = {"abnormal": flags.any(1).astype(np.float64)}
    if cfg.fidelity:
        reference = render(truth.pos, truth.bodies, grid)
        extra["psnr"] = frame_range_mean(psnr(videos, reference), cfg.num_cond_frames)
        extra["ssim"] = frame_range_mean(ssim(videos, reference), cfg.num_cond_frames)
    metrics = VideoMetrics(
        metrics.scenario, {**metrics.values, **extra}, metrics.counts, metrics.reason
    )
    return metrics, [[FLAGS[f] for f in np.flatnonzero(row)] for row in flags]


def read_batches(store: Store, source, rows: np.ndarray, cfg: EvalConfig, failures: list):
    """Yield (rows, videos) batches of equal frame size; record failures on the way.
    ``cfg`` needs ``batch``, ``frames``, ``num_cond_frames`` (and ``resolution`` for a callable)."""
    ids = store.column("index")
    t = store.manifest["num_frames"] if cfg.frames is None else len(cfg.frames)
    cond_frames = list(range(t) if cfg.frames is None else cfg.frames)[: cfg.num_cond_frames]
    for b0 in range(0, len(rows), cfg.batch):
        part = rows[b0 : b0 + cfg.batch]
        if callable(source):
            res = cfg.resolution
            if not res:
                raise PhylawError("scoring a predict callable needs EvalConfig(resolution=...)")
            cond = store.get(part)
            frames = render(cond.pos[:, cond_frames], store.bodies(cond), PixelGrid(res, res))
            try:
                videos = predict_videos(source, frames, t)
            except PhylawError as e:
                failures.extend(Failure(int(i), "predict", str(e)) for i in ids[part])
                continue
            got, vids = part, list(videos)
        else:
            got_ids, vids, bad = source.read(ids[part], t)
            failures.extend(bad)
            got = part[np.isin(ids[part], got_ids)]
        by_shape: dict[tuple, list[int]] = {}
        for k, v in enumerate(vids):
            by_shape.setdefault(v.shape, []).append(k)
        for members in by_shape.values():
            yield got[members], np.stack([vids[k] for k in members])


def resolve_frames(cfg, source, store: Store) -> tuple[int, ...] | None:
    """The split frames the videos hold: ``cfg.frames``, else the source's own record (e.g.
    ``phylaw sample``'s frame_indices), else None (all); checked against the split and
    ``cfg.num_cond_frames``."""
    frames = cfg.frames
    if frames is None and getattr(source, "frame_indices", None) is not None:
        frames = source.frame_indices
    if frames is None:
        return None
    frames = tuple(int(f) for f in frames)
    t_all = store.manifest["num_frames"]
    if not all(0 <= f < t_all for f in frames) or len(frames) <= cfg.num_cond_frames:
        raise PhylawError(
            f"frames {list(frames)} do not fit the split's {t_all} frames and "
            f"{cfg.num_cond_frames} condition frames"
        )
    return frames


def evaluate(
    source: VideoSource | Predict,
    data: str | Path | Store,
    out: str | Path | None = None,
    cfg: EvalConfig = EvalConfig(),
    progress: bool = True,
) -> EvalResult:
    """Score ``source`` (a ``VideoSource`` or a ``predict`` callable) on the split ``data``."""
    store = data if isinstance(data, Store) else open_store(data)
    cfg = replace(cfg, frames=resolve_frames(cfg, source, store))
    n = len(store) if cfg.limit is None else min(cfg.limit, len(store))
    rows = np.arange(n)
    failures: list[Failure] = list(getattr(source, "duplicates", []))
    parts, flag_lists, scored, shapes = [], [], [], set()
    with tqdm(total=n, unit="video", desc="eval", disable=not progress) as bar:
        for brows, videos in read_batches(store, source, rows, cfg, failures):
            metrics, flags = _score_batch(store, brows, videos, cfg)
            parts.append(metrics)
            flag_lists.extend(flags)
            scored.append(brows)
            shapes.add(videos.shape[2:4])
            bar.update(len(brows))
    if not parts:
        raise PhylawError(
            f"no video could be scored ({len(failures)} failures; first: "
            f"{failures[0].reason if failures else 'none'})"
        )
    metrics = VideoMetrics.concat(parts)
    scored_rows = np.concatenate(scored)
    level = store.column("level")[scored_rows]
    summary = aggregate(metrics, level, store.levels, resamples=cfg.resamples, seed=cfg.seed)
    summary.update(
        split=store.split,
        data=str(store.root),
        videos=int(len(scored_rows)),
        failures=len(failures),
        num_cond_frames=cfg.num_cond_frames,
        frame_indices=None if cfg.frames is None else list(cfg.frames),
    )
    if cfg.floor:
        codec = isinstance(source, FolderSource) and any(
            p.suffix.lower() == ".mp4" for p in source.files.values()
        )
        _, floor = parse_floor(
            store, max(shapes)[1], codec, n, resamples=cfg.resamples, seed=cfg.seed
        )
        summary["floor"] = floor
    ids, names = store.column("index"), store.levels
    records = []
    for k, row in enumerate(metrics.to_records()):
        r = int(scored_rows[k])
        records.append(
            {
                "id": int(ids[r]),
                "level": names[int(level[k])],
                **row,
                "abnormal": bool(row.pop("abnormal")),
                "flags": flag_lists[k],
            }
        )
    result = EvalResult(records, summary, failures)
    if out is not None:
        write_outputs(result, Path(out))
    return result


def write_outputs(result: EvalResult, out: Path) -> None:
    """Write videos.jsonl, summary.json and failures.json atomically into ``out``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PhylawError(f"cannot write to {out}: {e.strerror}; choose another --out") from None
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in result.records)
    atomic_write_bytes(out / "videos.jsonl", lines.encode())
    write_json(out / "summary.json", result.summary)
    write_json(out / "failures.json", {"failures": [f.__dict__ for f in result.failures]})


def _cell(stats: dict | None, scale: float = 1.0) -> str:
    if not stats or stats.get("mean") is None:
        return "-"
    lo, hi = stats.get("ci_low"), stats.get("ci_high")
    ci = f" [{lo * scale:.3f}, {hi * scale:.3f}]" if lo is not None and hi is not None else ""
    return f"{stats['mean'] * scale:.4f}{ci}"


def format_table(summary: dict) -> str:
    """A plain-text table: one row per group (all, then each level) with the floor beside it."""
    floor = summary.get("floor", {})
    groups = [("all", summary["overall"], floor.get("overall"))]
    groups += [
        (name, g, floor.get("levels", {}).get(name)) for name, g in summary["levels"].items()
    ]
    head = (
        f"{'group':<8} {'videos':>6}  {'velocity_error e [95% CI]':<30} "
        f"{'|mean v - v| (authors)':<24} {'floor e':<9} {'abnormal':>8}"
    )
    lines = [
        f"{summary['scenario']} {summary['split']}: {summary['videos']} videos scored, "
        f"{summary['failures']} failed",
        head,
        "-" * len(head),
    ]
    for name, g, fl in groups:
        m = g["metrics"]
        floor_e = fl["metrics"]["velocity_error"]["mean"] if fl else None
        lines.append(
            f"{name:<8} {g['videos']:>6}  {_cell(m.get('velocity_error')):<30} "
            f"{_cell(m.get('velocity_error_mean')).split(' ')[0]:<24} "
            f"{'-' if floor_e is None else f'{floor_e:.4f}':<9} "
            f"{_cell(m.get('abnormal'), 100).split(' ')[0]:>7}%"
        )
    return "\n".join(lines)

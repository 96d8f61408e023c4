"""Score any model's videos on a split: ``phylaw eval --videos PATH --data DIR --out DIR``.

One evaluator for every split: it reads the videos by id (``sources``), hands each batch to the
split's *scorer* and aggregates per group (the whole split and each level or template) with
bootstrap intervals and what each mean stands on (``aggregate``). Scorers:

* ``balls.BallScorer`` (uniform, collision, parabola): physics (e, the paper's Sec. 3.1, and its
  companions), plausibility flags, PSNR/SSIM when asked, and the parse floor on the same rows,
  frames and condition frames;
* ``scenes.SceneScorer`` (combinatorial): PSNR, SSIM, LPIPS and FVD (with weights), the scene
  flags, and their rate on the ground truth.

Outputs: ``videos.jsonl`` (one record per video: ``id``, its level or template, every metric,
``abnormal``, ``flags``), ``summary.json`` (per group: videos, scored, velocity samples, tracked
fraction, and per metric count, mean, median, 95 % interval; the floor; the failures),
``failures.json`` (every video that could not be read or scored, and why). Bad videos never stop
the run: each becomes a failure and the rest is scored. The condition frames and the split
frames the videos hold come from the videos' own record (``sources``) unless given; a given value
that contradicts the record is an error.

Speed (``benchmarks/bench_eval_e2e.py``): batches (at most ``batch`` videos, at least four
per worker) are read and scored in ``workers`` processes forked once the scorer's lookup tables
and compiled scan are loaded (they share them; the objects alive then are frozen out of the
garbage collector, so the workers' collections neither walk nor copy them; a thread pool gained
nothing, the many small numpy steps hold the interpreter lock; mp4 decoding is one thread per
video); the floor comes from its cache beside the split (``floor``). Scorers that use torch
score in this process.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from phylaw import PhylawError
from phylaw.data.store import Store, atomic_write_bytes, open_store, write_json
from phylaw.eval.aggregate import aggregate
from phylaw.eval.balls import BallScorer, format_table
from phylaw.eval.floor import score_floor
from phylaw.eval.metrics.physics import VideoMetrics
from phylaw.eval.sources import BatchFailure, Failure, Predict, VideoSource, predict_videos
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render_trajectory

__all__ = [
    "EvalConfig",
    "EvalResult",
    "evaluate",
    "format_result",
    "format_table",
    "write_outputs",
]

MAX_WORKERS = 4


@dataclass(frozen=True)
class EvalConfig:
    """How to score. ``resolution`` is needed only for a ``predict`` callable."""

    num_cond_frames: int | None = None  # condition frames, not scored (None: the videos'
    # record, e.g. phylaw sample's cond_frames, else 3; 1 for combinatorial scenes)
    batch: int = 128  # most videos scored at once by a worker (decoded 32x256x256: 0.8 GB)
    limit: int | None = None  # score only the first N videos of the split
    floor: bool = True  # the parse floor (balls) or the flags' rate on the ground truth (scenes)
    fidelity: bool = False  # balls: also PSNR and SSIM against the ground truth (slower)
    resolution: int | None = None  # frame size for a predict callable
    frames: tuple[int, ...] | None = None  # split frames the videos hold (None: the source's
    # own record, e.g. phylaw sample's frame_indices, else all of them)
    lpips_weights: str | None = None  # scenes: LPIPS weights (or PHYLAW_LPIPS_WEIGHTS)
    i3d_weights: str | None = None  # scenes: I3D weights for FVD (or PHYLAW_I3D_WEIGHTS)
    resamples: int = 1000  # bootstrap resamples
    seed: int = 0
    workers: int = 0  # processes scoring batches; 0: one per CPU core (at most MAX_WORKERS)


@dataclass
class EvalResult:
    """Per-video records, the summary dict, and the failures."""

    records: list[dict]
    summary: dict
    failures: list[Failure] = field(default_factory=list)


def scorer_for(store: Store):
    """The scorer of a split: scenes for a combinatorial split, balls otherwise."""
    if "size_columns" in store.manifest["bodies"]:
        return BallScorer()
    from phylaw.eval.scenes import SceneScorer  # scipy.ndimage: imported for scenes only

    return SceneScorer()


# --------------------------------------------------------------------------- what to score
def resolve_frames(cfg, source, store: Store) -> tuple[int, ...] | None:
    """The split frames the videos hold: ``cfg.frames``, else the source's own record (e.g.
    ``phylaw sample``'s frame_indices), else None (all); checked against the split and
    ``cfg.num_cond_frames`` (resolved)."""
    frames = cfg.frames
    recorded = getattr(source, "frame_indices", None)
    if frames is None and recorded is not None:
        frames = recorded
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


def resolve_cond_frames(cfg, source, default: int) -> int:
    """The condition frames: ``cfg.num_cond_frames``, else the source's record, else
    ``default``; a given value contradicting the record is an error."""
    recorded = getattr(source, "cond_frames", None)
    given = cfg.num_cond_frames
    if given is not None and recorded is not None and given != recorded:
        raise PhylawError(
            f"the videos were made from {recorded} condition frames (their record says so); "
            f"drop --cond-frames {given} or pass {recorded}"
        )
    return int(given if given is not None else recorded if recorded is not None else default)


# --------------------------------------------------------------------------- reading
def _read(store: Store, source, rows: np.ndarray, cfg: EvalConfig, failures: list):
    """[(rows, videos [b, T, H, W, 3])] of one batch, one entry per frame size."""
    ids = store.column("index")[rows]
    t = store.manifest["num_frames"] if cfg.frames is None else len(cfg.frames)
    if callable(source):
        res = cfg.resolution
        if not res:
            raise PhylawError("scoring a predict callable needs EvalConfig(resolution=...)")
        split_frames = list(range(t) if cfg.frames is None else cfg.frames)
        given = store.trajectory(rows).at_frames(split_frames[: cfg.num_cond_frames])
        frames = render_trajectory(given, PixelGrid(res, res))
        try:
            return [(rows, predict_videos(source, frames, t))]
        except PhylawError as e:
            failures.extend(Failure(int(i), "predict", str(e)) for i in ids)
            return []
    got_ids, vids, bad = source.read(ids, t)
    failures.extend(bad)
    got = rows[np.isin(ids, got_ids)]
    if isinstance(vids, np.ndarray):  # one array already (a memory-mapped file)
        return [(got, vids)] if len(got) else []
    by_shape: dict[tuple, list[int]] = {}
    for k, v in enumerate(vids):
        by_shape.setdefault(v.shape, []).append(k)
    return [(got[m], np.stack([vids[k] for k in m])) for m in by_shape.values()]


def _batch(store: Store, source, scorer, rows: np.ndarray, cfg: EvalConfig):
    """Read and score one batch: ``(parts [(rows, metrics, flags, extra, frame shape)],
    failures)``."""
    failures: list[Failure] = []
    parts = []
    ids = store.column("index")
    for got, videos in _read(store, source, rows, cfg, failures):
        try:
            metrics, flags, extra = scorer.score(store, got, videos, cfg)
        except BatchFailure as e:
            failures.extend(Failure(int(i), "score", str(e)) for i in ids[got])
            continue
        parts.append((got, metrics, flags, extra, videos.shape[2:4]))
    return parts, failures


# --------------------------------------------------------------------------- workers
_INHERITED: dict = {}  # what forked workers find: store, source, scorer, config


def _work(task: tuple[str, np.ndarray, object]):
    """A worker's task: ("score", rows, None) or ("floor", rows, FloorSpec)."""
    kind, rows, spec = task
    store, source, scorer, cfg = _INHERITED["state"]
    if kind == "score":
        return _batch(store, source, scorer, rows, cfg)
    return score_floor(store, rows, spec)


class _Context(NamedTuple):
    """What a scorer's ``finish`` may use: the source, and a way to score floor batches."""

    source: object
    floor_batches: object  # (batches, FloorSpec) -> iterable of results


class _Workers:
    """Batches scored here (one worker) or in processes forked after the scorer built its
    lookup tables (so they share them); they inherit the store, the source and the scorer."""

    def __init__(self, n: int, store: Store, source, scorer, cfg: EvalConfig):
        _INHERITED["state"] = (store, source, scorer, cfg)
        scorer.prepare(store, cfg)
        self.pool = None
        forkable = "fork" in multiprocessing.get_all_start_methods()
        if n > 1 and scorer.forks and forkable:
            gc.freeze()  # the workers' collections neither walk nor copy the parent's objects
            try:
                self.pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"))
                self.pool.submit(int).result()  # fork all now, before any progress-bar thread
            finally:
                gc.unfreeze()  # the workers keep their frozen copy

    def map(self, kind: str, batches: list, spec=None):
        tasks = [(kind, rows, spec) for rows in batches]
        return self.pool.map(_work, tasks) if self.pool else map(_work, tasks)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        _INHERITED.clear()


def _workers(cfg: EvalConfig, source) -> int:
    if callable(source) or not getattr(source, "parallel", True):
        return 1  # a model or a single file handle: one caller at a time
    n = cfg.workers or min(MAX_WORKERS, os.cpu_count() or 1)
    return max(1, n)


# --------------------------------------------------------------------------- the evaluator
def evaluate(
    source: VideoSource | Predict,
    data: str | Path | Store,
    out: str | Path | None = None,
    cfg: EvalConfig = EvalConfig(),
    progress: bool = True,
) -> EvalResult:
    """Score ``source`` (a ``VideoSource`` or a ``predict`` callable) on the split ``data``."""
    store = data if isinstance(data, Store) else open_store(data)
    scorer = scorer_for(store)
    if not isinstance(scorer, BallScorer) and callable(source):
        raise PhylawError("scene evaluation reads videos from a file or folder, not a callable")
    cfg = replace(cfg, num_cond_frames=resolve_cond_frames(cfg, source, scorer.default_cond))
    cfg = replace(cfg, frames=resolve_frames(cfg, source, store))
    n = len(store) if cfg.limit is None else min(cfg.limit, len(store))
    workers = _workers(cfg, source)
    size = max(1, min(cfg.batch, -(-n // (4 * workers))))  # >= 4 batches a worker: balance
    batches = [np.arange(b0, min(n, b0 + size)) for b0 in range(0, n, size)]
    failures: list[Failure] = list(getattr(source, "duplicates", []))
    parts = []
    with (
        _Workers(workers, store, source, scorer, cfg) as pool,
        tqdm(total=n, unit="video", desc="eval", disable=not progress) as bar,
    ):
        for got, bad in pool.map("score", batches):
            parts += got
            failures += bad
            bar.update(sum(len(p[0]) for p in got) + len(bad))
        if not parts:
            raise PhylawError(
                f"no video could be scored ({len(failures)} failures; first: "
                f"{failures[0].reason if failures else 'none'})"
            )
        ctx = _Context(source, lambda batches, spec: pool.map("floor", batches, spec))
        result = _assemble(store, scorer, parts, failures, cfg, ctx)
    if out is not None:
        write_outputs(result, Path(out))
    return result


def _assemble(store: Store, scorer, parts, failures, cfg: EvalConfig, ctx) -> EvalResult:
    """The summary (with the scorer's set-level additions) and the per-video records."""
    rows = np.concatenate([p[0] for p in parts])
    metrics = VideoMetrics.concat([p[1] for p in parts])
    flags = np.concatenate([p[2] for p in parts])
    level = store.column("level")[rows]
    summary = aggregate(metrics, level, store.levels, resamples=cfg.resamples, seed=cfg.seed)
    summary.update(
        split=store.split,
        data=str(store.root),
        videos=int(len(rows)),
        failures=len(failures),
        num_cond_frames=cfg.num_cond_frames,
        frame_indices=None if cfg.frames is None else list(cfg.frames),
        resolution=int(max(p[4] for p in parts)[1]),
        level_candidates=store.manifest.get("level_candidates"),
        level_kept=store.manifest.get("level_counts"),
    )
    scorer.finish(store, rows, [p[3] for p in parts], summary, cfg, ctx)
    ids, names = store.column("index"), store.levels
    fields = [f for p in parts for f in p[3].get("records", [])]  # the scorer's per-video extras
    records = []
    for k, row in enumerate(metrics.to_records()):
        row = {m: v for m, v in row.items() if not m.startswith("flag_")}
        if not row.get("reason", "x"):
            row.pop("reason")  # scenes have none
        records.append(
            {
                "id": int(ids[rows[k]]),
                scorer.level_key: names[int(level[k])],
                **row,
                "abnormal": bool(row.pop("abnormal")),
                "flags": [scorer.flags[f] for f in np.flatnonzero(flags[k])],
                **(fields[k] if fields else {}),
            }
        )
    return EvalResult(records, summary, failures)


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


def format_result(summary: dict) -> str:
    """The plain-text table of a summary of either kind of split."""
    if "flags" not in summary:
        return format_table(summary)
    from phylaw.eval.scenes import format_scene_table

    return format_scene_table(summary)

"""Score any model's videos on a split: ``phylaw eval --videos PATH --data DIR --out DIR``.

For each video id of the split: parse the pixels (``parse``: positions, sizes, blob counts,
moments and foreign colours in one pass), score the physics against the simulator
(``physics``), flag implausible videos (``plausibility``), compare pixels with the ground truth
rendered at the same resolution (PSNR, SSIM over the generated frames, when asked). Then
aggregate per group (the whole split and each level) beside the parse floor of the ground
truth, computed on the same rows, frames, condition frames and resolution (through the mp4
codec when the videos came as mp4). Outputs:

* ``videos.jsonl``: one record per video: ``id``, ``level``, every metric, ``abnormal``, ``flags``;
* ``summary.json``: per group, what it stands on (videos, scored, velocity samples, tracked
  fraction) and per metric (``velocity_error`` is the paper's e): count, mean, median, 95 %
  bootstrap interval; the floor; the failures;
* ``failures.json``: every video that could not be read, and why.

Bad videos never stop the run: each becomes a failure and the rest is scored. The condition
frames and the split frames the videos hold come from the videos' own record (``sources``)
unless given; a given value that contradicts the record is an error.

Speed (``benchmarks/bench_eval_e2e.py``): batches of videos are read and scored in ``workers``
processes forked once the lookup tables are built (they share them; a thread pool gained
nothing, the many small numpy steps hold the interpreter lock; mp4 decoding is one thread per
video), and the floor comes from its cache beside the split (``floor``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from phylaw import PhylawError
from phylaw.data.store import Store, atomic_write_bytes, open_store, write_json
from phylaw.eval.aggregate import aggregate
from phylaw.eval.floor import parse_floor, score_floor, store_colours
from phylaw.eval.physics import NUM_COND_FRAMES, VideoMetrics, physics_metrics
from phylaw.eval.plausibility import (
    FLAGS,
    PlausibilityTolerances,
    foreign_table,
    parse_for_flags,
    plausibility_matrix,
)
from phylaw.eval.sources import Failure, FolderSource, Predict, VideoSource, predict_videos
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render

HEADLINE = ("velocity_error", "velocity_error_mean", "abnormal")
MAX_WORKERS = 4


@dataclass(frozen=True)
class EvalConfig:
    """How to score. ``resolution`` is needed only for a ``predict`` callable."""

    num_cond_frames: int | None = None  # condition frames, not scored (None: the videos'
    # record, e.g. phylaw sample's cond_frames, else 3)
    batch: int = 32  # videos scored at once
    limit: int | None = None  # score only the first N videos of the split
    floor: bool = True  # compute the parse floor beside the result
    fidelity: bool = False  # also PSNR and SSIM against the ground truth (slower)
    resolution: int | None = None  # frame size for a predict callable
    frames: tuple[int, ...] | None = None  # split frames the videos hold (None: the source's
    # own record, e.g. phylaw sample's frame_indices, else all of them)
    resamples: int = 1000  # bootstrap resamples
    seed: int = 0
    workers: int = 0  # processes scoring batches; 0: one per CPU core (at most MAX_WORKERS)


@dataclass
class EvalResult:
    """Per-video records, the summary dict, and the failures."""

    records: list[dict]
    summary: dict
    failures: list[Failure] = field(default_factory=list)


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


def resolve_cond_frames(cfg, source, default: int = NUM_COND_FRAMES) -> int:
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


def _workers(cfg: EvalConfig, source) -> int:
    if callable(source) or not getattr(source, "parallel", True):
        return 1  # a model or a single file handle: one caller at a time
    n = cfg.workers or min(MAX_WORKERS, os.cpu_count() or 1)
    return max(1, n)


_INHERITED: dict = {}  # what forked workers find: store, source, config


def _work(task: tuple[str, np.ndarray, object]):
    """A worker's task: ("score", rows, None) or ("floor", rows, FloorSpec)."""
    kind, rows, spec = task
    store, source, cfg = _INHERITED["state"]
    if kind == "score":
        return _batch(store, source, rows, cfg)
    return score_floor(store, rows, spec)


class _Workers:
    """Batches scored here (one worker) or in forked processes that inherit the store, the
    source and the lookup tables built before the fork."""

    def __init__(self, n: int, store: Store, source, cfg: EvalConfig):
        _INHERITED["state"] = (store, source, cfg)
        self.pool = None
        if n > 1 and "fork" in multiprocessing.get_all_start_methods():
            colours = store_colours(store)
            parse_for_flags(np.full((1, 1, 8, 8, 3), 255, np.uint8), colours)  # build tables
            t = PlausibilityTolerances()
            foreign_table(colours, t.colour_residual, t.colour_background, t.solid_alpha)
            self.pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"))
            self.pool.submit(int).result()  # fork now, before any progress-bar thread exists

    def map(self, kind: str, batches: list, spec=None):
        tasks = [(kind, rows, spec) for rows in batches]
        return self.pool.map(_work, tasks) if self.pool else map(_work, tasks)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        _INHERITED.clear()


# --------------------------------------------------------------------------- one batch
def _read(store: Store, source, rows: np.ndarray, cfg: EvalConfig, failures: list):
    """[(rows, videos [b, T, H, W, 3])] of one batch, one entry per frame size."""
    ids = store.column("index")[rows]
    t = store.manifest["num_frames"] if cfg.frames is None else len(cfg.frames)
    if callable(source):
        res = cfg.resolution
        if not res:
            raise PhylawError("scoring a predict callable needs EvalConfig(resolution=...)")
        cond = store.get(rows)
        split_frames = list(range(t) if cfg.frames is None else cfg.frames)
        frames = render(
            cond.pos[:, split_frames[: cfg.num_cond_frames]],
            store.bodies(cond),
            PixelGrid(res, res),
        )
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


def read_batches(store: Store, source, rows: np.ndarray, cfg, failures: list):
    """Yield (rows, videos) batches of equal frame size; record failures on the way. ``cfg``
    needs ``batch``, ``frames``, ``num_cond_frames`` (and ``resolution`` for a callable)."""
    for b0 in range(0, len(rows), cfg.batch):
        yield from _read(store, source, rows[b0 : b0 + cfg.batch], cfg, failures)


def _score(store: Store, rows: np.ndarray, videos: np.ndarray, cfg: EvalConfig):
    """Metrics [b] (physics + fidelity + abnormal) and the flag matrix [b, F] of one batch."""
    grid = PixelGrid(videos.shape[3], videos.shape[2])
    truth = store.trajectory(rows)
    if cfg.frames is not None:
        truth = truth.at_frames(list(cfg.frames))
    parsed = parse_for_flags(videos, store_colours(store), grid)
    metrics = physics_metrics(parsed, truth, store.scenario, cfg.num_cond_frames)
    flags = plausibility_matrix(parsed, videos, num_cond_frames=cfg.num_cond_frames)
    extra = {"abnormal": flags.any(1).astype(np.float64)}
    if cfg.fidelity:  # imported here: it brings torch (a second of start-up)
        from phylaw.eval.fidelity import frame_range_mean, psnr, ssim

        reference = render(truth.pos, truth.bodies, grid)
        extra["psnr"] = frame_range_mean(psnr(videos, reference), cfg.num_cond_frames)
        extra["ssim"] = frame_range_mean(ssim(videos, reference), cfg.num_cond_frames)
    return metrics.with_values(extra), flags


def _batch(store: Store, source, rows: np.ndarray, cfg: EvalConfig):
    """Read and score one batch: ``(parts [(rows, metrics, flags, frame shape)], failures)``."""
    failures: list[Failure] = []
    parts = []
    for got, videos in _read(store, source, rows, cfg, failures):
        metrics, flags = _score(store, got, videos, cfg)
        parts.append((got, metrics, flags, videos.shape[2:4]))
    return parts, failures


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
    cfg = replace(cfg, num_cond_frames=resolve_cond_frames(cfg, source))
    cfg = replace(cfg, frames=resolve_frames(cfg, source, store))
    n = len(store) if cfg.limit is None else min(cfg.limit, len(store))
    batches = [np.arange(b0, min(n, b0 + cfg.batch)) for b0 in range(0, n, cfg.batch)]
    failures: list[Failure] = list(getattr(source, "duplicates", []))
    parts = []
    with (
        _Workers(_workers(cfg, source), store, source, cfg) as pool,
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
        result = _assemble(store, source, parts, failures, cfg, pool)
    if out is not None:
        write_outputs(result, Path(out))
    return result


def _assemble(store, source, parts, failures, cfg: EvalConfig, pool) -> EvalResult:
    """Summary (with the floor on the same rows and frames) and per-video records."""
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
        resolution=int(max(p[3] for p in parts)[1]),
        level_candidates=store.manifest.get("level_candidates"),
        level_kept=store.manifest.get("level_counts"),
    )
    if cfg.floor:
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
            run_batches=lambda batches, spec: pool.map("floor", batches, spec),
        )
    ids, names = store.column("index"), store.levels
    records = []
    for k, row in enumerate(metrics.to_records()):
        records.append(
            {
                "id": int(ids[rows[k]]),
                "level": names[int(level[k])],
                **row,
                "abnormal": bool(row.pop("abnormal")),
                "flags": [FLAGS[f] for f in np.flatnonzero(flags[k])],
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
    """A plain-text table: one row per group (all, then each level): what it stands on (videos,
    scored, tracked ball-samples), e with its interval, the authors' |mean v - v|, the floor's
    e and tracking, and the abnormal rate."""
    floor = summary.get("floor", {})
    groups = [("overall", summary["overall"], floor.get("overall"))]
    groups += [
        (name, g, floor.get("levels", {}).get(name)) for name, g in summary["levels"].items()
    ]
    head = (
        f"{'group':<8} {'videos':>6} {'scored':>6} {'tracked':>8}  "
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
            f"{name:<8} {g['videos']:>6} {g.get('scored', '-'):>6} {_tracked(g):>8}  "
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

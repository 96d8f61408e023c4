"""The parse floor: the metrics of the ground-truth videos themselves, on the scored frames.

The paper's "Baseline" (Sec. 3.1; Table 3, "Ground Truth Error") parses the ground-truth videos
and scores them like generated ones: what remains is the system error of going through pixels,
the smallest error a model can reach. Here the ground-truth videos of a split are rendered with
the same ``PixelGrid`` the parser uses, optionally passed through the mp4 codec the authors'
files use (``data.video.encode_mp4``: H.264, yuv420p, crf 25), parsed and scored exactly like
the videos beside them: the same rows, the same frames of the split, the same condition
frames, and the plausibility flags too (their rate on the ground truth is the flags' false
positive rate).

The authors' floor (0.0099 for uniform motion at 256 px) is mostly their pixel-scale bias
(-v / W, reference section 2.2), which phylaw does not have: measured here (128 px, per-frame
``velocity_error``) it is ~0.003 for rendered videos and ~0.03 through the codec, whose
quantisation moves the soft edges; ``velocity_error_mean`` (their headline) is ~0.0001 and
~0.002. See ``benchmarks/bench_eval.py`` for the table over scenarios and levels.

Cache. The floor of a split depends only on the split and (resolution, codec, frames,
condition frames) and on this code, so every evaluation of another model on the same split
would recompute it (through the codec: an encode and a decode per video). Per-video floor
values are kept in ``SPLIT/floors/{key}.npz``, ``key`` hashing those settings and the source
of the modules that compute them; rows not yet there are computed and added (atomically). A
split directory that cannot be written is simply not cached.
"""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phylaw import PhylawError
from phylaw.data.io.video import CRF, decode_video, encode_mp4
from phylaw.data.store import Store, atomic_write_bytes
from phylaw.eval.aggregate import CONFIDENCE, RESAMPLES, aggregate
from phylaw.eval.flags.balls import FLAGS, parse_for_flags, plausibility_matrix
from phylaw.eval.metrics.physics import NUM_COND_FRAMES, VideoMetrics, physics_metrics
from phylaw.physics.state import Colour
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render

BATCH = 64  # videos rendered, parsed and scored at once (25 MB of frames at 128 px)
_CODE = (  # modules whose source decides the floor's values
    "phylaw.eval.floor",
    "phylaw.eval.parse",
    "phylaw.eval.scan",
    "phylaw.eval.metrics.physics",
    "phylaw.eval.flags.balls",
    "phylaw.render.raster",
    "phylaw.render.geometry",
    "phylaw.data.io.video",
)


@dataclass(frozen=True)
class FloorSpec:
    """What a floor is computed on: the scored videos' frame size, codec, frames and
    condition frames."""

    resolution: int = 128  # frame size in px (square)
    codec: bool = False  # through mp4 at ``crf`` first
    frames: tuple[int, ...] | None = None  # the split's frames the videos hold (None: all)
    num_cond_frames: int = NUM_COND_FRAMES
    crf: int = CRF

    def key(self) -> str:
        """A name for the cache: these settings and the source of the modules computing it."""
        h = hashlib.sha256(repr(self).encode())
        for name in _CODE:
            h.update(Path(sys.modules[name].__file__).read_bytes())
        return h.hexdigest()[:16]


def codec_round_trip(videos: np.ndarray, crf: int = CRF) -> np.ndarray:
    """Each video of uint8 [B, T, H, W, 3] encoded to mp4 (libx264, yuv420p) and decoded."""
    return np.stack([decode_video(encode_mp4(v, crf=crf)) for v in videos])


def split_palette(store: Store) -> tuple[Colour, ...]:
    """Every colour a body of the split may have, in slot order (the slot's colour when it is
    fixed, else each of its ``colour_values``): what the parser tracks. Each video's bodies are
    then picked from it by their own colours (``ParsedStates.for_bodies``), so a body drawn in
    another of the split's colours is not found, and a switch of colour can be seen."""
    table = store.manifest["bodies"]
    values = table.get("colour_values") or [[c] for c in table["colour"]]
    codes = [c for slot, fixed in zip(values, table["colour"], strict=True)
             for c in (slot if fixed is None else [fixed])]  # fmt: skip
    return tuple(Colour(int(c)) for c in dict.fromkeys(codes))


def parse_bodies(videos: np.ndarray, store: Store, bodies, grid: PixelGrid, **kw):
    """Parse ``videos`` for the split's palette with the plausibility flags' extras, then pick
    each video's body columns by the colours of ``bodies`` [B, N]: ``(bodies' states, all)``."""
    parsed = parse_for_flags(videos, split_palette(store), grid, **kw)
    return parsed.for_bodies(np.asarray(bodies.colour)), parsed


def score_floor(store: Store, rows: np.ndarray, spec: FloorSpec) -> tuple[VideoMetrics, np.ndarray]:
    """Render, (encode and decode,) parse and score the ground truth of ``rows``."""
    grid = PixelGrid.square(int(spec.resolution))
    truth = store.trajectory(rows)
    if spec.frames is not None:
        truth = truth.at_frames(list(spec.frames))
    videos = render(truth.pos, truth.bodies, grid)
    if spec.codec:
        videos = codec_round_trip(videos, spec.crf)
    parsed, _ = parse_bodies(videos, store, truth.bodies, grid)
    metrics = physics_metrics(parsed, truth, store.scenario, spec.num_cond_frames)
    flags = plausibility_matrix(parsed, videos, num_cond_frames=spec.num_cond_frames)
    return metrics, flags


def _to_npz(rows: np.ndarray, metrics: VideoMetrics, flags: np.ndarray) -> bytes:
    arrays = {f"v/{k}": v for k, v in metrics.values.items()}
    arrays.update({f"c/{k}": v for k, v in metrics.counts.items()})
    buf = io.BytesIO()
    np.savez(buf, rows=rows, reason=metrics.reason.astype(str), flags=flags, **arrays)
    return buf.getvalue()


def _from_npz(path: Path, scenario: str) -> tuple[np.ndarray, VideoMetrics, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            values = {k[2:]: z[k] for k in z.files if k.startswith("v/")}
            counts = {k[2:]: z[k] for k in z.files if k.startswith("c/")}
            return z["rows"], VideoMetrics(scenario, values, counts, z["reason"]), z["flags"]
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache: recomputed and rewritten


def floor_metrics(
    store: Store,
    rows: np.ndarray,
    spec: FloorSpec = FloorSpec(),
    *,
    batch: int = BATCH,
    cache: bool = True,
    run_batches: Callable | None = None,
) -> tuple[VideoMetrics, np.ndarray]:
    """Per-video floor metrics and flag matrix [len(rows), len(FLAGS)] of the ground truth of
    ``rows`` (in that order), from the cache where possible. ``run_batches(batches, spec)`` may
    score the batches of rows (``score_floor`` each) in parallel; default: one after another."""
    rows = np.asarray(rows, dtype=np.int64)
    if batch < 1:
        raise PhylawError(f"floor: batch must be >= 1, got {batch}")
    path = store.root / "floors" / f"{spec.key()}.npz"
    have = _from_npz(path, store.scenario) if cache and path.is_file() else None
    known = np.zeros(0, np.int64) if have is None else have[0]
    todo = np.setdiff1d(rows, known)
    parts = [(have[1], have[2])] if have is not None else []
    batches = [todo[i : i + batch] for i in range(0, len(todo), batch)]
    if run_batches is None:
        parts += [score_floor(store, r, spec) for r in batches]
    else:
        parts += list(run_batches(batches, spec))
    all_rows = np.concatenate([known, todo])
    metrics = VideoMetrics.concat([m for m, _ in parts])
    flags = np.concatenate([f for _, f in parts]) if parts else np.zeros((0, len(FLAGS)), bool)
    order = np.argsort(all_rows, kind="stable")
    if cache and len(todo):
        try:
            path.parent.mkdir(exist_ok=True)
            atomic_write_bytes(path, _to_npz(all_rows[order], metrics.select(order), flags[order]))
        except OSError:
            pass  # a read-only split: computed, not cached
    pick = order[np.searchsorted(all_rows[order], rows)]
    return metrics.select(pick), flags[pick]


def parse_floor(
    store: Store,
    resolution: int = 128,
    codec: bool = False,
    limit: int | None = None,
    *,
    rows: Sequence[int] | None = None,
    frames: Sequence[int] | None = None,
    num_cond_frames: int = NUM_COND_FRAMES,
    crf: int = CRF,
    batch: int = BATCH,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    cache: bool = True,
    run_batches: Callable | None = None,
) -> tuple[VideoMetrics, dict]:
    """Render, (encode and decode,) parse and score the ground truth of ``store``.

    ``resolution``: frame size in px (square); ``codec``: pass every video through mp4 at
    ``crf`` first; ``rows``: the videos to score (default: the first ``limit``, or all);
    ``frames``: the split's frames the scored videos hold (default all); ``num_cond_frames``:
    their condition frames. Returns the per-video metrics (with ``abnormal``) and their
    aggregate by level (``aggregate.aggregate``) with ``resolution``, ``codec``, ``frames``
    and ``split`` added.
    """
    if rows is None:
        n = len(store) if limit is None else min(int(limit), len(store))
        rows = np.arange(n)
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) < 1:
        raise PhylawError(f"parse_floor: nothing to score in {store.root} (limit {limit})")
    spec = FloorSpec(
        int(resolution),
        bool(codec),
        None if frames is None else tuple(int(f) for f in frames),
        int(num_cond_frames),
        int(crf),
    )
    metrics, flags = floor_metrics(
        store, rows, spec, batch=batch, cache=cache, run_batches=run_batches
    )
    metrics = metrics.with_values({"abnormal": flags.any(1).astype(np.float64)})
    levels = store.column("level")[rows]
    summary = aggregate(
        metrics, levels, store.levels, resamples=resamples, seed=seed, confidence=confidence
    )
    summary.update(
        split=store.split,
        resolution=spec.resolution,
        codec=spec.codec,
        crf=spec.crf if spec.codec else None,
        frame_indices=None if spec.frames is None else list(spec.frames),
        num_cond_frames=spec.num_cond_frames,
    )
    return metrics, summary

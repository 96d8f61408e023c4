"""The parse floor: the metrics of the ground-truth videos themselves.

The paper's "Baseline" (Sec. 3.1; Table 3, "Ground Truth Error") parses the ground-truth videos
and scores them like generated ones: what remains is the system error of going through pixels,
the smallest error a model can reach. Here the ground-truth videos of a split are rendered with
the same ``PixelGrid`` the parser uses, optionally passed through the mp4 codec the authors'
files use (``data.video.encode_mp4``: H.264, yuv420p, crf 25), parsed and scored.

The authors' floor (0.0099 for uniform motion at 256 px) is mostly their pixel-scale bias
(-v / W, reference section 2.2), which phylaw does not have: measured here (128 px, per-frame
``velocity_error``) it is ~0.003 for rendered videos and ~0.03 through the codec, whose
quantisation moves the soft edges; ``velocity_error_mean`` (their headline) is ~0.0001 and
~0.002. See ``benchmarks/bench_eval.py`` for the table over scenarios and levels.
"""

from __future__ import annotations

import numpy as np

from phylaw import PhylawError
from phylaw.data.store import Store
from phylaw.data.video import CRF, decode_video, encode_mp4
from phylaw.eval.aggregate import CONFIDENCE, RESAMPLES, aggregate
from phylaw.eval.parse import parse_videos
from phylaw.eval.physics import NUM_COND_FRAMES, VideoMetrics, physics_metrics
from phylaw.physics.state import Colour
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render

BATCH = 64  # videos rendered, parsed and scored at once (25 MB of frames at 128 px)


def codec_round_trip(videos: np.ndarray, crf: int = CRF) -> np.ndarray:
    """Each video of uint8 [B, T, H, W, 3] encoded to mp4 (libx264, yuv420p) and decoded."""
    return np.stack([decode_video(encode_mp4(v, crf=crf)) for v in videos])


def store_colours(store: Store) -> tuple[Colour, ...]:
    """The body colours of a split, in slot order (one colour per body, the same everywhere)."""
    return tuple(Colour(int(c)) for c in store.manifest["bodies"]["colour"])


def parse_floor(
    store: Store,
    resolution: int = 128,
    codec: bool = False,
    limit: int | None = None,
    *,
    num_cond_frames: int = NUM_COND_FRAMES,
    crf: int = CRF,
    batch: int = BATCH,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> tuple[VideoMetrics, dict]:
    """Render, (encode and decode,) parse and score the ground truth of ``store``.

    ``resolution``: frame size in px (square); ``codec``: pass every video through mp4 at
    ``crf`` first; ``limit``: score only the first ``limit`` videos. Returns the per-video
    metrics and their aggregate by level (``aggregate.aggregate``) with ``resolution``,
    ``codec`` and ``split`` added.
    """
    n = len(store) if limit is None else min(int(limit), len(store))
    if n < 1:
        raise PhylawError(f"parse_floor: nothing to score in {store.root} (limit {limit})")
    if batch < 1:
        raise PhylawError(f"parse_floor: batch must be >= 1, got {batch}")
    grid = PixelGrid.square(int(resolution))
    colours = store_colours(store)
    levels = store.column("level")[:n]
    parts = []
    frames = None
    for b0 in range(0, n, batch):
        rows = np.arange(b0, min(n, b0 + batch))
        truth = store.trajectory(rows)
        shape = (len(rows), truth.num_frames, grid.height_px, grid.width_px, 3)
        if frames is None or frames.shape != shape:
            frames = np.empty(shape, dtype=np.uint8)
        videos = render(truth.pos, truth.bodies, grid, out=frames)
        if codec:
            videos = codec_round_trip(videos, crf)
        parsed = parse_videos(videos, colours, grid)
        parts.append(physics_metrics(parsed, truth, store.scenario, num_cond_frames))
    metrics = VideoMetrics.concat(parts)
    summary = aggregate(
        metrics, levels, store.levels, resamples=resamples, seed=seed, confidence=confidence
    )
    summary.update(
        split=store.split, resolution=int(resolution), codec=bool(codec), crf=crf if codec else None
    )
    return metrics, summary

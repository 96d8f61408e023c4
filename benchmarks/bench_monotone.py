"""Is the velocity error monotone in failure? Ground truth against hand-made defects.

For uniform ID and OOD evaluation videos (rendered, and through the mp4 codec) at each
resolution, scores the clean videos and four failures of the red ball, all from frame 3 (the
first generated frame) unless stated: frozen at its last given position, erased, erased in
frames 8-11 only, and duplicated (a copy moved half the image towards the middle). Prints, per
case, the mean of e (the paper's Sec. 3.1 per-frame error, a ball not found once in both frames
charged |v| + 10), of |mean v - v| (``velocity_error_mean``), of the authors' variant (a missing
ball at x = 10, no charge), the videos scored and the tracked share of ball-samples. The
monotone definition must give: erased >= frozen, middle > clean, duplicated > clean, every video
scored in every case.

    python benchmarks/bench_monotone.py --videos 60 --resolutions 32 128
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from phylaw.data.build import build_split
from phylaw.data.spaces import resolve_split
from phylaw.eval.floor import codec_round_trip
from phylaw.eval.metrics.physics import evaluate_videos
from phylaw.physics.state import Colour
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import PALETTE
from phylaw.render.raster import render_trajectory
from phylaw.testing import defects


def cases(videos: np.ndarray, y: np.ndarray, res: int) -> dict[str, np.ndarray]:
    """The clean videos and their failures; ``y`` [B] the ball's height at frame 3."""
    red = PALETTE[Colour.RED]
    frozen = videos.copy()
    frozen[:, 3:] = videos[:, 2:3]
    shift = np.stack([np.zeros_like(y), np.where(y > 5.0, 0.5, -0.5) * res], -1)
    return {
        "clean": videos,
        "frozen": frozen,
        "erased": defects.disappear(videos, red, 3),
        "erased 8-11": defects.disappear(videos, red, 8, 12),
        "duplicated": defects.duplicate(videos, red, shift, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=60)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[32, 128])
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="phylaw-monotone-"))
    print("| split | px | frames | case | e | mean-v gap | authors' variant | scored | tracked |")
    print("|---|---|---|---|---|---|---|---|---|")
    for split in ("eval-id", "eval-ood"):
        spec = resolve_split("uniform", split, str(args.videos), 0)
        store = build_split(spec, root / split, progress=False)
        truth = store.trajectory(np.arange(len(store)))
        for res in args.resolutions:
            grid = PixelGrid.square(res)
            clean = render_trajectory(truth, grid)
            for codec in (False, True):
                base = codec_round_trip(clean) if codec else clean
                for name, videos in cases(base, truth.pos[:, 3, 0, 1], res).items():
                    m = evaluate_videos(videos, truth, "uniform", grid)
                    e = m["velocity_error"]
                    print(
                        f"| {split} | {res} | {'mp4' if codec else 'rendered'} | {name} "
                        f"| {np.nanmean(e):.4f} | {np.nanmean(m['velocity_error_mean']):.4f} "
                        f"| {np.nanmean(m['velocity_error_mean_authors']):.4f} "
                        f"| {int(np.isfinite(e).sum())}/{len(e)} "
                        f"| {np.nanmean(m['tracked_fraction']):.3f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()

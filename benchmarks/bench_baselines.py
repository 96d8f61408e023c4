"""The baseline table: oracle, copy-last, constant velocity and nearest case, scored from pixels.

For uniform motion, collision and parabola, ID and every OOD level: each baseline continues the
evaluation videos from their first 3 frames (32 frames of 128x128, rendered, no codec), and the
continuations are parsed and scored like a model's (`eval.physics.evaluate_videos`, every video
counted, no r < 0.6 filter). Nearest case searches the 30K training split of the scenario.
Printed as Markdown: per cell, the headline |mean parsed vx - true vx| and the per-frame e
(world units/s), and the number of videos scored.

Usage: python benchmarks/bench_baselines.py [--id-size 200] [--ood-per-level 50] [--res 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from phylaw.baselines import BASELINES, BaselineContext
from phylaw.data.build import build_split
from phylaw.data.spaces import resolve_split
from phylaw.eval.metrics.physics import VideoMetrics, evaluate_videos
from phylaw.render.geometry import PixelGrid

SCENARIOS = ("uniform", "collision", "parabola")


def score(name: str, ctx: BaselineContext, batch: int = 64) -> VideoMetrics:
    parts = []
    for start in range(0, len(ctx.store), batch):
        rows = np.arange(start, min(start + batch, len(ctx.store)))
        videos = BASELINES[name](ctx, rows)
        truth = ctx.store.trajectory(rows)
        parts.append(evaluate_videos(videos, truth, ctx.store.scenario, ctx.grid))
    return VideoMetrics.concat(parts)


def cell(m: VideoMetrics, sel: np.ndarray) -> str:
    head, e = m["velocity_error_mean"][sel], m["velocity_error"][sel]
    ok = np.isfinite(head)
    if not ok.any():
        return "- (0)"
    return f"{head[ok].mean():.3f} / {e[np.isfinite(e)].mean():.3f} ({ok.sum()})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--id-size", type=int, default=200)
    ap.add_argument("--ood-per-level", type=int, default=50)
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--train-size", default="30K")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for scenario in SCENARIOS:
            train = build_split(
                resolve_split(scenario, "train", args.train_size, 0), root / f"{scenario}-train",
                progress=False,
            )  # fmt: skip
            stores = {
                "ID": build_split(
                    resolve_split(scenario, "eval-id", str(args.id_size), 0),
                    root / f"{scenario}-id", progress=False,
                ),
            }  # fmt: skip
            ood_spec = resolve_split(scenario, "eval-ood", "1", 0)
            levels = ood_spec.level_names
            stores["OOD"] = build_split(
                resolve_split(scenario, "eval-ood", str(args.ood_per_level * len(levels)), 0),
                root / f"{scenario}-ood", progress=False,
            )  # fmt: skip
            header = ["baseline", "ID"] + [f"OOD {lv}" for lv in levels]
            print(f"\n### {scenario} (headline / per-frame e, videos scored)\n")
            print("| " + " | ".join(header) + " |")
            print("|" + "---|" * len(header))
            for name in BASELINES:
                cells = []
                for key, store in stores.items():
                    ctx = BaselineContext(store, args.res, 3, train)
                    m = score(name, ctx)
                    if key == "ID":
                        cells.append(cell(m, np.ones(len(store), bool)))
                    else:
                        level = store.column("level")
                        cells += [cell(m, level == k) for k in range(len(levels))]
                print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    grid = PixelGrid.square(args.res)
    print(
        f"\n{args.id_size} ID and {args.ood_per_level} OOD videos per level, {grid.width_px} px, "
        f"train {args.train_size}; {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()

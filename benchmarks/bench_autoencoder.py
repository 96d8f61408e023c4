"""Table 3 of the paper for our own autoencoder: does reconstruction keep the physics?

Trains an autoencoder preset on uniform-motion training videos for a few minutes of CPU, then
encodes and decodes (posterior mean) the eval-id videos and measures the velocity error of the
reconstructions against the "parse floor", the error of the ground-truth videos themselves under
the same parser (the paper's "Ground Truth Error"; its ratio recon / GT is 1.06 for uniform
motion, 0.0105 / 0.0099).

    python benchmarks/bench_autoencoder.py --minutes 12               # ae-small, 32x32
    python benchmarks/bench_autoencoder.py --run RUN --minutes 0      # measure an existing run
    python benchmarks/bench_autoencoder.py --preset ae-paper --resolution 128 --minutes 600

Both are measured by phylaw's evaluator (`phylaw.eval.metrics.physics.evaluate_videos`:
soft-membership centroids on the renderer's own pixel grid, frames >= 3 with the true ball
fully in view): `velocity_error_mean` = |mean_t parsed vx - mean_t true vx|, the authors'
uniform-motion metric and so the quantity of Table 3, and `velocity_error` = the paper's
per-frame e, beside it.

Recorded results (2-core shared CPU, AVX2, torch 2.13, fp32): see the end of this file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from phylaw.data.build import build_split
from phylaw.data.spaces import resolve_split
from phylaw.experiments.ae_recon import measure
from phylaw.train.ae import train_autoencoder
from phylaw.train.ae_config import autoencoder_preset
from phylaw.train.checkpoint import read_state, resolve_checkpoint
from phylaw.train.config_core import override


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="ae-small")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--minutes", type=float, default=12.0, help="training budget (0: measure only)")
    p.add_argument("--work", type=Path, default=Path("/tmp/phylaw-bench-ae"))
    p.add_argument("--run", type=Path, default=None, help="run directory (default: WORK/run)")
    p.add_argument("--eval-count", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="section.field=v"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    train_dir = args.work / "u-train-5000"
    eval_dir = args.work / f"u-eval-id-{args.eval_count}"
    run = args.run or args.work / "run"
    build_split(resolve_split("uniform", "train", "5000", 0), train_dir, progress=False)
    build_split(
        resolve_split("uniform", "eval-id", str(args.eval_count), 0), eval_dir, progress=False
    )
    if args.minutes > 0:
        overrides = [
            f"data.train={train_dir}",
            f"data.resolution_px={args.resolution}",
            f"run.threads={args.threads}",
            f"run.max_minutes={args.minutes}",  # total over resumes of the same run
            *args.set,
        ]
        cfg = override(autoencoder_preset(args.preset), overrides)
        t0 = time.perf_counter()
        train_autoencoder(cfg, run)
        print(f"trained {time.perf_counter() - t0:.0f} s")
    state = read_state(resolve_checkpoint(run), verify=False)
    result = {
        "run": str(run),
        "resolution": args.resolution,
        "step": state["step"],
        **measure(run, eval_dir, args.resolution),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

# Recorded results
# ----------------
#
# ae-small (1.14M parameters), 32x32, uniform train 5000 / eval-id 256 videos, seed 0, fp32,
# 2 threads on the 2-core CPU shared with other jobs (load average 5-7 during training, so a
# step took 1.1 s when the machine was quiet and up to 14 s when not).
#
#   python benchmarks/bench_autoencoder.py --minutes 12 --work /tmp/ae-bench --run /tmp/ae-runs/main
#     129 steps in 12 min (batch 8 clips of 9 frames, centroid_weight 0.1)
#     parse floor (ground truth):  Table-3 error 0.00099 world/s, per-frame e 0.028
#     reconstruction:              Table-3 error 0.0367,          per-frame e 0.917
#     ratio recon / floor:         37x (Table 3: 1.06x; done-criterion: 1.1x)   per-frame 33x
#   same, max_steps=120 with threads=1, two runs side by side:
#     centroid_weight 0:   Table-3 0.0347 (35x), per-frame 1.089 (39x)
#     centroid_weight 0.1: Table-3 0.0289 (29x), per-frame 0.912 (32x)
#
# The floor is ~10x below the paper's 0.0099 because renderer and parser share one pixel grid
# (the paper's floor is the 255/256 scale bias), so 1.1x the floor asks for reconstructed ball
# centres within ~0.003 px (~0.001 world units) at the first and last evaluated frames. A few
# hundred CPU steps are nowhere near that: the 1.1x target needs a GPU run (ae-small to
# convergence, or ae-paper at 128x128, `--preset ae-paper --resolution 128`), not measured here.

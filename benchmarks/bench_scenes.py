"""Combinatorial scenes: generation rate (states) and rendering rate (pixels on the fly).

Measures, in one run:
  1. building a combinatorial training split of ``--scenes`` scenes over the 60 training
     templates (layout, red ball, pymunk simulation, shards) with ``--workers`` processes, and the
     NaN / leave-the-world check over every scene built;
  2. rendering on the fly, 32 x R x R videos of that split (R = ``--resolution``, the paper's 256):
     ``RenderLoader`` with ``--threads`` threads and reused buffers, wall clock and CPU time.

Both report wall-clock rates (meaningful on a quiet machine) and CPU seconds per item (the cost
on one core, robust to other load).

Usage: python benchmarks/bench_scenes.py [--scenes 10000] [--workers 2] [--threads 2]
       [--resolution 256] [--render-batches 40] [--batch 16]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from phylaw.data.build import build_split
from phylaw.data.combinatorial import resolve_scene_split, scene_trajectory
from phylaw.data.dataset import RenderLoader, VideoDataset, epoch_batches
from phylaw.physics.scenes.simulate import sane


def cpu_seconds() -> float:
    """CPU time of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scenes", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--render-batches", type=int, default=40)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()

    per_template = max(1, -(-args.scenes // 60))
    spec = resolve_scene_split("train", str(per_template), 0, "60")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scenes"
        c0, t0 = cpu_seconds(), time.perf_counter()
        store = build_split(spec, out, workers=args.workers, shard_size=250, progress=False)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        n = len(store)
        print(
            f"build: {n} scenes ({spec.count - n} dropped) in {wall:.1f} s wall "
            f"({n / wall:.1f} scenes/s, {args.workers} workers), {cpu / n * 1e3:.1f} ms CPU/scene"
        )
        bad = 0
        for start in range(0, n, 1000):
            traj = scene_trajectory(store, np.arange(start, min(n, start + 1000)))
            for b in range(traj.batch_size):
                used = traj.kind[b] >= 0
                bad += not sane(traj.pos[b][:, used], traj.angle[b][:, used])
        print(f"check: {bad} of {n} scenes with a NaN or a body outside the world")

        data = VideoDataset(store, resolution=args.resolution)
        batches = epoch_batches(len(data), args.batch, epochs=None, seed=0)
        loader = RenderLoader(data, batches, threads=args.threads)
        it = iter(loader)
        for _ in range(loader.ring):  # warm up: every ring buffer touched once (page faults)
            next(it)
        c0, t0, videos = cpu_seconds(), time.perf_counter(), 0
        for _ in range(args.render_batches):
            videos += len(next(it)["video"])
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        r = args.resolution
        print(
            f"render: {videos / wall:.0f} videos/s of 32x{r}x{r} ({args.threads} threads, "
            f"batch {args.batch}), {cpu / videos * 1e3:.2f} ms CPU/video"
        )


if __name__ == "__main__":
    main()

"""Testbed throughput: split builds, rendering on the fly, and the authors' per-video pipeline.

Measures, in one run:
  1. building the 3M uniform training split (time, disk) and the 3.41M collision split (time);
  2. rendering on the fly, 32 x 128 x 128 videos: ``RenderLoader`` (2 threads, reused buffers)
     and ``torch.utils.data.DataLoader`` with 2 worker processes;
  3. a per-video pipeline like the authors' generator (reference section 1.1 and 7): Box2D steps
     (320 steps of 0.01 s, a frame every 10), a full-frame float64 numpy render with their soft
     edge, and an in-memory mp4 encode exactly as theirs, ``imageio.v3.imwrite(buf, frames,
     extension=".mp4")`` (imageio's FFMPEG plugin: an ffmpeg subprocess, libx264, crf 25). Without
     imageio installed (``pip install -e ".[bench]"``) it falls back to PyAV in-process, which is
     cheaper, so the ratio is then conservative. Their pipeline runs one process per core, so its
     2-core rate is twice the 1-process rate measured here.

Usage: python benchmarks/bench_testbed.py [--quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from phylaw.data.build import build_split
from phylaw.data.dataset import RenderLoader, VideoDataset, epoch_batches, make_loader
from phylaw.data.io.video import encode_mp4
from phylaw.data.spaces import resolve_split


def timed_build(scenario: str, size: str, out: Path, workers: int) -> tuple[float, int, float]:
    t0 = time.perf_counter()
    store = build_split(
        resolve_split(scenario, "train", size, 0), out, workers=workers, progress=False
    )
    seconds = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return seconds, len(store), disk / 1e9


def loader_rate(iterator, batches: int) -> float:
    it = iter(iterator)
    next(it)  # warm up (workers start, buffers allocated)
    t0, n = time.perf_counter(), 0
    for _ in range(batches):
        n += len(next(it)["video"])
    return n / (time.perf_counter() - t0)


def authors_video(r: float, v: float, x0: float, y0: float, res: int) -> bytes:
    """One video the authors' way: Box2D, full-frame float64 render, mp4 encode."""
    from Box2D import b2CircleShape, b2World

    world = b2World(gravity=(0, 0), doSleep=False)
    body = world.CreateDynamicBody(position=(x0, y0))
    body.CreateFixture(shape=b2CircleShape(radius=r), density=1, restitution=1.0)
    body.linearVelocity = (v, 0)
    pos = []
    for i in range(320):
        world.Step(0.01, 15, 20)
        if i % 10 == 0:
            pos.append((body.position.x, body.position.y))
    pos = np.array(pos) / 10.0
    xs, ys = np.meshgrid(np.linspace(0, 1, res), np.linspace(0, 1, res))
    d2 = (xs[None] - pos[:, 0, None, None]) ** 2 + (ys[None] - pos[:, 1, None, None]) ** 2
    rn = r / 10.0
    mask = np.clip((rn**2 - d2) / (0.03 * rn**2), 0, 1)[..., None]
    frames = np.full((32, res, res, 3), 255.0)
    frames = (1 - mask) * frames + mask * np.array([255.0, 0, 0])
    frames = np.ascontiguousarray(frames.astype(np.uint8)[:, ::-1])
    try:
        import imageio.v3 as iio
    except ImportError:
        return encode_mp4(frames)
    return iio.imwrite("<bytes>", frames, extension=".mp4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="30K/28.2K builds instead of 3M/3.41M")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--authors-videos", type=int, default=40)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="phylaw-bench-"))
    try:
        rows = []
        sizes = ("30K", "30K") if args.quick else ("3M", "3.41M")
        s, n, gb = timed_build("uniform", sizes[0], tmp / "u", args.workers)
        rows.append(f"| build uniform train {sizes[0]} | {n:,} videos | {s:.1f} s | {gb:.2f} GB |")
        s, n, gb = timed_build("collision", sizes[1], tmp / "c", args.workers)
        rows.append(
            f"| build collision train {sizes[1]} | {n:,} videos | {s:.1f} s | {gb:.2f} GB |"
        )
        shutil.rmtree(tmp / "c")

        ds = VideoDataset(tmp / "u", resolution=128)
        ours = loader_rate(
            RenderLoader(ds, epoch_batches(len(ds), 64, epochs=None), threads=args.workers), 40
        )
        torch_rate = loader_rate(make_loader(ds, 64, workers=args.workers), 20)
        rows.append(
            f"| render on the fly, RenderLoader ({args.workers} threads) | 32x128x128 | "
            f"{ours:,.0f} videos/s | |"
        )
        rows.append(
            f"| render on the fly, DataLoader ({args.workers} workers) | 32x128x128 | "
            f"{torch_rate:,.0f} videos/s | |"
        )

        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for _ in range(args.authors_videos):
            r, v = rng.uniform(0.7, 1.4), rng.uniform(1, 4)
            authors_video(
                r, v, rng.uniform(r, max(r, 10 - r - 2.4 * v)), rng.uniform(r + 0.5, 9.5 - r), 128
            )
        one = args.authors_videos / (time.perf_counter() - t0)
        theirs = one * args.workers
        rows.append(
            f"| authors' per-video pipeline, 1 process | 32x128x128 | {one:.1f} videos/s | |"
        )
        rows.append(
            f"| ratio: RenderLoader / authors' pipeline on {args.workers} cores | | "
            f"{ours / theirs:,.0f}x | |"
        )
        print("| what | size | rate or time | disk |\n|---|---|---|---|")
        print("\n".join(rows))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

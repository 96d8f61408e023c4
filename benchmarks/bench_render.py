"""Single-process rendering throughput of ``phylaw.render.render`` (videos per second).

Workloads, each a batch of ``--batch`` videos of ``--frames`` frames:

* one disc: a red ball of radius U(0.7, 1.4) in uniform motion (the uniform-motion scenario);
* two discs: a red and a blue ball of radius U(0.7, 1.4) on one horizontal line, moving towards
  each other and through each other (their windows overlap in many frames, the costly case).

The headline number draws into one reused ``out`` buffer (as a data loader should); the number in
brackets allocates a fresh output array every call and so includes first-touch page faults.
Each is the best call within half of ``--seconds`` (the machine may be shared). Run::

    python benchmarks/bench_render.py                    # 128 and 256, 64 videos, 3 s each
    python benchmarks/bench_render.py --resolution 128 --batch 64 --seconds 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from phylaw.physics.state import WORLD_SIZE, Colour, discs, frame_times
from phylaw.render import PixelGrid, render


def one_disc(batch: int, frames: int, rng: np.random.Generator):
    """Positions [B, T, 1, 2] and bodies of red balls in uniform motion."""
    r = rng.uniform(0.7, 1.4, (batch, 1))
    p0 = rng.uniform(r[..., None], WORLD_SIZE - r[..., None], (batch, 1, 2))
    v = np.stack([rng.uniform(0.5, 4.0, batch), np.zeros(batch)], -1)[:, None]
    pos = p0[:, None] + v[:, None] * frame_times(frames)[None, :, None, None]
    return pos, discs(r, (Colour.RED,))


def two_discs(batch: int, frames: int, rng: np.random.Generator):
    """Positions [B, T, 2, 2] and bodies of a red and a blue ball approaching on one line."""
    r = rng.uniform(0.7, 1.4, (batch, 2))
    y = rng.uniform(2.0, 8.0, batch)
    x0 = np.stack([rng.uniform(1.0, 3.0, batch), rng.uniform(7.0, 9.0, batch)], -1)
    v = np.stack([rng.uniform(0.5, 3.0, batch), -rng.uniform(0.5, 3.0, batch)], -1)
    x = x0[:, None] + v[:, None] * frame_times(frames)[None, :, None]  # [B, T, 2]
    pos = np.stack([x, np.broadcast_to(y[:, None, None], x.shape)], -1)
    return pos, discs(r, (Colour.RED, Colour.BLUE))


def measure(pos: np.ndarray, bodies, grid: PixelGrid, seconds: float) -> tuple[float, float]:
    """Videos/s (best call) drawing into a reused buffer, and with a fresh buffer every call."""
    out = render(pos, bodies, grid)  # warm-up
    rates = []
    for reuse in (True, False):
        best = float("inf")
        start = time.perf_counter()
        while time.perf_counter() - start < seconds / 2:
            t0 = time.perf_counter()
            render(pos, bodies, grid, out=out if reuse else None)
            best = min(best, time.perf_counter() - t0)
        rates.append(pos.shape[0] / best)
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch", type=int, default=64, help="videos per render call")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per workload")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"batch {args.batch} x {args.frames} frames, single process, best call, reused `out`")
    for res in args.resolution:
        grid = PixelGrid.square(res)
        for name, make in (("one disc", one_disc), ("two discs", two_discs)):
            pos, bodies = make(args.batch, args.frames, np.random.default_rng(args.seed))
            reused, fresh = measure(pos, bodies, grid, args.seconds)
            print(
                f"{res:4d}px  {name:9s}  {reused:8.1f} videos/s"
                f"   (fresh output array every call: {fresh:7.1f} videos/s)"
            )


if __name__ == "__main__":
    main()

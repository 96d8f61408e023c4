"""How often the evaluator's shape and colour classes are right on ground-truth videos.

For every study of the registry (``data.studies``): its whole evaluation grid, rendered at
each resolution (32 frames, the first 3 given, no codec), parsed for the split's palette with
the moments up to order 4 and measured exactly as ``phylaw eval`` measures a generated
video (``eval.metrics.attributes.video_attributes``). A body is right when its generated shape
class and colour are its conditioned ones ('ambiguous' counts as wrong), among the bodies the
ground truth shows whole in at least one generated frame (the others, 'out of view', cannot be
measured: a collision ball may leave the frame before the condition frames end).

Two more checks: ``--cpu-clip`` scores the clip the CPU preset generates (8 frames, every
4th, 3 given: 5 generated frames) at 32 px; 'switched' re-renders every video of the study
with each body's shape replaced by each of the two other shapes (the split's ring ratio) and
asks for that shape: a classifier that always answered the split's shape would score 0 there.

Printed as Markdown: per study and resolution, shape and colour accuracy (%), switched-shape
accuracy (%), bodies measured, out of view, ambiguous, below 2 px (their class is the split's
one shape, ``attributes.SMALL_PX``), and the largest |size - r| and |vx - v| of the bodies
classified right (collision: vx is one slope through the collision, not either segment's).

Usage: python benchmarks/bench_attributes.py [--res 32 64 128] [--studies gap-2-3 ...]
       [--cpu-clip] [--no-switch]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from phylaw.data.build import build_split
from phylaw.data.studies import STUDIES, study_split
from phylaw.eval.floor import parse_bodies
from phylaw.eval.metrics.attributes import SMALL_PX, video_attributes
from phylaw.physics.state import Shape
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render

BATCH = 128
CPU_CLIP = tuple(range(0, 32, 4))  # cpu-uniform: 8 frames, every 4th
KEYS = ("shape", "colour", "ambiguous", "small", "dsize", "dvx")


def _bodies(rec: dict, n: int):
    """(tag, record) per body: '' for one body, '1', '2', ... for more."""
    return [("" if n == 1 else str(k + 1), rec) for k in range(n)]


def measure(store, px: int, frames, switch: int = 0) -> dict[str, np.ndarray]:
    """Per measured body: right shape, right colour, ambiguous, below ``SMALL_PX``, |size -
    r|, |vx - v|; ``switch`` k > 0 draws every body as shape (its shape + k) mod 3."""
    out: dict[str, list] = {k: [] for k in (*KEYS, "seen")}
    grid = PixelGrid.square(px)
    for start in range(0, len(store), BATCH):
        truth = store.trajectory(np.arange(start, min(start + BATCH, len(store))))
        if frames is not None:
            truth = truth.at_frames(list(frames))
        if switch:  # rings of the split's ratio (the store fills inner = 0 on other shapes)
            b, ratio = truth.bodies, store.manifest["bodies"]["ring_inner_ratio"]
            shape = (b.shape + switch) % len(Shape)
            truth = replace(truth, bodies=replace(b, shape=shape, inner=ratio * b.size))
        videos = render(truth.pos, truth.bodies, grid)
        _, palette = parse_bodies(videos, store, truth.bodies, grid, moments_order=4)
        n = truth.pos.shape[2]
        area = np.asarray(truth.bodies.area) * float(grid.world_len_to_px(1.0)) ** 2
        ring = np.asarray(truth.bodies.shape) == Shape.RING  # J tells rings at any size
        small = (np.sqrt(area / np.pi) < SMALL_PX) & ~ring  # [B, N]
        for i, rec in enumerate(video_attributes(store, palette, truth, 3)):
            for k, (tag, _) in enumerate(_bodies(rec, n)):
                gs, gv = rec[f"gen_size{tag}"], rec[f"gen_vx{tag}"]
                out["shape"].append(rec[f"gen_shape{tag}"] == rec[f"given_shape{tag}"])
                out["colour"].append(rec[f"gen_colour{tag}"] == rec[f"given_colour{tag}"])
                out["ambiguous"].append(rec[f"gen_shape{tag}"] == "ambiguous")
                out["small"].append(small[i, k])
                out["seen"].append(rec[f"gen_frames{tag}"] > 0)
                out["dsize"].append(np.nan if gs is None else abs(gs - rec[f"given_size{tag}"]))
                out["dvx"].append(np.nan if gv is None else abs(gv - rec[f"given_vx{tag}"]))
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
    seen = arrays.pop("seen") == 1
    return {k: v[seen] for k, v in arrays.items()} | {"out_of_view": np.array((~seen).sum())}


def row(study: str, label: str, m: dict, switched: float | None, seconds: float) -> str:
    ok = (m["shape"] == 1) & (m["colour"] == 1)
    worst = lambda x: f"{np.nanmax(x[ok]):.3f}" if ok.any() else "-"  # noqa: E731
    sw = "-" if switched is None else f"{switched:.2f}"
    return (
        f"| {study} | {label} | {100 * m['shape'].mean():.2f} | {100 * m['colour'].mean():.2f} | "
        f"{sw} | {len(m['shape'])} | {int(m['out_of_view'])} | {int(m['ambiguous'].sum())} | "
        f"{int(m['small'].sum())} | {worst(m['dsize'])} | {worst(m['dvx'])} | {seconds:.1f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--studies", nargs="+", default=list(STUDIES))
    ap.add_argument("--cpu-clip", action="store_true", help="also the CPU preset's clip, 32 px")
    ap.add_argument("--no-switch", action="store_true", help="skip the switched-shape check")
    args = ap.parse_args()
    print(
        "| study | resolution | shape right % | colour right % | switched shape right % | "
        "bodies | out of view | ambiguous | below 2 px | max abs size err | max abs vx err | s |"
        "\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lowest = {"ground truth": 100.0, "switched": 100.0}
    with tempfile.TemporaryDirectory() as tmp:
        for study in args.studies:
            store = build_split(study_split(study, "eval"), Path(tmp) / study, progress=False)
            cases = [(f"{px} px", px, None) for px in args.res]
            if args.cpu_clip:
                cases.append(("32 px, CPU clip", 32, CPU_CLIP))
            for label, px, frames in cases:
                t0 = time.perf_counter()
                m = measure(store, px, frames)
                switched = None
                if not args.no_switch:
                    sw = [measure(store, px, frames, k)["shape"] for k in (1, 2)]
                    switched = 100 * np.concatenate(sw).mean()
                    lowest["switched"] = min(lowest["switched"], switched)
                print(row(study, label, m, switched, time.perf_counter() - t0), flush=True)
                gt = min(100 * m["shape"].mean(), 100 * m["colour"].mean())
                lowest["ground truth"] = min(lowest["ground truth"], gt)
    print("\nlowest accuracy over every study and resolution: " + ", ".join(
        f"{k} {v:.2f} %" for k, v in lowest.items()))  # fmt: skip


if __name__ == "__main__":
    main()

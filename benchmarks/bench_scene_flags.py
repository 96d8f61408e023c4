"""Validate the scene flags: recall per injected defect, false positives on clean ground truth.

Builds combinatorial splits with the data API (``--per-template`` scenes of each of the 60
training templates, split ``train``, and of the 10 held-out templates, ``eval-out-of-template``),
renders the ground truth at each ``--resolutions`` (64 and 128 px are CPU scale, 256 the paper's)
and, for each defect of ``eval.scene_defects``, injects that defect into a copy of every scene:
one body and a start frame (1..T-3, so at least two defective frames) drawn at random, the
defect lasting to the end. Every video is then scored by ``eval.scene_flags`` with the first
frame as the given condition frame. Recall counts a video flagged by any flag; the named recall
(in brackets) only by the flag that names the defect.

Magnitudes (``--hard``: smaller):

============ ================================================================== ===============
defect       default                                                            ``--hard``
============ ================================================================== ===============
vanish       any body (dynamic or static, any colour) is no longer drawn        same
duplicate    a copy 1.5-3 body radii away, clear of every body, moving with it  same
resize       every dimension x 1.3 or / 1.3 (area +69 % or -41 %)               x / 1.15
squash       stretched by sqrt(a) along or across its major axis (+-15 degrees)  a = 1.15-1.25
             and shrunk as much the other way, a = 1.3-1.5, area kept
break_apart  cut across its major axis, pieces 0.25-0.4 world units apart       0.12-0.2
penetrate    a dynamic body moved into another, overlapping 30-60 % of the      15-30 %
             smaller one's area, then carried along with it
recolour     drawn in another palette colour (PHYRE's or not)                   same
============ ================================================================== ===============

``--tune`` instead prints quantiles of each video's largest clean score (the sustained frame
score; > 1 raises a flag): the numbers the tolerances were set from, on seed 0. Recall and false
positives are reported on another seed (default 1).

Usage::

    python benchmarks/bench_scene_flags.py --tune --seed 0       # clean score margins
    python benchmarks/bench_scene_flags.py --seed 1              # recall and false positives
    python benchmarks/bench_scene_flags.py --seed 1 --resolutions 256 --every 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from phylaw.data.build import build_split
from phylaw.data.combinatorial import resolve_scene_split, scene_trajectory
from phylaw.data.views import render_batch
from phylaw.eval.flags.scenes import SCENE_FLAGS, scene_flag_scores, scene_start
from phylaw.physics.scenes import scene_record
from phylaw.physics.scenes.kinds import colour_of, is_dynamic
from phylaw.physics.state import Colour, SceneTrajectory
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import PALETTE
from phylaw.testing import scene_defects as sd

CLEAR_WORLD = 0.25  # observable placements: this far from bodies of the same colour (1.6-6.4 px)
EXPECTED = {
    "vanish": "vanishes",
    "duplicate": "duplicates",
    "resize": "resizes",
    "squash": "deforms",
    "break_apart": "breaks",
    "penetrate": "penetrates",
    "recolour": "recolours",
}


# ------------------------------------------------------------------------------ data
def ground_truth(seed: int, per_template: int, root: Path, grids) -> tuple:
    """Scenes of both splits: ``SceneTrajectory`` [B] and clean videos per resolution."""
    trajs, videos = [], {g.width_px: [] for g in grids}
    for split, templates in (("train", "60"), ("eval-out-of-template", None)):
        spec = resolve_scene_split(split, str(per_template), seed, templates)
        store = build_split(spec, root / f"{split}-{seed}", progress=False)
        rows = np.arange(len(store))
        trajs.append(scene_trajectory(store, rows))
        for g in grids:
            videos[g.width_px].append(render_batch(store, store.get(rows), g))
    fields = ("pos", "angle", "kind", "dims")
    traj = scene_record(
        trajs[0].times, *(np.concatenate([getattr(t, f) for t in trajs]) for f in fields)
    )
    return traj, {r: np.concatenate(v) for r, v in videos.items()}


def subsample(traj: SceneTrajectory, clean: dict, every: int) -> tuple:
    """Every ``every``-th scene (all templates stay represented when every divides evenly)."""
    rows = np.arange(0, traj.batch_size, every)
    return traj[rows], {r: v[rows] for r, v in clean.items()}


# ------------------------------------------------------------------------------ planning
def plan(
    name: str, one: SceneTrajectory, rng: np.random.Generator, hard: bool, anywhere: bool
) -> dict | None:
    """Body, start frame and parameters of defect ``name`` for one scene, or None. Unless
    ``anywhere``, the body is ``CLEAR_WORLD`` away from bodies of its colour in the start frame
    and the next (where a merged blob could hide a change of shape; penetrations exempt)."""
    used = np.flatnonzero(one.kind[0] >= 0)
    dynamic = used[is_dynamic(one.kind[0, used])]
    t_all = one.num_frames
    for _ in range(30):
        i = int(rng.choice(dynamic if name == "penetrate" else used))
        s = int(rng.integers(1, t_all - 2))
        p = {"body": i, "start": s}
        if not anywhere and name != "penetrate":
            if min(sd.clearance(one, i, s), sd.clearance(one, i, s + 1)) < CLEAR_WORLD:
                continue
        if name == "duplicate":
            _, _, extent = sd.body_frame(int(one.kind[0, i]), one.dims[0, i])
            reach = 2.0 * extent[0]
            ang = rng.uniform(0, 2 * np.pi)
            offset = rng.uniform(1.5, 3.0) * reach * np.array([np.cos(ang), np.sin(ang)])
            if not sd.copy_is_clear(one, i, s, offset):
                continue
            p["offset"] = offset
        elif name == "resize":
            k = 1.15 if hard else 1.3
            p["scale"] = k if rng.random() < 0.5 else 1.0 / k
        elif name == "squash":
            p["aspect"] = rng.uniform(*((1.15, 1.25) if hard else (1.3, 1.5)))
            p["direction"] = rng.choice([0.0, np.pi / 2]) + rng.uniform(-0.25, 0.25)
        elif name == "break_apart":
            p["gap"] = rng.uniform(*((0.12, 0.2) if hard else (0.25, 0.4)))
            p["cut"] = rng.uniform(-0.2, 0.2)
        elif name == "penetrate":
            others = [int(j) for j in used if j != i]
            j = int(rng.choice(others))
            frac = rng.uniform(*((0.15, 0.3) if hard else (0.3, 0.6)))
            shift = sd.penetration_shift(one, i, j, s, frac)
            if shift is None:
                continue
            p["other"], p["shift"] = j, shift
        elif name == "recolour":
            own = Colour(int(colour_of(one.kind[0, i])))
            choices = [c for c in PALETTE if PALETTE[c] != PALETTE[own]]
            p["rgb"] = np.asarray(PALETTE[choices[int(rng.integers(len(choices)))]])
        return p
    return None


def inject(name: str, traj: SceneTrajectory, plans: list[dict], grid: PixelGrid) -> np.ndarray:
    """Videos [B', T, H, W, 3] of the scenes with a plan, each with its defect."""
    keep = [b for b, p in enumerate(plans) if p is not None]
    sub = traj[np.array(keep)]
    ps = [plans[b] for b in keep]
    arg = {k: np.array([p[k] for p in ps]) for k in ps[0]}
    body, start = arg.pop("body"), arg.pop("start")
    if name == "penetrate":
        return sd.penetrate(sub, body, arg["other"], start, arg["shift"], grid)
    extra = [arg[k] for k in ps[0] if k not in ("body", "start")]
    return sd.SCENE_DEFECTS[name](sub, body, start, *extra, grid)


# ------------------------------------------------------------------------------ running
def scores(videos: np.ndarray, traj: SceneTrajectory) -> np.ndarray:
    """Per-video largest score of each flag, [B, F] (> 1: raised)."""
    return scene_flag_scores(videos, scene_start(traj)).max(1)


def run(args) -> None:
    grids = [PixelGrid.square(r) for r in args.resolutions]
    with tempfile.TemporaryDirectory() as tmp:
        traj, clean = ground_truth(args.seed, args.per_template, Path(tmp), grids)
    traj, clean = subsample(traj, clean, args.every)
    n = traj.batch_size
    print(
        f"seed {args.seed}: {n} scenes ({args.per_template} per template of 70, every {args.every})"
    )
    plans = {}
    t0 = time.perf_counter()
    for d, name in enumerate(sd.SCENE_DEFECTS):
        rng = np.random.default_rng([args.seed, d])
        plans[name] = [plan(name, traj[b : b + 1], rng, args.hard, args.anywhere) for b in range(n)]
    print(f"planned defects in {time.perf_counter() - t0:.1f} s", flush=True)
    for grid in grids:
        r = grid.width_px
        t0, c0 = time.perf_counter(), time.process_time()
        s_clean = scores(clean[r], traj)
        cpu = (time.process_time() - c0) / n
        hit = (s_clean > 1).any(1)
        print(f"\n{r} px: {cpu * 1e3:.0f} ms of CPU per video to score", flush=True)
        print("| defect | recall (named) | n |\n|---|---|---|")
        for name in sd.SCENE_DEFECTS:
            ps = plans[name]
            if args.defects and name not in args.defects:
                continue
            keep = [b for b, p in enumerate(ps) if p is not None]
            if not keep:
                continue
            videos = inject(name, traj, ps, grid)
            s = scores(videos, traj[np.array(keep)])
            found = (s > 1).any(1)
            named = s[:, SCENE_FLAGS.index(EXPECTED[name])] > 1
            print(
                f"| {name} | {found.mean():.3f} ({named.mean():.2f}) | {len(found)} |", flush=True
            )
            if args.verbose:
                miss = [(b, ps[b]["body"], ps[b]["start"]) for b in np.array(keep)[~found]]
                print(f"    missed (scene, body, start): {miss}")
        print(f"| clean: false-positive rate | {hit.mean():.3f} ({hit.sum()}/{n}) | {n} |")
        for f, flag in enumerate(SCENE_FLAGS):
            print(
                f"|   clean {flag}: flagged (max score) | {(s_clean[:, f] > 1).sum()} "
                f"({s_clean[:, f].max():.2f}) | |"
            )
        if args.verbose and hit.any():
            print(f"    flagged clean scenes: {np.flatnonzero(hit).tolist()}")
        print(f"({time.perf_counter() - t0:.0f} s)", flush=True)


def tune(args) -> None:
    grids = [PixelGrid.square(r) for r in args.resolutions]
    with tempfile.TemporaryDirectory() as tmp:
        traj, clean = ground_truth(args.seed, args.per_template, Path(tmp), grids)
    traj, clean = subsample(traj, clean, args.every)
    for grid in grids:
        s = scores(clean[grid.width_px], traj)
        q = np.quantile(s.max(1), [0.5, 0.9, 0.99, 1.0])
        cells = " ".join(f"{f}={s[:, i].max():.2f}" for i, f in enumerate(SCENE_FLAGS))
        print(
            f"{grid.width_px:4d} px n={len(s)} score median/q90/q99/max "
            f"{'/'.join(f'{x:.2f}' for x in q)} | per flag max: {cells}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=None, help="split seed (default 1; --tune 0)")
    ap.add_argument("--per-template", type=int, default=1, help="scenes per template")
    ap.add_argument("--every", type=int, default=1, help="keep every k-th scene (faster)")
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--defects", nargs="+", choices=list(sd.SCENE_DEFECTS), default=None)
    ap.add_argument("--hard", action="store_true", help="smaller defect magnitudes")
    ap.add_argument("--anywhere", action="store_true", help="any body and frame, observable or not")
    ap.add_argument("--verbose", action="store_true", help="list missed and flagged scenes")
    ap.add_argument("--tune", action="store_true", help="score margins on clean videos only")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = 0 if args.tune else 1
    (tune if args.tune else run)(args)


if __name__ == "__main__":
    main()

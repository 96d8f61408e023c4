"""Validate the plausibility flags: recall per injected defect, false positives on clean videos.

For each scenario (uniform, parabola, collision) and evaluation split (eval-id, eval-ood, so OOD
radii 0.3-2.0 and speeds 0-6 are included) it builds ``--size`` videos, renders the ground truth
at 128x128 and, for each defect type of ``eval.defects``, injects that defect into a copy of every
clean video. The defect starts at a generated frame (>= 3) and lasts to the end; the object and
frame are drawn among those where the defect is observable: the object is fully in view (2 px
margin, also for the edited shape) and 3 px clear of the other ball in the frames around the
start (the frames the flags judge; see "Known limits" in ``eval.plausibility``). Videos then
go through the codec (libx264 crf 25, the authors' files) or not, are parsed, and flagged.

Magnitudes (``--hard``: about half, and no recolouring to another palette colour):

=========== ====================================================== ==========================
defect      default                                                ``--hard``
=========== ====================================================== ==========================
disappear   the object is erased                                   same
appear      a still disc of a scene colour, radius 0.8-1.2 x the   same
            object's, away from every object
duplicate   a copy of the object 2.5-3.5 radii away, moving with it  same
resize      diameter x 1.3 or / 1.3 (area +69 % or -41 %)          x 1.15 or / 1.15
squash      ellipse of axis ratio 1.3-1.5, area kept               1.15-1.25
recolour    another palette colour, or the hue turned 25-40 deg    hue 15-25 deg only
teleport    a jump of 0.5-1.0 world units (6-13 px)                0.3-0.5 world units
=========== ====================================================== ==========================

``--tune`` instead prints the distribution of each flag's score on clean videos (a score > 1
raises the flag), the numbers the tolerances were set from: run it on one seed (default 0, with
a training split too) and report recall and false positives on another (default 1).

Usage::

    python benchmarks/bench_plausibility.py                  # seed 1, 100 videos per split
    python benchmarks/bench_plausibility.py --tune --seed 0  # score margins on clean videos
    python benchmarks/bench_plausibility.py --size 40 --codec none --hard
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from phylaw.data.build import build_split
from phylaw.data.io.video import decode_video, encode_mp4
from phylaw.data.spaces import resolve_split
from phylaw.eval.flags.balls import FLAGS, parse_for_flags, plausibility_scores
from phylaw.physics.state import WORLD_SIZE, Colour
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import PALETTE
from phylaw.render.raster import render
from phylaw.testing import defects

SCENARIOS = ("uniform", "parabola", "collision")
SPLITS = ("eval-id", "eval-ood")
COND = 3  # condition frames
RES = 128
MARGIN_PX = 2.0  # the edited object stays this far inside the image
GAP_PX = 3.0  # ... and this far from the other ball
EXPECTED = {  # the flag that names each defect (any flag counts for recall)
    "disappear": ("disappears",),
    "appear": ("appears", "count_changes"),
    "duplicate": ("count_changes",),
    "resize": ("size_changes",),
    "squash": ("shape_changes",),
    "recolour": ("colour_changes",),
    "teleport": ("teleports",),
}


def magnitudes(hard: bool) -> dict:
    return {
        "scale": 1.15 if hard else 1.3,
        "aspect": (1.15, 1.25) if hard else (1.3, 1.5),
        "hue": (15.0, 25.0) if hard else (25.0, 40.0),
        "palette": not hard,
        "jump": (0.3, 0.5) if hard else (0.5, 1.0),
    }


# ------------------------------------------------------------------------------ data
def ground_truth(scenario: str, split: str, size: int, seed: int, root: Path):
    """Rendered ground truth uint8 [N, T, H, W, 3], positions [N, T, K, 2], radii [N, K] and
    the scene colours."""
    store = build_split(
        resolve_split(scenario, split, size, seed), root / f"{scenario}-{split}", progress=False
    )
    traj = store.trajectory(np.arange(len(store)))
    videos = render(traj.pos, traj.bodies, PixelGrid.square(RES))
    colours = tuple(Colour(int(c)) for c in traj.bodies.colour[0])
    return videos, traj.pos, traj.bodies.size, colours


def _codec_one(video: np.ndarray) -> np.ndarray:
    return decode_video(encode_mp4(video))


def through_codec(videos: np.ndarray, pool: ProcessPoolExecutor | None) -> np.ndarray:
    """Each video encoded to mp4 (libx264 crf 25, yuv420p) and decoded again."""
    run = map if pool is None else pool.map
    return np.stack(list(run(_codec_one, list(videos))))


# ------------------------------------------------------------------------------ defects
def _clear(pos, radius, k, frames, extra_px=0.0, centre=None, moved=False) -> bool:
    """Whether object k (or a disc at ``centre`` [len(frames), 2] of its radius grown by
    ``extra_px``) is in view with a margin and clear of the other objects in ``frames`` (and of
    object k itself unless it ``moved`` to ``centre``)."""
    ppw = RES / WORLD_SIZE
    c = pos[frames, k] if centre is None else centre
    r = radius[k] + extra_px / ppw
    inside = (c - r >= MARGIN_PX / ppw).all() and (c + r <= WORLD_SIZE - MARGIN_PX / ppw).all()
    for j in range(pos.shape[1]):
        if j != k or (centre is not None and not moved):
            gap = np.linalg.norm(c - pos[frames, j], axis=-1) - r - radius[j]
            if (gap < GAP_PX / ppw).any():
                return False
    return bool(inside)


def plan(name: str, pos, radius, rng, mag) -> dict | None:
    """Object, start frame and parameters of defect ``name`` for one video (GT states
    ``pos`` [T, K, 2], ``radius`` [K]), or None when it has no observable place for it."""
    t, k_all = pos.shape[:2]
    ppw = RES / WORLD_SIZE
    r_px = radius * ppw
    grow = {"resize": (mag["scale"] - 1.0), "squash": np.sqrt(mag["aspect"][1]) - 1.0}
    for _ in range(20):
        k = int(rng.integers(k_all))
        s = int(rng.integers(COND, t - 2))
        frames = np.arange(max(s - 2, 0), min(s + 3, t))
        if not _clear(pos, radius, k, frames, grow.get(name, 0.0) * r_px[k]):
            continue
        p = {"k": k, "start": s}
        if name in ("teleport", "duplicate"):
            lo, hi = mag["jump"] if name == "teleport" else (2.2 * radius[k], 3.0 * radius[k])
            ang = rng.uniform(0, 2 * np.pi)
            d = rng.uniform(lo, hi) * np.array([np.cos(ang), np.sin(ang)])  # world units
            after = frames[frames >= s]
            moved = name == "teleport"
            if not _clear(pos, radius, k, after, centre=pos[after, k] + d, moved=moved):
                continue
            if name == "duplicate" and not _clear(pos, radius, k, after):
                continue
            p["shift_px"] = np.array([d[0], -d[1]]) * ppw  # (col, row)
        elif name == "appear":
            rad = radius[k] * rng.uniform(0.8, 1.2)
            centre = rng.uniform(rad, WORLD_SIZE - rad, 2)
            after = np.arange(s, t)
            far = np.linalg.norm(pos[after] - centre, axis=-1) - radius - rad  # [T', K]
            if (far < GAP_PX / ppw).any() or not _clear(
                pos, np.append(radius, rad), k_all, after[:2], centre=np.tile(centre, (2, 1))
            ):
                continue
            p["colour"] = int(rng.integers(k_all))
            p["centre_px"] = PixelGrid.square(RES).world_to_px(centre)
            p["radius_px"] = rad * ppw
        elif name == "resize":
            p["scale"] = mag["scale"] if rng.random() < 0.5 else 1.0 / mag["scale"]
        elif name == "squash":
            p["aspect"], p["angle"] = rng.uniform(*mag["aspect"]), rng.uniform(0, np.pi)
        elif name == "recolour":
            p["hue"] = float(rng.choice([-1, 1]) * rng.uniform(*mag["hue"]))
            p["palette"] = bool(mag["palette"] and rng.random() < 0.5)
            p["pick"] = int(rng.integers(1 << 30))
        return p
    return None


def inject(name: str, videos: np.ndarray, plans: list, colours: tuple) -> np.ndarray:
    """Apply defect ``name`` with per-video ``plans`` (None: left clean) to ``videos``."""
    out = videos.copy()
    rgbs = [PALETTE[c] for c in colours]
    for k, rgb in enumerate(rgbs):
        sel = [i for i, p in enumerate(plans) if p is not None and p["k"] == k]
        if not sel:
            continue
        ps = [plans[i] for i in sel]
        v, start = out[sel], np.array([p["start"] for p in ps])
        if name == "disappear":
            v = defects.disappear(v, rgb, start)
        elif name in ("teleport", "duplicate"):
            shift = np.stack([p["shift_px"] for p in ps])
            v = getattr(defects, name)(v, rgb, shift, start)
        elif name == "resize":
            v = defects.resize(v, rgb, np.array([p["scale"] for p in ps]), start)
        elif name == "squash":
            aspect, angle = (np.array([p[f] for p in ps]) for f in ("aspect", "angle"))
            v = defects.squash(v, rgb, aspect, angle, start)
        elif name == "recolour":
            for i, p in enumerate(ps):
                others = [c for c in PALETTE if PALETTE[c] != rgb]
                target = others[p["pick"] % len(others)] if p["palette"] else None
                new = PALETTE[target] if target is not None else defects.hue_rotate(rgb, p["hue"])
                v[i : i + 1] = defects.recolour(v[i : i + 1], rgb, new, p["start"])
        elif name == "appear":
            for i, p in enumerate(ps):
                colour = rgbs[p["colour"]]
                v[i : i + 1] = defects.appear(
                    v[i : i + 1], colour, p["centre_px"], p["radius_px"], p["start"]
                )
        out[sel] = v
    return out


# ------------------------------------------------------------------------------ scoring
def scores_of(videos: np.ndarray, colours: tuple) -> np.ndarray:
    """Per-video maximum score of each flag, [N, F] (> 1: raised)."""
    parsed = parse_for_flags(videos, colours, PixelGrid.square(RES))
    return plausibility_scores(parsed, videos, num_cond_frames=COND).max(1)


def run(args) -> None:
    mag = magnitudes(args.hard)
    codecs = {"none": (False,), "mp4": (True,), "both": (False, True)}[args.codec]
    pool = ProcessPoolExecutor(args.workers) if args.workers > 1 else None
    rows: dict = {}  # (scenario, codec, defect) -> list of (abnormal, named)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenarios:
            for split in SPLITS:
                clean, pos, radius, colours = ground_truth(
                    scenario, split, args.size, args.seed, Path(tmp)
                )
                rng = np.random.default_rng([args.seed, SCENARIOS.index(scenario), len(split)])
                sets = {"clean": clean}
                for name in defects.DEFECTS:
                    plans = [plan(name, pos[i], radius[i], rng, mag) for i in range(len(clean))]
                    keep = [i for i, p in enumerate(plans) if p is not None]
                    sets[name] = inject(name, clean[keep], [plans[i] for i in keep], colours)
                for mp4 in codecs:
                    for name, videos in sets.items():
                        v = through_codec(videos, pool) if mp4 else videos
                        s = scores_of(v, colours)
                        hit = (s > 1).any(1)
                        named = np.zeros_like(hit)
                        for f in EXPECTED.get(name, ()):
                            named |= s[:, FLAGS.index(f)] > 1
                        key = (scenario, "mp4" if mp4 else "raw", name)
                        rows.setdefault(key, []).append((hit, named, s))
                        if args.verbose and name == "clean" and hit.any():
                            bad = np.flatnonzero(hit)
                            print(f"    {key} {split}: clean videos {bad.tolist()} flagged")
                print(f"  {scenario} {split} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    if pool is not None:
        pool.shutdown()
    report(rows, codecs, args)


def report(rows: dict, codecs, args) -> None:
    cols = [(sc, "mp4" if c else "raw") for c in codecs for sc in args.scenarios]
    head = " | ".join(f"{sc} {cd}" for sc, cd in cols)
    print(
        f"\nseed {args.seed}, {args.size} videos per split (eval-id + eval-ood), {RES} px"
        f"{', hard magnitudes' if args.hard else ''}\n"
    )
    print(f"| defect | {head} |")
    print("|---" * (len(cols) + 1) + "|")
    for name in defects.DEFECTS:
        cells = []
        for sc, cd in cols:
            hit = np.concatenate([h for h, _, _ in rows[(sc, cd, name)]])
            named = np.concatenate([n for _, n, _ in rows[(sc, cd, name)]])
            cells.append(f"{hit.mean():.3f} ({named.mean():.2f}) n={len(hit)}")
        print(f"| {name} recall (named) | " + " | ".join(cells) + " |")
    cells = []
    for sc, cd in cols:
        hit = np.concatenate([h for h, _, _ in rows[(sc, cd, "clean")]])
        cells.append(f"{hit.mean():.3f} ({hit.sum()}/{len(hit)})")
    print("| clean: false-positive rate | " + " | ".join(cells) + " |")
    for f, flag in enumerate(FLAGS):
        cells = []
        for sc, cd in cols:
            s = np.concatenate([s for _, _, s in rows[(sc, cd, "clean")]])[:, f]
            cells.append(f"{(s > 1).sum()} (max {s.max():.2f})")
        print(f"| clean: {flag} (max score) | " + " | ".join(cells) + " |")


def tune(args) -> None:
    """Quantiles of each flag's per-video maximum score on clean ground truth."""
    codecs = {"none": (False,), "mp4": (True,), "both": (False, True)}[args.codec]
    pool = ProcessPoolExecutor(args.workers) if args.workers > 1 else None
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenarios:
            for split in ("train", *SPLITS):
                clean, _, _, colours = ground_truth(
                    scenario, split, args.size, args.seed, Path(tmp)
                )
                for mp4 in codecs:
                    s = scores_of(through_codec(clean, pool) if mp4 else clean, colours)
                    q = np.quantile(s, [0.5, 0.99, 1.0], axis=0)
                    cells = " ".join(
                        f"{f}={q[0, i]:.2f}/{q[1, i]:.2f}/{q[2, i]:.2f}"
                        for i, f in enumerate(FLAGS)
                    )
                    print(
                        f"{scenario:9s} {split:8s} {'mp4' if mp4 else 'raw'} n={len(s)} "
                        f"(median/q99/max) {cells}",
                        flush=True,
                    )
    if pool is not None:
        pool.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100, help="videos per split and scenario")
    ap.add_argument("--seed", type=int, default=None, help="split seed (default 1; --tune 0)")
    ap.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    ap.add_argument("--codec", choices=("none", "mp4", "both"), default="both")
    ap.add_argument("--hard", action="store_true", help="smaller defect magnitudes")
    ap.add_argument("--verbose", action="store_true", help="list flagged clean videos")
    ap.add_argument("--tune", action="store_true", help="score margins on clean videos only")
    ap.add_argument("--workers", type=int, default=2, help="processes for the mp4 codec")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = 0 if args.tune else 1
    (tune if args.tune else run)(args)


if __name__ == "__main__":
    main()

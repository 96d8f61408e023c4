"""``phylaw data build|info|preview|export|import``: datasets of the fundamental scenarios and
of the combinatorial (PHYRE-style) scenes."""

from __future__ import annotations

import argparse
from pathlib import Path

from phylaw.commands import Parser, add_command, formatter

REGION_FLAGS = ("exclude", "keep", "range", "grid", "eval_range", "colour", "shape", "ring_inner")


def _region_spec(args):
    """The spec of a --study or of region flags (--exclude, --keep, ...), else None."""
    from phylaw import PhylawError
    from phylaw.data.region_args import parse_grid, resolve_region_args
    from phylaw.data.studies import study_split

    given = [f"--{f.replace('_', '-')}" for f in REGION_FLAGS if getattr(args, f) not in (None, [])]
    if args.labels is not None:
        given.append("--labels")
    if args.study is not None:
        extra = given + [f"--{f}" for f in ("scenario", "ranges", "templates") if getattr(args, f)]
        extra = [f for f in extra if f != "--grid"]  # a coarser evaluation grid is allowed
        if extra or args.oversample:
            raise PhylawError(
                f"--study fixes its regions; leave out {(extra or ['--oversample'])[0]}"
            )
        grid = parse_grid(args.grid) if args.grid else ()
        return study_split(args.study, args.split, args.size, args.seed, grid)
    if args.scenario is None:
        raise PhylawError(
            "give --scenario (uniform, collision, parabola, combinatorial) or --study"
        )
    if not given and args.split != "eval":
        return None
    if args.oversample or args.templates is not None:
        raise PhylawError(
            f"{'--oversample' if args.oversample else '--templates'} and {given[0]}"
            " do not go together"
        )
    if args.scenario == "combinatorial" or args.split not in ("train", "eval"):
        raise PhylawError(
            f"{(given or ['--split eval'])[0]} applies to --split train or eval of uniform, "
            "collision or parabola"
        )
    return resolve_region_args(
        args.scenario, args.split, args.size, args.seed, args.ranges or "code",
        range_text=",".join(args.range or []), keep=tuple(args.keep or ()),
        exclude=tuple(args.exclude or ()), grid=args.grid or "", eval_range=args.eval_range or "",
        colours=args.colour or "", shapes=args.shape or "", ring_inner=args.ring_inner,
        labels=args.labels or "region",
    )  # fmt: skip


def _data_build(args) -> None:
    from phylaw import PhylawError
    from phylaw.data.build import build_split
    from phylaw.data.combinatorial import resolve_scene_split
    from phylaw.data.spaces import resolve_split

    spec = _region_spec(args)
    if spec is not None:
        pass  # a study or a region of its own
    elif args.scenario == "combinatorial":
        if args.oversample:
            raise PhylawError("--oversample applies to uniform, collision and parabola only")
        if args.ranges is not None:
            raise PhylawError("--ranges applies to uniform, collision and parabola only")
        spec = resolve_scene_split(args.split, args.size, args.seed, args.templates)
    elif args.templates is not None:
        raise PhylawError("--templates applies to --scenario combinatorial only")
    else:
        spec = resolve_split(
            args.scenario, args.split, args.size, args.seed, args.ranges or "code", args.oversample
        )
    store = build_split(spec, args.out, workers=args.workers, shard_size=args.shard_size)
    m = store.manifest
    what = f"study {m['study']} " if m.get("study") else ""
    print(
        f"{what}{m['scenario']} {m['split']}: {m['count']} videos "
        f"({m['candidates'] - m['count']} dropped by placement) in {args.out}"
    )
    if "regions" in m:
        print("levels: " + ", ".join(f"{k} {m['level_counts'][k]}" for k in m["levels"]))


def _data_info(args) -> None:
    from phylaw.data.info import describe

    print(describe(args.dir, verify=args.verify))


def _data_preview(args) -> None:
    from phylaw.data.info import preview

    path = preview(
        args.dir,
        args.out,
        count=args.count,
        resolution=args.resolution,
        fps=args.fps,
        seed=args.seed,
    )
    print(f"wrote {path}")


def _data_export(args) -> None:
    from phylaw.data.export import export_store
    from phylaw.data.store import open_store

    path = export_store(
        open_store(args.dir), args.format, args.out, resolution=args.resolution, limit=args.limit
    )
    print(f"wrote {path}")


def _data_import(args) -> None:
    from phylaw.data.io.phyworld import import_phyworld

    store = import_phyworld(args.file, args.out, scenario=args.scenario)
    print(f"imported {len(store)} {store.scenario} videos into {args.out}")


BUILD_EXAMPLES = (
    "  phylaw data build --scenario uniform --split train --size 30K --out data/u-train\n"
    "  phylaw data build --scenario collision --split eval-ood --out data/c-ood\n"
    "  phylaw data build --scenario collision --split eval-ood --oversample --out data/c-ood\n"
    "  phylaw data build --scenario parabola --split train --size 5000 --seed 1 "
    "--out data/p5k --workers 2\n\n"
    "SIZE for train: a paper level (uniform/parabola 30K, 300K, 3M; collision 28.2K,\n"
    "329.5K, 3.41M, also accepted as 30K, 300K, 3M) or any count, which takes a seeded\n"
    "subsample of the smallest level grid holding that many points. For eval splits:\n"
    "a count (default: the paper's A.4 sizes). Re-running resumes an interrupted build.\n"
    "Collision placement drops candidates (most at high speed and radius), so OOD levels\n"
    "end unequal ('phylaw data info' shows kept/drawn per level); --oversample draws\n"
    "each level until it holds its share of SIZE.\n\n"
    "combinatorial (PHYRE-style scenes, paper Sec. 4): splits train, eval-in-template,\n"
    "eval-out-of-template; --templates 6|30|60|ID,ID,... (default: all 60 training\n"
    "templates, or the 10 held-out ones); SIZE counts videos per template (default:\n"
    "99K for train, as the paper's 100K less the 10 in-template trials per task; 100 for\n"
    "the evaluation splits). Use the same --seed for train and evaluation splits:\n"
    "  phylaw data build --scenario combinatorial --split train --templates 6 --size 10 "
    "--out data/phyre-train\n\n"
    "Studies (paper Sec. 5): --study NAME --split train|eval builds a named split of the\n"
    "mechanism studies (gap-2-3, keep-3, flip, colour-size, colour-ring, ...; an unknown\n"
    "name lists them all). Evaluation videos carry their region as their level.\n"
    "  phylaw data build --study gap-2-3 --split train --size 200K --out data/gap23-train\n"
    "  phylaw data build --study gap-2-3 --split eval --out data/gap23-eval\n"
    "  phylaw data build --study gap-2-3 --split eval --grid v=31,r=4 --out d/g  # coarser\n"
    "Regions of your own (split train or eval; see phylaw.data.region_args):\n"
    "  phylaw data build --scenario uniform --split train --size 20K --exclude v=2:3 "
    "--out d/gap\n"
    "  phylaw data build --scenario uniform --split train --keep v=1:1.25,3.75:4 --out d/k\n"
    "  phylaw data build --scenario collision --split train --exclude v1=2:3,v2=2:3 "
    "--out d/hole\n"
    "  phylaw data build --scenario uniform --split eval --exclude v=2:3 --grid v=121,r=36 "
    "--out d/e\n"
    "  phylaw data build --scenario uniform --split train --colour red,blue "
    "--shape disc,ring --out d/mix"
)


def _register_build(dsub) -> None:
    """Add ``data build`` and its flags."""
    b = add_command(
        dsub,
        "build",
        "generate a split (parameters and exact trajectories) into DIR",
        BUILD_EXAMPLES,
        _data_build,
    )
    b.add_argument(
        "--scenario", default=None, choices=["uniform", "collision", "parabola", "combinatorial"]
    )
    b.add_argument(
        "--split",
        required=True,
        choices=[
            "train",
            "eval-id",
            "eval-ood",
            "eval",
            "eval-in-template",
            "eval-out-of-template",
        ],
    )
    b.add_argument("--study", default=None, help="a named split of the Sec. 5 studies")
    rg = b.add_argument_group("regions (split train or eval; with --study only --grid)")
    rg.add_argument("--exclude", action="append", metavar="BOX", help="leave out a box (repeat)")
    rg.add_argument("--keep", action="append", metavar="BOX", help="keep only these boxes")
    rg.add_argument("--range", action="append", metavar="P=LO:HI", help="a parameter's range")
    rg.add_argument("--grid", default=None, metavar="P=N,...", help="evaluation grid counts")
    rg.add_argument("--eval-range", default=None, metavar="P=LO:HI,...", help="evaluation reach")
    rg.add_argument("--labels", default=None, help="evaluation levels: region (default) or hull")
    rg.add_argument("--colour", default=None, metavar="C,...", help="colours varying per video")
    rg.add_argument("--shape", default=None, metavar="S,...", help="disc, square, ring per video")
    rg.add_argument("--ring-inner", type=float, default=None, help="ring inner radius / r (0.5)")
    b.add_argument(
        "--size",
        default=None,
        help="paper level or count (default: 30K for train, the paper's size for eval); "
        "combinatorial: videos per template",
    )
    b.add_argument(
        "--templates",
        default=None,
        help="combinatorial only: 6, 30, 60 or comma-separated template ids",
    )
    b.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    b.add_argument("--out", required=True, type=Path, help="output directory")
    b.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    b.add_argument(
        "--ranges",
        default=None,
        choices=["code", "paper"],
        help="parameter ranges: the authors' code (default) or the paper's App. A.4",
    )
    b.add_argument(
        "--oversample",
        action="store_true",
        help="eval splits: draw each level until it holds its share after placement drops",
    )
    b.add_argument("--shard-size", type=int, default=None, help=argparse.SUPPRESS)


def register(sub) -> None:
    """Add ``data`` and its verbs."""
    data = sub.add_parser(
        "data",
        help="build, inspect, preview, export and import datasets",
        description="Datasets of the fundamental scenarios: states are "
        "stored, pixels rendered on demand.",
        formatter_class=formatter,
        epilog="examples:\n  phylaw data build --scenario uniform --split "
        "train --size 30K --out data/u-train\n  phylaw data info "
        "data/u-train",
    )
    dsub = data.add_subparsers(
        dest="data_command", required=True, metavar="COMMAND", parser_class=Parser
    )
    _register_build(dsub)

    i = add_command(
        dsub,
        "info",
        "describe a split: sizes, levels, parameter ranges, integrity",
        "  phylaw data info data/u-train\n  phylaw data info data/u-train --verify",
        _data_info,
    )
    i.add_argument("dir", type=Path)
    i.add_argument("--verify", action="store_true", help="recompute every checksum")

    p = add_command(
        dsub,
        "preview",
        "render a few videos of a split side by side into a gif",
        "  phylaw data preview data/u-train --out preview.gif\n"
        "  phylaw data preview data/c-ood --out ood.gif --count 16 --resolution 64",
        _data_preview,
    )
    p.add_argument("dir", type=Path)
    p.add_argument("--out", required=True, type=Path, help="output .gif")
    p.add_argument("--count", type=int, default=8, help="videos to show (default: 8)")
    p.add_argument("--resolution", type=int, default=128, help="pixels (default: 128)")
    p.add_argument("--fps", type=int, default=10, help="frames per second (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="which videos to pick (default: 0)")

    e = add_command(
        dsub,
        "export",
        "render a split into mp4/gif files, an npz array or the authors' HDF5 layout",
        "  phylaw data export data/u-ood --format mp4 --out videos/ --limit 100\n"
        "  phylaw data export data/c-ood --format phyworld-hdf5 --out c-ood.hdf5\n"
        "  phylaw data export data/u-id --format npz --out u-id.npz --resolution 64",
        _data_export,
    )
    e.add_argument("dir", type=Path)
    e.add_argument("--format", required=True, choices=["mp4", "gif", "npz", "phyworld-hdf5"])
    e.add_argument("--out", required=True, type=Path)
    e.add_argument("--resolution", type=int, default=128, help="pixels (default: 128)")
    e.add_argument("--limit", type=int, default=None, help="export only the first N videos")

    m = add_command(
        dsub,
        "import",
        "import the authors' HDF5 file (phyworld layout) as a split",
        "  phylaw data import uniform_motion_eval.hdf5 --out data/authors-u\n"
        "  phylaw data import collision.hdf5 --out data/authors-c --scenario collision",
        _data_import,
    )
    m.add_argument("file", type=Path)
    m.add_argument("--out", required=True, type=Path)
    m.add_argument(
        "--scenario",
        default=None,
        choices=["uniform", "collision", "parabola"],
        help="default: detected from the file",
    )

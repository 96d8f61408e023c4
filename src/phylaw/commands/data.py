"""``phylaw data build|info|preview|export|import``: datasets of the fundamental scenarios and
of the combinatorial (PHYRE-style) scenes."""

from __future__ import annotations

import argparse
from pathlib import Path

from phylaw.commands import Parser, add_command, formatter


def _data_build(args) -> None:
    from phylaw import PhylawError
    from phylaw.data.build import build_split
    from phylaw.data.combinatorial import resolve_scene_split
    from phylaw.data.spaces import resolve_split

    if args.scenario == "combinatorial":
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
    print(
        f"{m['scenario']} {m['split']}: {m['count']} videos "
        f"({m['candidates'] - m['count']} dropped by placement) in {args.out}"
    )


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
    _add_build(dsub)
    _add_views(dsub)


def _add_build(dsub) -> None:
    """``phylaw data build``."""
    b = add_command(
        dsub,
        "build",
        "generate a split (parameters and exact trajectories) into DIR",
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
        "--out data/phyre-train",
        _data_build,
    )
    b.add_argument(
        "--scenario", required=True, choices=["uniform", "collision", "parabola", "combinatorial"]
    )
    b.add_argument(
        "--split",
        required=True,
        choices=["train", "eval-id", "eval-ood", "eval-in-template", "eval-out-of-template"],
    )
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


def _add_views(dsub) -> None:
    """``phylaw data info``, ``preview``, ``export`` and ``import``."""
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

"""``phylaw eval`` and ``phylaw baseline``: score any model's videos; produce baseline videos."""

from __future__ import annotations

from pathlib import Path

from phylaw import PhylawError
from phylaw.commands import add_command


def _eval(args) -> None:
    from phylaw.data.store import open_store
    from phylaw.eval.run import EvalConfig, evaluate, format_result
    from phylaw.eval.sources import open_source

    store = open_store(args.data)
    source = open_source(args.videos, store.column("index"))
    cfg = EvalConfig(
        num_cond_frames=args.cond_frames,
        limit=args.limit,
        floor=not args.no_floor,
        fidelity=args.fidelity,
        lpips_weights=args.lpips_weights,
        i3d_weights=args.i3d_weights,
        workers=args.workers,
    )
    result = evaluate(source, store, args.out, cfg)
    print(format_result(result.summary))
    if result.failures:
        print(
            f"\n{len(result.failures)} videos could not be scored, e.g. video "
            f"{result.failures[0].video_id}: {result.failures[0].reason}"
            + (f" (all listed in {Path(args.out) / 'failures.json'})" if args.out else "")
        )
    if args.out:
        print(f"\nwrote {Path(args.out) / 'videos.jsonl'} and {Path(args.out) / 'summary.json'}")


def _baseline(args) -> None:
    from phylaw.baselines import BaselineContext, get_baseline, write_baseline
    from phylaw.data.store import open_store

    get_baseline(args.name)  # an unknown name fails before any split is read
    store = open_store(args.data)
    train = open_store(args.train) if args.train else None
    frames = None
    if args.frames is not None or args.frame_stride != 1:
        count = args.frames or store.manifest["num_frames"] // args.frame_stride
        frames = tuple(range(0, count * args.frame_stride, args.frame_stride))
        if (
            args.frame_stride < 1
            or count <= args.cond_frames
            or frames[-1] >= store.manifest["num_frames"]
        ):
            raise PhylawError(
                f"--frames {count} every --frame-stride {args.frame_stride} does not fit the "
                f"split's {store.manifest['num_frames']} frames and {args.cond_frames} "
                "condition frames"
            )
    if args.mirror and args.name != "nearest-case":
        raise PhylawError("--mirror applies to the nearest-case baseline")
    ctx = BaselineContext(
        store, args.resolution, args.cond_frames, train, frames=frames, mirror=args.mirror
    )
    n = write_baseline(args.name, ctx, args.out, args.limit, args.format)
    print(
        f"wrote {n} {args.name} videos to {args.out}; score them with "
        f"'phylaw eval --videos {args.out} --data {args.data}'"
    )


def register(sub) -> None:
    """Add ``eval`` and ``baseline``."""
    _add_eval(sub)
    _add_baseline(sub)


def _add_eval(sub) -> None:
    """``phylaw eval``."""
    e = add_command(
        sub,
        "eval",
        "score videos from any model against a split's ground truth",
        "  phylaw eval --videos samples/ --data data/u-ood --out scores/\n"
        "  phylaw eval --videos their_model.npz --data data/c-id --fidelity\n"
        "  phylaw eval --videos scenes.npz --data data/s-oot --lpips-weights lpips.safetensors\n\n"
        "VIDEOS: a folder of {id}.mp4/.gif/.npz files named by the split's video ids, an .npz\n"
        "with 'videos' [N,T,H,W,3] uint8 (and 'index'), or an .hdf5 (videos/index, or the\n"
        "authors' layout). Output: videos.jsonl, summary.json, failures.json and a table with\n"
        "the parse floor of the ground truth beside every group.\n\n"
        "On a combinatorial split (PHYRE-style scenes) it scores PSNR, SSIM, LPIPS (with\n"
        "weights), FVD (with weights, 9+ frames) and the abnormality flags per template, with\n"
        "the flags' rate on the ground truth as the floor.\n\n"
        "Speed: one forked worker per core (--workers); the first evaluation on a machine also\n"
        "compiles the pixel scan (numba, ~3 s; cached for later runs).",
        _eval,
    )
    e.add_argument("--videos", required=True, type=Path, help="generated videos (see below)")
    e.add_argument("--data", required=True, type=Path, help="the split they continue")
    e.add_argument("--out", type=Path, default=None, help="where to write the results")
    e.add_argument(
        "--cond-frames",
        type=int,
        default=None,
        help="condition frames, not scored (default: the videos' record, else 3; 1 for "
        "combinatorial scenes)",
    )
    e.add_argument("--limit", type=int, default=None, help="score the first N videos only")
    e.add_argument("--fidelity", action="store_true", help="also PSNR and SSIM (slower)")
    e.add_argument("--no-floor", action="store_true", help="skip the ground-truth parse floor")
    e.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes scoring batches (default: one per CPU core, at most 4)",
    )
    e.add_argument(
        "--lpips-weights", default=None, help="LPIPS weights (scenes; or PHYLAW_LPIPS_WEIGHTS)"
    )
    e.add_argument(
        "--i3d-weights", default=None, help="I3D weights for FVD (scenes; or PHYLAW_I3D_WEIGHTS)"
    )


def _add_baseline(sub) -> None:
    """``phylaw baseline``."""
    b = add_command(
        sub,
        "baseline",
        "write a baseline's videos for a split (scored like a model)",
        "  phylaw baseline copy-last --data data/u-ood --out baselines/copy-last\n"
        "  phylaw baseline nearest-case --data data/u-ood --train data/u-train --out b/nn\n\n"
        "NAME: oracle (the ground truth), copy-last (freeze the last condition frame),\n"
        "constant-velocity (extrapolate the objects parsed from the condition frames),\n"
        "nearest-case (the training video with the closest condition frames, its\n"
        "continuation pasted: the paper's case-based hypothesis as a model).",
        _baseline,
    )
    b.add_argument("name", metavar="NAME")
    b.add_argument("--data", required=True, type=Path, help="the split to continue")
    b.add_argument("--out", required=True, type=Path, help="output folder")
    b.add_argument("--train", type=Path, default=None, help="training split (nearest-case)")
    b.add_argument(
        "--mirror",
        action="store_true",
        help="nearest-case: also match the training videos mirrored left-right (a model "
        "trained with data.hflip)",
    )
    b.add_argument("--resolution", type=int, default=128, help="pixels (default: 128)")
    b.add_argument("--cond-frames", type=int, default=3, help="condition frames (default: 3)")
    b.add_argument("--limit", type=int, default=None, help="only the first N videos")
    b.add_argument(
        "--frames", type=int, default=None, help="frames per video (default: all of the split's)"
    )
    b.add_argument(
        "--frame-stride",
        type=int,
        default=1,
        help="take every Nth frame of the split, as a model trained with data.frame_stride",
    )
    b.add_argument(
        "--format",
        choices=["npz", "mp4"],
        default="npz",
        help="npz (exact, default) or mp4 (lossy, like most models' output)",
    )

"""``phylaw train`` and ``phylaw sample``: train the video diffusion model; generate with it.

Handlers parse flags, build a config and call one library function (`train.train`,
`sample.sample_split`); user mistakes raise `PhylawError`, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from phylaw import PhylawError
from phylaw.commands import add_command


# ------------------------------------------------------------------------ train
def resolve_config(args, kind: str = "dit"):
    """The config of `phylaw train` (kind 'dit') or `phylaw train-ae` ('autoencoder'): --preset,
    else RUN/config.json of the --out run (a resume), else the kind's default preset; then
    --data (data.train), --set overrides and --minutes (run.max_minutes)."""
    from phylaw.data.store import read_json
    from phylaw.train.checkpoint import KINDS
    from phylaw.train.config_core import dict_to_config, override

    get, presets, default = _PRESETS[kind]()
    stored = args.out / "config.json"
    if args.preset:
        cfg = get(args.preset)
    elif stored.is_file():
        cfg = dict_to_config(KINDS[kind], read_json(stored, "run config"), str(stored))
    elif default:
        cfg = get(default)
    else:
        raise PhylawError(f"give --preset (one of: {', '.join(presets)}), or --out a run to resume")
    sets = list(args.set or [])
    if args.data is not None:
        sets.insert(0, f"data.train={args.data.resolve()}")
    if args.minutes is not None:
        sets.append(f"run.max_minutes={args.minutes}")
    return override(cfg, sets)


def _dit_presets():
    from phylaw.train.presets import PRESETS, get_preset

    return get_preset, PRESETS, None


def _autoencoder_presets():
    from phylaw.train.ae_config import AUTOENCODER_PRESETS, autoencoder_preset

    return autoencoder_preset, AUTOENCODER_PRESETS, "ae-small"


_PRESETS = {"dit": _dit_presets, "autoencoder": _autoencoder_presets}


def resolve_train_config(args):
    """The config of `phylaw train` from --preset (or RUN/config.json), --data and --set."""
    return resolve_config(args, "dit")


def _describe(cfg) -> str:
    from phylaw.models.dit import count_params
    from phylaw.train.config import config_to_dict, network_config, space_shape

    net = network_config(cfg)
    lines = [json.dumps(config_to_dict(cfg), indent=2)]
    lines.append(
        f"# network: {count_params(net) / 1e6:.2f}M parameters, input {net.in_channels} x "
        f"{net.input_size}, patch {net.patch_size}, {net.num_tokens} tokens; diffusion space "
        f"(C, T, H, W) = {space_shape(cfg)}"
    )
    return "\n".join(lines)


def _train(args) -> None:
    cfg = resolve_train_config(args)
    if args.dry_run:
        print(_describe(cfg))
        return
    from phylaw.experiments.quickeval import quick_evaluator
    from phylaw.train import train

    train(cfg, args.out, evaluator=quick_evaluator(cfg), progress=not args.quiet)


def add_run_flags(p, preset_help: str) -> None:
    """The flags `phylaw train` and `phylaw train-ae` share."""
    p.add_argument("--preset", default=None, help=preset_help)
    p.add_argument("--data", type=Path, default=None, help="training split directory")
    p.add_argument("--out", required=True, type=Path, help="run directory (RUN)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field, section.field=value (repeatable)",
    )
    p.add_argument("--minutes", type=float, default=None, help="time budget (run.max_minutes)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------- sample
def _sample(args) -> None:
    from phylaw.sample import sample_split

    out = sample_split(
        args.run,
        args.data,
        args.out,
        steps=args.steps,
        ema=args.ema,
        sampler=args.sampler,
        batch_size=args.batch_size,
        limit=args.limit,
        resolution=args.resolution,
        fmt=args.format,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
    )
    print(f"wrote {out}")


def register(subparsers) -> None:
    """Add `train` and `sample` to the CLI's subparsers."""
    from phylaw.train.config import SAMPLERS
    from phylaw.train.presets import preset_help

    t = add_command(
        subparsers,
        "train",
        "train the video diffusion model on a split (re-run to resume)",
        "  phylaw train --preset cpu-uniform --data data/u-train --out runs/u --minutes 30\n"
        "  phylaw train --preset cpu-uniform --data data/u-train --out runs/u \\\n"
        "      --set optim.lr=3e-4 --set run.batch_size=64 --dry-run\n"
        "  phylaw train --out runs/u                  # resume with the stored config\n"
        "  phylaw train-ae --data data/u-train --out runs/ae --preset ae-paper\n"
        "  phylaw train --preset paper-S --data data/u-train --out runs/paper-S \\\n"
        "      --set space.autoencoder=runs/ae\n"
        "  torchrun --standalone --nproc_per_node 8 -m phylaw.cli train --preset paper-B \\\n"
        "      --data data/u-train --out runs/paper-B\n\n"
        "--set KEY=VALUE edits any config field (section.field; see --dry-run for all of\n"
        "them), e.g. data.eval_id=DIR, run.steps=5000, model.patch_size=1,4,4,\n"
        "model.size=DiT-B (brings its depth, hidden_size and num_heads), run.precision=bf16,\n"
        "run.compile=true. With run.eval_every and data.eval_id/eval_ood, a quick evaluation\n"
        "(velocity errors) is logged. Stop with Ctrl-C: the run checkpoints and the same\n"
        "command resumes it, with the same weights as an uninterrupted run.\n\n"
        "presets:\n" + preset_help(),
        _train,
    )
    add_run_flags(t, "a named config (listed below)")

    s = add_command(
        subparsers,
        "sample",
        "generate continuations of a split's videos with a trained run",
        "  phylaw sample --run runs/u --data data/u-eval-ood --out samples/u-ood\n"
        "  phylaw sample --run runs/u --data data/u-eval-id --out samples/u-id --steps 50 \\\n"
        "      --limit 200 --format mp4 --resolution 128\n\n"
        "Writes videos.npz (or one mp4 per video) and run.json in the layout of\n"
        "'phylaw data export'. Re-run the same command to resume.",
        _sample,
    )
    s.add_argument("--run", required=True, type=Path, help="run directory or checkpoint folder")
    s.add_argument("--data", required=True, type=Path, help="split directory to continue")
    s.add_argument("--out", required=True, type=Path, help="output directory")
    s.add_argument("--steps", type=int, default=None, help="sampler steps (default: the run's)")
    s.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="use the EMA weights (default) or the live ones (--no-ema)",
    )
    s.add_argument("--sampler", choices=SAMPLERS, default=None, help="default: the run's")
    s.add_argument("--batch-size", type=int, default=16, help="videos per batch (default: 16)")
    s.add_argument("--limit", type=int, default=None, help="only the first N videos")
    s.add_argument(
        "--resolution", type=int, default=None, help="output px (default: the run's data)"
    )
    s.add_argument("--format", choices=["npz", "mp4"], default="npz", help="default: npz")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    s.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

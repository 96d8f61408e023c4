"""`phylaw train-ae`: train the video autoencoder on a split's videos.

The handler builds an `AETrainConfig` and calls `phylaw.train.ae.train_autoencoder`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from phylaw.commands import add_command

EXAMPLES = """  phylaw data build --scenario uniform --split train --size 5000 --out data/u5k
  phylaw train-ae --data data/u5k --out runs/ae-small --minutes 15
  phylaw train-ae --data data/u30k --out runs/ae-paper --preset ae-paper
  phylaw train-ae --data data/u5k --out runs/ae64 --set resolution_px=64 --set fg_weight=20
  phylaw train-ae --data data/u5k --out runs/ae-small --dry-run

Presets (models/autoencoder.py): ae-small: 4x spatial, 4x temporal, 4 latent channels, 32x32
(trains on a 2-core CPU); ae-paper: 8x spatial, 4x temporal, 4 latent channels, 128x128
(the paper's setting; wants a GPU). Videos of 32 frames are padded to 33 and encoded to 9
latent frames. Re-running the same command resumes; --minutes is the total training time
over all resumes.
--set KEY=VALUE overrides any field of the printed config, e.g. lr=3e-4, clip_frames=17,
model.channels=16,32,64, max_steps=2000."""


def _train_ae(args: argparse.Namespace) -> None:
    from phylaw.train.ae import ae_train_config, train_autoencoder

    overrides = list(args.set)
    if args.minutes is not None:
        overrides.append(f"max_minutes={args.minutes}")
    cfg = ae_train_config(args.preset, overrides)
    if args.dry_run:
        print(json.dumps(dataclasses.asdict(cfg), indent=1))
        return
    path = train_autoencoder(args.data, args.out, cfg, progress=not args.quiet)
    print(f"wrote {path}")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `train-ae` to a `phylaw` subcommand table; returns its parser."""
    p = add_command(
        subparsers,
        "train-ae",
        "train the video autoencoder ((2+1)D KL-VAE) on a split's videos",
        EXAMPLES,
        _train_ae,
    )
    p.add_argument("--data", required=True, type=Path, help="a split directory (phylaw data build)")
    p.add_argument("--out", required=True, type=Path, help="run directory (created or resumed)")
    p.add_argument("--preset", default="ae-small", help="ae-small (default) or ae-paper")
    p.add_argument(
        "--minutes", type=float, default=None, help="training time budget (default: none)"
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field"
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and stop")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p

"""`phylaw train-ae`: train the video autoencoder on a split's videos.

The handler builds an `AETrainConfig` with the machinery `phylaw train` uses (presets, --set,
--minutes, --dry-run) and calls `phylaw.train.ae.train_autoencoder`.
"""

from __future__ import annotations

import argparse
import json

from phylaw.commands import add_command
from phylaw.commands.train import add_run_flags, resolve_config

EXAMPLES = """  phylaw data build --scenario uniform --split train --size 5000 --out data/u5k
  phylaw train-ae --data data/u5k --out runs/ae-small --minutes 15
  phylaw train-ae --data data/u30k --out runs/ae-paper --preset ae-paper
  phylaw train-ae --data data/u5k --out runs/ae64 --set data.resolution_px=64 \\
      --set loss.fg_weight=20
  phylaw train-ae --data data/u5k --out runs/ae-small --dry-run
  phylaw train-ae --out runs/ae-small          # resume with the stored config
  phylaw train --preset paper-S --data data/u30k --out runs/paper-S \\
      --set space.autoencoder=runs/ae-paper

Videos of 32 frames are padded to 33 and encoded to 9 latent frames. Re-running the same
command resumes, with the same weights as an uninterrupted run; --minutes is the total training
time over all resumes (the cosine learning rate anneals over it). Stop with Ctrl-C: the run
checkpoints first.
--set KEY=VALUE overrides any field of the printed config (section.field), e.g.
optim.lr=3e-4, data.clip_frames=17, model.channels=16,32,64, run.steps=2000, loss.kl_weight=0.

presets (--preset; default ae-small):
"""


def _describe(cfg) -> str:
    from phylaw.models.autoencoder import count_params
    from phylaw.train.config_core import config_to_dict

    m, res = cfg.model, cfg.data.resolution_px
    clip = cfg.data.clip_frames or m.num_frames
    return "\n".join(
        [
            json.dumps(config_to_dict(cfg), indent=2),
            f"# autoencoder: {count_params(m) / 1e6:.2f}M parameters, {m.spatial_factor}x "
            f"spatial, {m.temporal_factor}x temporal; a {clip}-frame clip of {res} px -> "
            f"latents (C, T, H, W) = {m.latent_shape(clip, res, res)}",
        ]
    )


def _train_ae(args: argparse.Namespace) -> None:
    cfg = resolve_config(args, "autoencoder")
    if args.dry_run:
        print(_describe(cfg))
        return
    from phylaw.train.ae import train_autoencoder

    result = train_autoencoder(cfg, args.out, progress=not args.quiet)
    print(f"wrote {result.checkpoint}")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `train-ae` to a `phylaw` subcommand table; returns its parser."""
    from phylaw.train.ae_config import autoencoder_preset_help

    p = add_command(
        subparsers,
        "train-ae",
        "train the video autoencoder ((2+1)D KL-VAE) on a split's videos (re-run to resume)",
        EXAMPLES + autoencoder_preset_help(),
        _train_ae,
    )
    add_run_flags(p, "a named config (listed below; default ae-small)")
    return p

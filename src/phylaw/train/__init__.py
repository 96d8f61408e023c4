"""Training: one stack for the DiT and the autoencoder. Typed run configs and presets, one
`--set` syntax, distributed setup (with or without torchrun), EMA, safetensors checkpoints and
one training loop, generic over a task.

    from phylaw.train import get_preset, override, train
    cfg = override(get_preset("cpu-uniform"), ["data.train=data/u-train", "run.max_minutes=30"])
    result = train(cfg, "runs/u")            # re-run to resume; same weights as uninterrupted

    from phylaw.train import autoencoder_preset, train_autoencoder
    cfg = override(autoencoder_preset("ae-small"), ["data.train=data/u-train"])
    result = train_autoencoder(cfg, "runs/ae")   # then --set space.autoencoder=runs/ae

Modules: `config_core` (the shared `optim` and `run` sections; `--set` overrides, JSON, diffs),
`config` (the DiT's config), `presets` (named DiT runs), `ae_config` (the autoencoder's config
and presets), `distributed` (torchrun detection, data order, per-step generators), `ema`,
`checkpoint` (atomic safetensors + JSON state, both kinds), `rundir` (config.json, logs, stop
flag), `task` (what the loop asks of a model family), `loop` (`fit`, and `train` for the DiT),
`dit_task` (the diffusion task), `ae` (the reconstruction task, `train_autoencoder`,
`load_autoencoder`), `generate` (codecs, `Continuation`: the sample function handed to
evaluators). Quick evaluation is a callback from above (`experiments.quickeval`): train never
imports eval.
"""

from phylaw.train.ae import load_autoencoder, train_autoencoder
from phylaw.train.ae_config import AETrainConfig, autoencoder_preset
from phylaw.train.checkpoint import latest_checkpoint, list_checkpoints, resolve_checkpoint
from phylaw.train.config import (
    DataConfig,
    DiffusionConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SpaceConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    network_config,
    override,
    valid_keys,
)
from phylaw.train.dit_task import train
from phylaw.train.generate import Codec, Continuation, autoencoder_codec, codec_for, pixel_codec
from phylaw.train.loop import TrainResult, fit
from phylaw.train.presets import PRESETS, get_preset, preset_help

__all__ = [
    "PRESETS",
    "AETrainConfig",
    "Codec",
    "Continuation",
    "DataConfig",
    "DiffusionConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "SpaceConfig",
    "TrainConfig",
    "TrainResult",
    "autoencoder_codec",
    "autoencoder_preset",
    "codec_for",
    "config_from_dict",
    "config_to_dict",
    "fit",
    "get_preset",
    "latest_checkpoint",
    "list_checkpoints",
    "load_autoencoder",
    "network_config",
    "override",
    "pixel_codec",
    "preset_help",
    "resolve_checkpoint",
    "train",
    "train_autoencoder",
    "valid_keys",
]

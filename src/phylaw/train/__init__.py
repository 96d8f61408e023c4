"""Training: typed run configs and presets, distributed setup (with or without torchrun), EMA,
safetensors checkpoints and the training loop.

    from phylaw.train import get_preset, override, train
    cfg = override(get_preset("cpu-uniform"), ["data.train=data/u-train", "run.max_minutes=30"])
    result = train(cfg, "runs/u")            # re-run to resume; same weights as uninterrupted

Modules: `config` (dataclasses, `--set` overrides), `presets` (named runs), `distributed`
(torchrun detection, launch commands), `ema`, `checkpoint` (atomic safetensors + JSON state),
`generate` (codecs, `Continuation`: the sample function handed to evaluators), `quickeval`
(velocity errors during training), `loop` (`train`).
"""

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
from phylaw.train.generate import Codec, Continuation, autoencoder_codec, codec_for, pixel_codec
from phylaw.train.loop import TrainResult, train
from phylaw.train.presets import PRESETS, get_preset, preset_help

__all__ = [
    "PRESETS",
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
    "codec_for",
    "config_from_dict",
    "config_to_dict",
    "get_preset",
    "latest_checkpoint",
    "list_checkpoints",
    "network_config",
    "override",
    "pixel_codec",
    "preset_help",
    "resolve_checkpoint",
    "train",
    "valid_keys",
]

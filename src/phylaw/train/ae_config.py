"""The autoencoder's training run as typed, frozen dataclasses, and its presets.

An `AETrainConfig` nests five sections: `model` (the network's shape, `models.autoencoder.
AutoencoderConfig`), `data` (which split, at what size, in clips of how many frames), `loss`
(the weights of `train.ae.reconstruction_loss`), and the `optim` and `run` sections every
training run shares (`train.config_core`). Everything else is the DiT's machinery: `--set
section.field=value` overrides (`config_core.override`), the resolved config printed by
`phylaw train-ae --dry-run`, written to RUN/config.json and stored in every checkpoint.

| preset   | model (`models.autoencoder`)          | px  | clip      | batch | lr   | steps |
|----------|---------------------------------------|-----|-----------|-------|------|-------|
| ae-small | 32,64,64: 4x spatial, 4x temporal     | 32  | 9 frames  | 8     | 1e-3 | 100K  |
| ae-paper | 64..256: 8x spatial, 4x temporal      | 128 | the video | 8     | 3e-4 | 50K   |

Both: AdamW with betas (0.9, 0.99), 50 warmup steps, then a cosine decay to 5 % of the peak
over the steps or the time budget (`run.max_minutes`), whichever ends first; no gradient
clipping; `optim.ema_decay` 0, so the weights that are saved and served are the live ones.
`ae-small` trains on a 2-core CPU (`benchmarks/bench_autoencoder.py`); `ae-paper` is the paper's
compression (A.3.1) and wants a GPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from phylaw import PhylawError
from phylaw.models.autoencoder import AE_PRESETS, AutoencoderConfig, autoencoder_config
from phylaw.train.config_core import OptimConfig, RunConfig, positive

__all__ = [
    "AEDataConfig",
    "AELossConfig",
    "AETrainConfig",
    "AUTOENCODER_PRESETS",
    "autoencoder_preset",
    "autoencoder_preset_help",
]


@dataclass(frozen=True)
class AEDataConfig:
    """Which split trains the autoencoder, and the clips it sees."""

    train: str = ""  # training split directory ('phylaw data build'); set by --data
    resolution_px: int = 32  # frames are rendered at this size (the network is convolutional)
    # frames per training clip, 1 + temporal_factor * k, at a random offset of the video padded
    # to 1 + f k frames (a clip's first frame is encoded alone, as a video's is); 0 = the video
    clip_frames: int = 9
    render_threads: int = 2  # background threads rendering batches (data.dataset.RenderLoader)
    stats_videos: int = 32  # videos whose latents set the normalisation before every save

    def __post_init__(self) -> None:
        positive("data.resolution_px", self.resolution_px)
        positive("data.clip_frames", self.clip_frames, zero_ok=True)
        positive("data.render_threads", self.render_threads)
        positive("data.stats_videos", self.stats_videos)


@dataclass(frozen=True)
class AELossConfig:
    """Weights of the reconstruction loss (`train.ae.reconstruction_loss`)."""

    kl_weight: float = 1e-6  # weight of the mean KL per latent element (SD1.5-VAE's 1e-6)
    fg_weight: float = 10.0  # extra L1 weight on non-background pixels (0 = plain L1)
    centroid_weight: float = 0.1  # weight of the object-centroid term, per pixel of error

    def __post_init__(self) -> None:
        for key in ("kl_weight", "fg_weight", "centroid_weight"):
            positive(f"loss.{key}", getattr(self, key), zero_ok=True)


@dataclass(frozen=True)
class AETrainConfig:
    """One training run of the autoencoder. See the sections' field comments for defaults."""

    # the keys that define a run: a run directory or checkpoint differing in them is another run
    FIXED: ClassVar[tuple[str, ...]] = (
        "model.",
        "data.resolution_px",
        "run.seed",
        "run.batch_size",
    )

    preset: str = ""  # the preset this config came from (a record, not used)
    model: AutoencoderConfig = dataclasses.field(default_factory=lambda: AE_PRESETS["ae-small"])
    data: AEDataConfig = dataclasses.field(default_factory=AEDataConfig)
    loss: AELossConfig = dataclasses.field(default_factory=AELossConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        s, f = self.model.spatial_factor, self.model.temporal_factor
        if self.data.resolution_px % s:
            raise PhylawError(
                f"data.resolution_px {self.data.resolution_px} is not divisible by the "
                f"autoencoder's spatial factor {s}"
            )
        if self.data.clip_frames and (self.data.clip_frames - 1) % f:
            raise PhylawError(
                f"data.clip_frames {self.data.clip_frames} must be 1 + {f}k (or 0 for whole videos)"
            )


# ----------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------


def _preset(name: str, resolution_px: int, clip_frames: int, lr: float, steps: int):
    return AETrainConfig(
        preset=name,
        model=autoencoder_config(name),
        data=AEDataConfig(resolution_px=resolution_px, clip_frames=clip_frames),
        optim=OptimConfig(
            lr=lr,
            betas=(0.9, 0.99),
            warmup_steps=50,
            decay="cosine",
            min_lr_ratio=0.05,
            grad_clip=0.0,
            ema_decay=0.0,
        ),
        run=RunConfig(
            steps=steps,
            batch_size=8,
            log_every=10,
            ckpt_every=200,
            keep_last=2,
            sample_every=1000,
            sample_count=4,
        ),
    )


def ae_small() -> AETrainConfig:
    """`ae-small` at 32 px on clips of 9 frames: a 2-core CPU."""
    return _preset("ae-small", resolution_px=32, clip_frames=9, lr=1e-3, steps=100_000)


def ae_paper() -> AETrainConfig:
    """`ae-paper` (the paper's 8x spatial, 4x temporal compression) at 128 px on whole videos."""
    return _preset("ae-paper", resolution_px=128, clip_frames=0, lr=3e-4, steps=50_000)


# name -> (function, one-line description shown by `phylaw train-ae --help`)
AUTOENCODER_PRESETS: dict[str, tuple[Callable[[], AETrainConfig], str]] = {
    "ae-small": (ae_small, "4x spatial, 4x temporal, 4 channels at 32 px: a 2-core CPU"),
    "ae-paper": (ae_paper, "8x spatial, 4x temporal, 4 channels at 128 px (A.3.1): a GPU"),
}


def autoencoder_preset(name: str) -> AETrainConfig:
    """The config of a named autoencoder preset; an unknown name lists the valid ones."""
    if name not in AUTOENCODER_PRESETS:
        valid = ", ".join(sorted(AUTOENCODER_PRESETS))
        raise PhylawError(f"unknown autoencoder preset {name!r}; valid: {valid}")
    return AUTOENCODER_PRESETS[name][0]()


def autoencoder_preset_help() -> str:
    """One line per autoencoder preset, for --help."""
    width = max(map(len, AUTOENCODER_PRESETS))
    return "\n".join(
        f"  {name:<{width}}  {desc}" for name, (_, desc) in AUTOENCODER_PRESETS.items()
    )

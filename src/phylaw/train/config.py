"""The DiT's training run as typed, frozen dataclasses: every default documented next to its field.

A `TrainConfig` nests six sections: `model` (the DiT's shape), `space` (pixels, or an
autoencoder's latents), `diffusion` (Appendix A.2), `data` (which split, at what size), `optim`
(AdamW, warmup, clipping, EMA) and `run` (steps, batch, precision, logging, checkpoints); the
last two are shared with the autoencoder's config (`train.config_core`, which also holds the
machinery). Presets (`train.presets`) are functions returning one; `override(cfg,
["optim.lr=3e-4"])` edits fields with type checks. The resolved config is printed by
`phylaw train --dry-run`, written to RUN/config.json and stored in every checkpoint;
`config_from_dict` reads it back and refuses unknown keys, so a checkpoint from another version
fails with one clear line.

The model's widths are resolved when the config is built: `model.depth`, `hidden_size` and
`num_heads` left at 0 take the values of `model.size` (`models.dit.DIT_SIZES`), and setting
`model.size` with `--set` brings that size's widths (set a width after it to change one).

Derived quantities (the DiT's input size, the condition frames in the diffusion space) are
functions of the config, below the sections.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from phylaw import PhylawError
from phylaw.diffusion import LOSS_WEIGHTINGS, PREDICTIONS, SCHEDULES, TIMESTEP_SAMPLINGS
from phylaw.models.autoencoder import latent_num_frames
from phylaw.models.dit import DIT_SIZES, DiTConfig, dit_config
from phylaw.train import config_core
from phylaw.train.config_core import (
    OptimConfig,
    RunConfig,
    config_diff,
    config_to_dict,
    json_ready,
    micro_batch,
    override,
)
from phylaw.train.config_core import choice as _choice
from phylaw.train.config_core import positive as _positive

__all__ = [
    "DataConfig",
    "DiffusionConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "SAMPLERS",
    "SpaceConfig",
    "TrainConfig",
    "config_diff",
    "config_from_dict",
    "config_to_dict",
    "cond_frames_in_space",
    "frame_indices",
    "json_ready",
    "micro_batch",
    "model_resolution",
    "network_config",
    "override",
    "space_shape",
    "valid_keys",
]

SAMPLERS = ("ddim", "dpmpp-2m", "ddpm")  # names of diffusion.samplers, for samples and eval
SPACES = ("pixel", "latent")


# ----------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """The DiT's shape (`models.dit`); its input size follows from `data` and `space`."""

    # setting `size` resets the widths, which then take the new size's values
    LINKED: ClassVar[dict[str, tuple[str, ...]]] = {"size": ("depth", "hidden_size", "num_heads")}

    size: str = "DiT-S"  # a key of models.dit.DIT_SIZES: (depth, width, heads)
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (pt, ph, pw) spacetime patch, kernel = stride
    depth: int = 0  # transformer blocks; 0: the size's (filled in when built)
    hidden_size: int = 0  # token width; 0: the size's (filled in when built)
    num_heads: int = 0  # attention heads; 0: the size's (filled in when built)
    mlp_ratio: float = 4.0  # MLP width / token width
    qk_norm: bool = True  # RMSNorm on q and k: steadier attention logits in bf16
    shared_adaln: bool = False  # adaLN-single (the paper's Table 1 accounting) vs adaLN-Zero

    def __post_init__(self) -> None:
        _choice(self.size, list(DIT_SIZES), "model.size")
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise PhylawError(f"invalid model.patch_size {self.patch_size}: give pt,ph,pw >= 1")
        widths = dict(zip(("depth", "hidden_size", "num_heads"), DIT_SIZES[self.size], strict=True))
        for key, size_value in widths.items():
            _positive(f"model.{key}", getattr(self, key), zero_ok=True)
            if not getattr(self, key):  # resolve: the printed config shows the real widths
                object.__setattr__(self, key, size_value)
        _positive("model.mlp_ratio", self.mlp_ratio)


@dataclass(frozen=True)
class SpaceConfig:
    """Where diffusion runs: on pixels in [-1, 1], or on the latents of an autoencoder.

    The latent path takes a `Codec` given to `train` (`generate.autoencoder_codec` wraps a
    `models.autoencoder.Autoencoder`). Time is compressed causally, as that autoencoder does:
    T frames -> 1 + ceil((T - 1) / temporal_factor) latent frames, the first encoding frame 0
    alone; the latent shape is (latent_channels, that, H / spatial_factor, W / spatial_factor).
    """

    kind: str = "pixel"  # 'pixel' or 'latent'
    latent_channels: int = 4  # C of the latent (latent only)
    temporal_factor: int = 4  # frames per latent frame (latent only)
    spatial_factor: int = 8  # pixels per latent pixel along H and W (latent only)
    autoencoder: str = ""  # the autoencoder run ('phylaw train-ae --out DIR'; latent only)

    def __post_init__(self) -> None:
        _choice(self.kind, SPACES, "space.kind")
        for key in ("latent_channels", "temporal_factor", "spatial_factor"):
            _positive(f"space.{key}", getattr(self, key))


@dataclass(frozen=True)
class DiffusionConfig:
    """The process of Appendix A.2 (`phylaw.diffusion`) and how samples are drawn."""

    schedule: str = "scaled_linear"  # betas: a key of diffusion.SCHEDULES
    num_steps: int = 1000  # training steps of the process (t = 0 .. S-1)
    zero_terminal_snr: bool = True  # Lin et al. 2024: the last step is pure noise (A.2)
    prediction: str = "v"  # 'v' (paper, latents), 'x0' (wide pixel patches) or 'eps'
    cond_frames: int = 3  # first video frames given as the condition (Sec. 3.1)
    sampler: str = "ddim"  # for samples during training and `phylaw sample`
    sample_steps: int = 50  # denoiser calls per sample
    # which training steps the loss sees: 'uniform' (eq. 2) or 'logit-normal' (mean, std over
    # t / S; diffusion.weighting), and how it weights them: 'none' (eq. 2) or 'min-snr'
    timesteps: str = "uniform"
    logit_mean: float = 0.0  # logit-normal mean (> 0 leans towards high noise)
    logit_std: float = 1.0  # logit-normal standard deviation
    loss_weighting: str = "none"  # 'none' or 'min-snr'
    min_snr_gamma: float = 5.0  # min-snr's gamma

    def __post_init__(self) -> None:
        _choice(self.schedule, list(SCHEDULES), "diffusion.schedule")
        _choice(self.prediction, PREDICTIONS, "diffusion.prediction")
        _choice(self.sampler, SAMPLERS, "diffusion.sampler")
        _choice(self.timesteps, TIMESTEP_SAMPLINGS, "diffusion.timesteps")
        _choice(self.loss_weighting, LOSS_WEIGHTINGS, "diffusion.loss_weighting")
        _positive("diffusion.logit_std", self.logit_std)
        _positive("diffusion.min_snr_gamma", self.min_snr_gamma)
        if self.num_steps < 2:
            raise PhylawError(f"invalid diffusion.num_steps {self.num_steps}: must be >= 2")
        _positive("diffusion.cond_frames", self.cond_frames, zero_ok=True)
        if not 1 <= self.sample_steps <= self.num_steps:
            raise PhylawError(
                f"invalid diffusion.sample_steps {self.sample_steps}: must be in "
                f"[1, {self.num_steps}]"
            )


@dataclass(frozen=True)
class DataConfig:
    """Which split trains the model, and the video clip the model sees."""

    train: str = ""  # training split directory ('phylaw data build'); set by --data
    eval_id: str = ""  # in-distribution split for sample GIFs and quick evaluation; "" = none
    eval_ood: str = ""  # out-of-distribution split, likewise; "" = none
    resolution_px: int = 128  # frames are rendered at this size
    downsample: int = 1  # then area-averaged by this factor (model sees resolution_px / it)
    frames: int = 32  # frames per clip: the first frames * frame_stride, every frame_stride-th
    frame_stride: int = 1  # keep every k-th rendered frame
    render_threads: int = 2  # background threads rendering batches (data.dataset.RenderLoader)
    hflip: float = 0.0  # probability of mirroring a training video left-right (Sec. 5.2 Set-2)

    def __post_init__(self) -> None:
        for key in ("resolution_px", "downsample", "frames", "frame_stride", "render_threads"):
            _positive(f"data.{key}", getattr(self, key))
        if not 0.0 <= self.hflip <= 1.0:
            raise PhylawError(f"invalid data.hflip {self.hflip}: give a probability in [0, 1]")
        if self.resolution_px % self.downsample:
            raise PhylawError(
                f"data.resolution_px {self.resolution_px} is not divisible by data.downsample "
                f"{self.downsample}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """One training run of the DiT. See the sections' field comments for every default."""

    # the keys that define a run: a run directory or checkpoint differing in them is another run
    FIXED: ClassVar[tuple[str, ...]] = (
        "model.",
        "space.kind",
        "space.latent_channels",
        "space.temporal_factor",
        "space.spatial_factor",
        "diffusion.schedule",
        "diffusion.num_steps",
        "diffusion.zero_terminal_snr",
        "diffusion.prediction",
        "diffusion.cond_frames",
        "data.resolution_px",
        "data.downsample",
        "data.frames",
        "data.frame_stride",
        "data.hflip",
        "run.seed",
        "run.batch_size",
    )

    preset: str = ""  # the preset this config came from (a record, not used)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    space: SpaceConfig = dataclasses.field(default_factory=SpaceConfig)
    diffusion: DiffusionConfig = dataclasses.field(default_factory=DiffusionConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if self.diffusion.cond_frames >= self.data.frames:
            raise PhylawError(
                f"diffusion.cond_frames {self.diffusion.cond_frames} leaves nothing to generate "
                f"in data.frames {self.data.frames}"
            )
        if self.space.kind == "latent":
            sf = self.space.spatial_factor
            if model_resolution(self) % sf:
                raise PhylawError(
                    f"the latent path needs a resolution divisible by space.spatial_factor {sf}; "
                    f"got {model_resolution(self)} px"
                )
        try:
            network_config(self)
        except ValueError as e:
            raise PhylawError(f"model does not fit the data: {e}") from None


# ----------------------------------------------------------------------------------------------
# Derived quantities
# ----------------------------------------------------------------------------------------------


def model_resolution(cfg: TrainConfig) -> int:
    """Side in pixels of the frames given to the model (or its encoder)."""
    return cfg.data.resolution_px // cfg.data.downsample


def frame_indices(cfg: TrainConfig) -> list[int]:
    """Indices of the split's frames that form a clip: [0, s, 2s, ...], `data.frames` of them."""
    return [i * cfg.data.frame_stride for i in range(cfg.data.frames)]


def space_shape(cfg: TrainConfig) -> tuple[int, int, int, int]:
    """(C, T, H, W) of one video in the diffusion space (pixels or latents)."""
    res, t = model_resolution(cfg), cfg.data.frames
    if cfg.space.kind == "pixel":
        return (3, t, res, res)
    sf, tf = cfg.space.spatial_factor, cfg.space.temporal_factor
    return (cfg.space.latent_channels, latent_num_frames(t, tf), res // sf, res // sf)


def cond_frames_in_space(cfg: TrainConfig) -> int:
    """Condition frames of the diffusion space (those the mask marks and the loss skips):
    `cond_frames` in pixels; in latents those made of condition frames only,
    1 + (c - 1) // temporal_factor (latent 0 for c = 3; `models.autoencoder.latent_condition`)."""
    c = cfg.diffusion.cond_frames
    if cfg.space.kind == "pixel" or c == 0:
        return c
    return 1 + (c - 1) // cfg.space.temporal_factor


def network_config(cfg: TrainConfig) -> DiTConfig:
    """The `DiTConfig` of the run: the named size with overrides, sized to the space."""
    m = cfg.model
    c, t, h, w = space_shape(cfg)
    return dit_config(
        m.size,
        in_channels=c,
        input_size=(t, h, w),
        patch_size=tuple(m.patch_size),
        mlp_ratio=m.mlp_ratio,
        qk_norm=m.qk_norm,
        shared_adaln=m.shared_adaln,
        depth=m.depth,
        hidden_size=m.hidden_size,
        num_heads=m.num_heads,
    )


def valid_keys() -> list[str]:
    """Every settable key of a `TrainConfig`, 'section.field' (and top-level 'preset')."""
    return config_core.valid_keys(TrainConfig)


def config_from_dict(data: dict[str, Any], where: str = "config") -> TrainConfig:
    """Inverse of `config_to_dict`; refuses unknown keys and wrong types with one line."""
    return config_core.dict_to_config(TrainConfig, data, where)

"""The training run as typed, frozen dataclasses: every default documented next to its field.

A `TrainConfig` nests six sections: `model` (the DiT's shape), `space` (pixels, or an
autoencoder's latents), `diffusion` (Appendix A.2), `data` (which split, at what size), `optim`
(AdamW, warmup, clipping, EMA) and `run` (steps, batch, precision, logging, checkpoints).
Presets (`train.presets`) are functions returning one; `override(cfg, ["optim.lr=3e-4"])`
edits fields with type checks. The resolved config is printed by `phylaw train --dry-run`,
written to RUN/config.json and stored in every checkpoint; `config_from_dict` reads it back
and refuses unknown keys, so a checkpoint from another version fails with one clear line.

Derived quantities (the DiT's input size, the condition frames in the diffusion space, the
per-rank micro-batch) are functions of the config, below the sections.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

from phylaw import PhylawError
from phylaw.diffusion import PREDICTIONS, SCHEDULES
from phylaw.models.autoencoder import latent_num_frames
from phylaw.models.dit import DIT_SIZES, DiTConfig, dit_config

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
    "micro_batch",
    "model_resolution",
    "network_config",
    "override",
    "space_shape",
    "valid_keys",
]

SAMPLERS = ("ddim", "dpmpp-2m", "ddpm")  # names of diffusion.samplers, for samples and eval
PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 autocast on CUDA, fp32 on CPU (measured)
SPACES = ("pixel", "latent")
LR_DECAYS = ("constant", "cosine")


def _choice(value: str, valid: tuple[str, ...] | list[str], key: str) -> None:
    if value not in valid:
        raise PhylawError(f"invalid {key} {value!r}; choose one of: {', '.join(valid)}")


def _positive(key: str, value: float, zero_ok: bool = False) -> None:
    if value < 0 or (value == 0 and not zero_ok):
        raise PhylawError(f"invalid {key} {value!r}: must be {'>= 0' if zero_ok else '> 0'}")


# ----------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """The DiT's shape (`models.dit`); its input size follows from `data` and `space`."""

    size: str = "DiT-S"  # a key of models.dit.DIT_SIZES: (depth, width, heads)
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (pt, ph, pw) spacetime patch, kernel = stride
    depth: int = 0  # transformer blocks; 0: the size's
    hidden_size: int = 0  # token width; 0: the size's
    num_heads: int = 0  # attention heads; 0: the size's
    mlp_ratio: float = 4.0  # MLP width / token width
    qk_norm: bool = True  # RMSNorm on q and k: steadier attention logits in bf16
    shared_adaln: bool = False  # adaLN-single (the paper's Table 1 accounting) vs adaLN-Zero

    def __post_init__(self) -> None:
        _choice(self.size, list(DIT_SIZES), "model.size")
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise PhylawError(f"invalid model.patch_size {self.patch_size}: give pt,ph,pw >= 1")
        for key in ("depth", "hidden_size", "num_heads"):
            _positive(f"model.{key}", getattr(self, key), zero_ok=True)
        _positive("model.mlp_ratio", self.mlp_ratio)


@dataclass(frozen=True)
class SpaceConfig:
    """Where diffusion runs: on pixels in [-1, 1], or on the latents of an autoencoder.

    The latent path takes a `Codec` given to `train` (`loop.autoencoder_codec` wraps a
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

    def __post_init__(self) -> None:
        _choice(self.schedule, list(SCHEDULES), "diffusion.schedule")
        _choice(self.prediction, PREDICTIONS, "diffusion.prediction")
        _choice(self.sampler, SAMPLERS, "diffusion.sampler")
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

    def __post_init__(self) -> None:
        for key in ("resolution_px", "downsample", "frames", "frame_stride", "render_threads"):
            _positive(f"data.{key}", getattr(self, key))
        if self.resolution_px % self.downsample:
            raise PhylawError(
                f"data.resolution_px {self.resolution_px} is not divisible by data.downsample "
                f"{self.downsample}"
            )


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup, optional cosine decay, gradient clipping and an EMA."""

    lr: float = 1e-4  # peak learning rate (paper: 1e-4)
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    eps: float = 1e-8  # AdamW epsilon
    weight_decay: float = 0.0  # decoupled weight decay (DiT: 0)
    warmup_steps: int = 1000  # linear warmup from 0 to lr
    decay: str = "constant"  # after warmup: 'constant' or 'cosine' (to min_lr_ratio * lr)
    min_lr_ratio: float = 0.1  # final lr / lr of the cosine decay
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping
    ema_decay: float = 0.9999  # EMA of the weights, warmed up as min(d, (1 + n) / (10 + n))

    def __post_init__(self) -> None:
        _positive("optim.lr", self.lr)
        _positive("optim.warmup_steps", self.warmup_steps, zero_ok=True)
        _positive("optim.grad_clip", self.grad_clip, zero_ok=True)
        _positive("optim.weight_decay", self.weight_decay, zero_ok=True)
        _choice(self.decay, LR_DECAYS, "optim.decay")
        if not 0 <= self.ema_decay < 1:
            raise PhylawError(f"invalid optim.ema_decay {self.ema_decay}: must be in [0, 1)")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise PhylawError(f"invalid optim.betas {self.betas}: give two values in [0, 1)")


@dataclass(frozen=True)
class RunConfig:
    """Length, batch, numerics, logging and checkpoints. May change when a run resumes, except
    `seed` and `batch_size`, which fix the data order and the noise."""

    steps: int = 100_000  # optimizer steps (paper: 100K)
    batch_size: int = 256  # global batch: all ranks and accumulation micro-steps (paper: 256)
    grad_accum: int = 1  # micro-steps per optimizer step on each rank
    seed: int = 0  # data order, noise, init: step k's batch is a function of (seed, k)
    precision: str = "auto"  # 'auto' (bf16 autocast on CUDA, fp32 on CPU), 'bf16', 'fp32'
    compile: bool = False  # torch.compile the network
    device: str = "auto"  # 'auto' (cuda:LOCAL_RANK if present, else cpu), 'cpu', 'cuda'
    threads: int = 0  # torch CPU threads; 0 = torch's default
    log_every: int = 50  # steps between logged scalars (loss, lr, grad norm, samples/s)
    ckpt_every: int = 1000  # steps between checkpoints (one is also written at the end)
    keep_last: int = 3  # checkpoints kept
    sample_every: int = 5000  # steps between sample GIFs; 0 = none
    sample_count: int = 4  # videos per sample GIF
    eval_every: int = 0  # steps between quick evaluations (data.eval_id/eval_ood); 0 = none
    eval_videos: int = 64  # videos per evaluation split in a quick evaluation
    # stop cleanly (with a checkpoint) after this much time, summed over resumes; the cosine
    # learning rate then anneals over the budget as well as over `steps`; 0 = none
    max_minutes: float = 0.0

    def __post_init__(self) -> None:
        for key in (
            "steps",
            "batch_size",
            "grad_accum",
            "log_every",
            "ckpt_every",
            "keep_last",
            "eval_videos",
        ):
            _positive(f"run.{key}", getattr(self, key))
        for key in ("threads", "sample_every", "sample_count", "eval_every", "max_minutes"):
            _positive(f"run.{key}", getattr(self, key), zero_ok=True)
        _choice(self.precision, PRECISIONS, "run.precision")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise PhylawError(f"invalid run.device {self.device!r}; use auto, cpu or cuda")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. See the sections' field comments for every default."""

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
    overrides: dict[str, Any] = dict(
        in_channels=c,
        input_size=(t, h, w),
        patch_size=tuple(m.patch_size),
        mlp_ratio=m.mlp_ratio,
        qk_norm=m.qk_norm,
        shared_adaln=m.shared_adaln,
    )
    for key in ("depth", "hidden_size", "num_heads"):
        if getattr(m, key):
            overrides[key] = getattr(m, key)
    return dit_config(m.size, **overrides)


def micro_batch(cfg: TrainConfig, world_size: int) -> int:
    """Videos per rank per micro-step: batch_size / (world_size * grad_accum), exactly."""
    parts = world_size * cfg.run.grad_accum
    if cfg.run.batch_size % parts:
        raise PhylawError(
            f"run.batch_size {cfg.run.batch_size} is not divisible by {world_size} rank(s) x "
            f"run.grad_accum {cfg.run.grad_accum}; pick a multiple of {parts}"
        )
    return cfg.run.batch_size // parts


# ----------------------------------------------------------------------------------------------
# Overrides, serialisation, comparison
# ----------------------------------------------------------------------------------------------


def _sections(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def valid_keys() -> list[str]:
    """Every settable key, 'section.field' (and top-level 'preset')."""
    keys = []
    for f in fields(TrainConfig):
        hint = _sections(TrainConfig)[f.name]
        if is_dataclass(hint):
            keys += [f"{f.name}.{g.name}" for g in fields(hint)]
        else:
            keys.append(f.name)
    return keys


def _parse(text: str, hint: Any, key: str) -> Any:
    """Parse `text` as a value of type `hint` (int, float, bool, str, tuple[...])."""
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if hint is int:
            value = float(text)
            if value != int(value):
                raise ValueError
            return int(value)
        if hint is float:
            return float(text)
        if hint is str:
            return text
        if origin is tuple:
            parts = [p for p in text.strip().strip("()[]").replace(" ", "").split(",") if p]
            args = typing.get_args(hint)
            if len(parts) != len(args):
                raise ValueError
            return tuple(_parse(p, a, key) for p, a in zip(parts, args, strict=True))
    except ValueError:
        pass
    expected = {bool: "true or false", int: "an integer", float: "a number"}.get(hint)
    if origin is tuple:
        n = len(typing.get_args(hint))
        expected = f"{n} comma-separated values, e.g. {','.join(['1'] * n)}"
    raise PhylawError(f"invalid value {text!r} for {key}: expected {expected or hint}")


def override(cfg: TrainConfig, assignments: list[str]) -> TrainConfig:
    """Apply 'section.field=value' assignments (as `--set`), each type-checked.

    An unknown key or a value of the wrong type raises PhylawError listing what is valid.
    """
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise PhylawError(f"invalid --set {item!r}: write KEY=VALUE, e.g. optim.lr=3e-4")
        section, _, name = key.partition(".")
        hints = _sections(TrainConfig)
        if section not in hints or (is_dataclass(hints[section]) != bool(name)):
            raise PhylawError(f"unknown config key {key!r}; valid keys: {', '.join(valid_keys())}")
        if not name:
            cfg = replace(cfg, **{section: _parse(text, hints[section], key)})
            continue
        sub_hints = _sections(hints[section])
        if name not in sub_hints:
            valid = ", ".join(f"{section}.{n}" for n in sub_hints)
            raise PhylawError(f"unknown config key {key!r}; valid keys of {section}: {valid}")
        value = _parse(text, sub_hints[name], key)
        cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{name: value})})
    return cfg


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The config as plain JSON-able data (tuples become lists)."""
    return json_ready(dataclasses.asdict(cfg))


def json_ready(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    return obj


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise PhylawError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = _sections(cls)
    unknown = set(data) - set(hints)
    if unknown:
        raise PhylawError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} (written by another version?)"
        )
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{where}.{name}")
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            kwargs[name] = tuple(value)
        elif (
            isinstance(hint, type)
            and not isinstance(value, hint)
            and not (hint is float and isinstance(value, int) and not isinstance(value, bool))
        ):
            raise PhylawError(f"{where}.{name}: expected {hint.__name__}, got {value!r}")
        else:
            kwargs[name] = float(value) if hint is float else value
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any], where: str = "config") -> TrainConfig:
    """Inverse of `config_to_dict`; refuses unknown keys and wrong types with one line."""
    return _build(TrainConfig, data, where)


def config_diff(
    a: TrainConfig, b: TrainConfig, sections: tuple[str, ...] | None = None
) -> list[str]:
    """'key: a -> b' for every field that differs (only in `sections` when given)."""
    da, db = config_to_dict(a), config_to_dict(b)
    out = []
    for section in da:
        if sections is not None and section not in sections:
            continue
        va, vb = da[section], db[section]
        if isinstance(va, dict):
            out += [f"{section}.{k}: {va[k]!r} -> {vb[k]!r}" for k in va if va[k] != vb[k]]
        elif va != vb:
            out.append(f"{section}: {va!r} -> {vb!r}")
    return out

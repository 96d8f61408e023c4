"""Training the video autoencoder on a split's videos (`phylaw train-ae`).

The paper's (2+1)D-VAE was pretrained on internet images and videos (A.3.1); no pretrained
weights can be downloaded here, so phylaw trains its own on the scenario's own videos. The loss
of one batch (x in [-1, 1], x_hat the decoding of a posterior sample):

    fg   = 1 - min over RGB of the pixel in [0, 1]       0 on the white background, 1 on a ball
    w    = 1 + fg_weight * max(fg(x), fg(x_hat))         up-weights objects and ghost objects
    loss = sum(w |x_hat - x|) / sum(w) + kl_weight * mean KL(q(z|x) || N(0, I))

    loss += centroid_weight * mean_frames,channels |centroid(dark(x_hat)) - centroid(dark(x))|_px

Balls cover a few per cent of the pixels; without the weight a short run learns the background
and blurs the balls away. The centroid term (dark = (1 - x) / 2 per RGB channel, so red and blue
balls fall in different channels) asks directly for what the evaluation reads from a video, the
objects' positions. Measured at ~120 steps of `ae-small` (`benchmarks/bench_autoencoder.py`,
one run each): the per-frame velocity error of reconstructions fell from 1.09 to 0.91; the
Table-3 (mean-velocity) error was 0.035 without it and 0.029 / 0.037 with it, i.e. unresolved.

The KL weight is tiny (SD1.5-VAE's 1e-6): it keeps latents bounded without costing
reconstruction. Training clips are `clip_frames` = 1 + 4k consecutive frames at a random offset
of the padded video: the network is convolutional and causal, so a clip's first frame is encoded
alone as a video's first frame is.

Checkpoints: `OUT/ae.safetensors` holds the weights, the AdamW state and, in its metadata, the
resolved config and the training state (step, elapsed time); it is written to a temporary file
and renamed, so it is always whole. `OUT/ae-state.json` is a readable copy of the same metadata,
`OUT/ae-log.jsonl` one line per logged step. Re-running the same command resumes (weights,
optimizer, step, time already spent; the data order restarts from a step-derived seed). Before
every save the per-channel latent mean and std are re-estimated (`Autoencoder.normalize`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from tqdm.auto import tqdm

from phylaw import PhylawError
from phylaw.data.dataset import VideoDataset, make_loader
from phylaw.models.autoencoder import (
    AE_PRESETS,
    Autoencoder,
    AutoencoderConfig,
    autoencoder_config,
    pad_frames,
)

__all__ = [
    "AETrainConfig",
    "ae_train_config",
    "apply_overrides",
    "load_autoencoder",
    "reconstruction_loss",
    "save_checkpoint",
    "to_model_video",
    "train_autoencoder",
]

CHECKPOINT = "ae.safetensors"
STATE = "ae-state.json"
LOG = "ae-log.jsonl"
FORMAT = "phylaw-autoencoder"


@dataclass
class AETrainConfig:
    """Everything a `train-ae` run depends on; written into every checkpoint."""

    model: AutoencoderConfig = field(default_factory=lambda: AE_PRESETS["ae-small"])
    preset: str = "ae-small"  # the name `model` came from (informational)
    resolution_px: int = 0  # frame size of the training videos; 0 = model.resolution_px
    clip_frames: int = 9  # frames per training clip, 1 + 4k; 0 = the whole padded video
    batch_size: int = 8  # clips per step
    lr: float = 1e-3  # AdamW peak learning rate
    min_lr_frac: float = 0.05  # cosine decay to this fraction of lr at the end of the budget
    warmup_steps: int = 50  # linear warm-up
    weight_decay: float = 0.0  # AdamW weight decay
    kl_weight: float = 1e-6  # weight of the mean KL per latent element
    fg_weight: float = 10.0  # extra loss weight on non-background pixels (0 = plain L1)
    centroid_weight: float = 0.1  # weight of the object-centroid term, per pixel of error
    max_steps: int = 100_000  # stop after this many steps ...
    max_minutes: float = 0.0  # ... or this much training time over all resumes (0 = no limit)
    save_every_steps: int = 200  # checkpoint period
    log_every_steps: int = 10  # ae-log.jsonl period
    seed: int = 0  # data order and initialisation
    threads: int = 0  # torch CPU threads; 0 = torch's default
    device: str = "auto"  # "auto": cuda when available, else cpu
    bf16: bool = True  # bf16 autocast on cuda (ignored on cpu, where it is slower)


# Per-preset training defaults (the rest from AETrainConfig).
_TRAIN_DEFAULTS: dict[str, dict[str, object]] = {
    "ae-small": {"clip_frames": 9, "batch_size": 8, "lr": 1e-3},
    "ae-paper": {"clip_frames": 0, "batch_size": 8, "lr": 3e-4, "max_steps": 50_000},
}


def ae_train_config(
    preset: str = "ae-small", overrides: typing.Sequence[str] = ()
) -> AETrainConfig:
    """The training config of a preset, with `k=v` overrides (`model.channels=16,32,64`)."""
    try:
        model = autoencoder_config(preset)
    except KeyError as e:
        raise PhylawError(e.args[0]) from None
    cfg = AETrainConfig(model=model, preset=preset, **_TRAIN_DEFAULTS.get(preset, {}))
    return apply_overrides(cfg, overrides)


def _parse_value(text: str, kind: typing.Any, key: str) -> object:
    origin = typing.get_origin(kind)
    if origin is tuple:
        (item, *_) = typing.get_args(kind)
        return tuple(_parse_value(t.strip(), item, key) for t in text.split(",") if t.strip())
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise PhylawError(f"--set {key}: expected true or false, got {text!r}")
    try:
        return kind(text)
    except ValueError:
        raise PhylawError(f"--set {key}: expected {kind.__name__}, got {text!r}") from None


def _set_field(obj: typing.Any, names: list[str], text: str, key: str) -> typing.Any:
    hints = typing.get_type_hints(type(obj))
    if names[0] not in hints:
        valid = ", ".join(f.name for f in dataclasses.fields(obj))
        raise PhylawError(f"--set: unknown key {key!r}; valid at this level: {valid}")
    if len(names) > 1:
        inner = _set_field(getattr(obj, names[0]), names[1:], text, key)
        return dataclasses.replace(obj, **{names[0]: inner})
    try:
        return dataclasses.replace(obj, **{names[0]: _parse_value(text, hints[names[0]], key)})
    except ValueError as e:
        raise PhylawError(f"--set {key}: {e}") from None


def apply_overrides(cfg: typing.Any, overrides: typing.Sequence[str]) -> typing.Any:
    """A copy of the dataclass `cfg` with `a.b=v` overrides applied, each type-checked."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise PhylawError(f"--set {item!r}: expected KEY=VALUE")
        cfg = _set_field(cfg, key.strip().split("."), text.strip(), key.strip())
    return cfg


#################################################################################
#                                  The loss                                     #
#################################################################################


def to_model_video(video: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] (a `VideoDataset` batch) -> float [B, 3, T, H, W] in [-1, 1]."""
    return video.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def _foreground(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, T, H, W] in [-1, 1] -> [B, 1, T, H, W]: 0 on white, 1 on a saturated colour."""
    return (1.0 - (x.amin(dim=1, keepdim=True) + 1.0) / 2.0).clamp(0.0, 1.0)


def centroid_error(
    recon: torch.Tensor, target: torch.Tensor, min_mass: float = 1.0
) -> torch.Tensor:
    """Mean distance in pixels between the centroids of each channel's darkness, per frame.

    Darkness = (1 - x) / 2 clipped to [0, 1] (0 on the white background): a red ball is dark in
    G and B, a blue one in R and G. recon, target: [B, 3, T, H, W]. Frames and channels whose
    target darkness sums to less than `min_mass` pixels are left out. Returns a scalar.
    """
    h, w = target.shape[-2:]
    rows = torch.arange(h, dtype=recon.dtype, device=recon.device)
    cols = torch.arange(w, dtype=recon.dtype, device=recon.device)

    def centroid(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = ((1.0 - x) / 2.0).clamp(0.0, 1.0)  # [B, 3, T, H, W]
        mass = d.sum((-1, -2)).clamp_min(1e-3)  # [B, 3, T]
        cy = (d.sum(-1) * rows).sum(-1) / mass
        cx = (d.sum(-2) * cols).sum(-1) / mass
        return torch.stack([cx, cy], -1), mass  # [B, 3, T, 2], [B, 3, T]

    c_rec, _ = centroid(recon)
    c_tgt, mass = centroid(target)
    keep = (mass >= min_mass).to(recon.dtype)  # [B, 3, T]
    dist = (c_rec - c_tgt).norm(dim=-1)  # [B, 3, T]
    return (dist * keep).sum() / keep.sum().clamp_min(1.0)


def reconstruction_loss(
    recon: torch.Tensor,
    target: torch.Tensor,
    kl: torch.Tensor,
    fg_weight: float,
    kl_weight: float,
    centroid_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Foreground-weighted L1 + weighted mean KL (+ centroid term; module docstring).

    recon, target: [B, 3, T, H, W]; kl: per-element KL [B, z, T', H', W']. Returns the scalar loss
    and its parts as floats.
    """
    recon = recon.float()
    with torch.no_grad():
        w = 1.0 + fg_weight * torch.maximum(_foreground(target), _foreground(recon))  # [B,1,T,H,W]
    rec = (w * (recon - target).abs()).sum() / (w.sum() * recon.shape[1])
    kl_mean = kl.float().mean()
    loss = rec + kl_weight * kl_mean
    parts = {"rec": rec.item(), "kl": kl_mean.item()}
    if centroid_weight > 0:
        cen = centroid_error(recon, target)
        loss = loss + centroid_weight * cen
        parts["centroid_px"] = cen.item()
    return loss, {"loss": loss.item(), **parts}


def _clips(video: torch.Tensor, frames: int, generator: torch.Generator) -> torch.Tensor:
    """Random clips of `frames` frames: [B, C, T, H, W] -> [B, C, frames, H, W]."""
    b, t = video.shape[0], video.shape[2]
    if frames <= 0 or frames >= t:
        return video
    start = torch.randint(0, t - frames + 1, (b,), generator=generator)
    idx = start[:, None] + torch.arange(frames)  # [B, frames]
    return torch.stack([video[i, :, idx[i]] for i in range(b)])


#################################################################################
#                                 Checkpoints                                   #
#################################################################################


def _config_dict(cfg: AETrainConfig) -> dict:
    return dataclasses.asdict(cfg)


def _config_from_dict(d: dict) -> AETrainConfig:
    model = AutoencoderConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in d["model"].items()}
    )
    return AETrainConfig(**{**d, "model": model})


def _atomic(path: Path, write: typing.Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(
    out: Path, model: Autoencoder, opt: torch.optim.Optimizer, cfg: AETrainConfig, state: dict
) -> None:
    """Write weights, optimizer state and metadata atomically (no pickle anywhere)."""
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    opt_sd = opt.state_dict()
    for i, s in opt_sd["state"].items():
        for k, v in s.items():
            tensors[f"optim.{i}.{k}"] = torch.as_tensor(v).contiguous().cpu()
    meta = {
        "format": FORMAT,
        "config": _config_dict(cfg),
        "state": state,
        "param_groups": opt_sd["param_groups"],
    }
    _atomic(
        out / CHECKPOINT,
        lambda p: save_file(tensors, str(p), metadata={"phylaw": json.dumps(meta)}),
    )
    text = json.dumps({k: meta[k] for k in ("format", "config", "state")}, indent=1, sort_keys=True)
    _atomic(out / STATE, lambda p: p.write_text(text + "\n"))


def _read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("phylaw", "{}"))
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise PhylawError(f"cannot read autoencoder checkpoint {path}: {e}") from None
    if meta.get("format") != FORMAT:
        raise PhylawError(f"{path} is not a phylaw autoencoder checkpoint")
    return meta, tensors


def load_autoencoder(path: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """The trained autoencoder in `path` (a run directory or its ae.safetensors), in eval mode."""
    path = Path(path)
    meta, tensors = _read_checkpoint(path / CHECKPOINT if path.is_dir() else path)
    model = Autoencoder(_config_from_dict(meta["config"]).model)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return model.to(device).eval()


#################################################################################
#                                 The training loop                             #
#################################################################################


@torch.no_grad()
def _latent_stats(model: Autoencoder, batches: list[torch.Tensor]) -> None:
    """Set `latent_mean` / `latent_std` from the posterior means of a few whole videos."""
    was_training = model.training
    model.eval()
    f = model.cfg.temporal_factor
    z = torch.cat(
        [model.encode(pad_frames(x, f)).mean.transpose(0, 1).flatten(1) for x in batches], 1
    )
    model.latent_mean.copy_(z.mean(1))
    model.latent_std.copy_(z.std(1).clamp_min(1e-6))
    model.train(was_training)


def _lr(cfg: AETrainConfig, step: int, elapsed_s: float) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = step / cfg.max_steps
    if cfg.max_minutes > 0:
        progress = max(progress, elapsed_s / (60 * cfg.max_minutes))
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * cosine)


def _batches(
    dataset: VideoDataset, cfg: AETrainConfig, gen: torch.Generator
) -> typing.Iterator[torch.Tensor]:
    """Endless training clips [B, 3, clip_frames, H, W] in [-1, 1], reshuffled every epoch."""
    f = cfg.model.temporal_factor
    while True:
        seed = int(torch.randint(0, 2**31, (1,), generator=gen))
        for batch in make_loader(dataset, cfg.batch_size, seed=seed, drop_last=True):
            video = pad_frames(to_model_video(batch["video"]), f)  # [B, 3, 1 + 4k, H, W]
            yield _clips(video, cfg.clip_frames, gen)


def _train_step(
    model: Autoencoder,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    cfg: AETrainConfig,
    lr: float,
    amp: bool,
) -> dict[str, float]:
    """One AdamW step on the clips x [B, 3, T, H, W]; returns the loss parts."""
    for group in opt.param_groups:
        group["lr"] = lr
    with torch.autocast(x.device.type, torch.bfloat16, enabled=amp):
        recon, post = model(x)
    loss, parts = reconstruction_loss(
        recon, x, post.kl(), cfg.fg_weight, cfg.kl_weight, cfg.centroid_weight
    )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return parts


def _resume(
    path: Path, cfg: AETrainConfig, res: int, model: Autoencoder, opt: torch.optim.Optimizer
) -> dict:
    """Load weights and optimizer state of the run at `path`; returns its training state."""
    meta, tensors = _read_checkpoint(path)
    saved = _config_from_dict(meta["config"])
    if (saved.model, saved.resolution_px or saved.model.resolution_px) != (cfg.model, res):
        raise PhylawError(
            f"{path.parent} holds a run of a different model or resolution; choose another --out"
        )
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, name = k.split(".", 2)
            opt_state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
    return meta["state"]


def train_autoencoder(
    data: str | Path, out: str | Path, cfg: AETrainConfig, progress: bool = True
) -> Path:
    """Train (or resume) an autoencoder on the split in `data`; returns the checkpoint path.

    Runs until `cfg.max_steps` or `cfg.max_minutes` of training (summed over resumes).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = torch.device(
        "cuda"
        if cfg.device == "auto" and torch.cuda.is_available()
        else ("cpu" if cfg.device == "auto" else cfg.device)
    )
    res = cfg.resolution_px or cfg.model.resolution_px
    if res % cfg.model.spatial_factor:
        raise PhylawError(
            f"resolution {res} is not divisible by the spatial factor {cfg.model.spatial_factor}"
        )
    f = cfg.model.temporal_factor
    if cfg.clip_frames and (cfg.clip_frames - 1) % f:
        raise PhylawError(f"clip_frames {cfg.clip_frames} must be 1 + {f}k (or 0 for whole videos)")
    dataset = VideoDataset(data, res)
    if len(dataset) < cfg.batch_size:
        raise PhylawError(f"{data} holds {len(dataset)} videos, fewer than batch_size")

    torch.manual_seed(cfg.seed)
    model = Autoencoder(cfg.model).to(device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99)
    )
    if (out / CHECKPOINT).exists():
        state = _resume(out / CHECKPOINT, cfg, res, model, opt)
    else:
        state = {"step": 0, "elapsed_s": 0.0}
        text = json.dumps(_config_dict(cfg), indent=1) + "\n"
        _atomic(out / "ae-config.json", lambda p: p.write_text(text))

    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + state["step"])
    stats_rows = np.random.default_rng(cfg.seed).choice(
        len(dataset), min(32, len(dataset)), replace=False
    )
    stats_videos = [
        to_model_video(dataset.render_rows(stats_rows[i : i + 8])["video"]).to(device)
        for i in range(0, len(stats_rows), 8)
    ]
    amp = device.type == "cuda" and cfg.bf16
    total = None if cfg.max_minutes > 0 else cfg.max_steps  # a time budget: count steps only
    bar = tqdm(total=total, initial=state["step"], desc="train-ae", disable=not progress)
    start, elapsed0, parts = time.perf_counter(), state["elapsed_s"], {}
    model.train()
    with bar, open(out / LOG, "a") as log:
        try:
            for x in _batches(dataset, cfg, gen):
                step, elapsed = state["step"], elapsed0 + time.perf_counter() - start
                done = step >= cfg.max_steps or 0 < 60 * cfg.max_minutes <= elapsed
                if done or (step > 0 and step % cfg.save_every_steps == 0):
                    _latent_stats(model, stats_videos)
                    save_checkpoint(out, model, opt, cfg, {**state, "elapsed_s": elapsed, **parts})
                if done:
                    return out / CHECKPOINT
                lr = _lr(cfg, step, elapsed)
                parts = _train_step(model, opt, x.to(device, non_blocking=True), cfg, lr, amp)
                state = {"step": step + 1, "elapsed_s": elapsed}
                if step % cfg.log_every_steps == 0:
                    row = {"step": step, "elapsed_s": round(elapsed, 2), "lr": lr, **parts}
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                bar.set_postfix(loss=f"{parts['loss']:.4f}", refresh=False)
                bar.update(1)
        except KeyboardInterrupt:  # keep what was learnt, then let the caller report it
            elapsed = elapsed0 + time.perf_counter() - start
            save_checkpoint(out, model, opt, cfg, {**state, "elapsed_s": elapsed, **parts})
            raise
    raise AssertionError("unreachable: _batches is endless")

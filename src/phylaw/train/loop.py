"""The training loop: one function, the same under `python` (CPU or one GPU) and `torchrun`.

    result = train(get_preset("cpu-uniform"), "runs/u", codec=None, evaluator=None)

Each optimizer step k (Appendix A.2, eq. 2):
  1. data: the global batch of step k is a pure function of (seed, k): positions k*B .. k*B+B-1
     of an endless sequence of seeded epoch permutations (those of `data.dataset.
     epoch_batches`), cut into one contiguous share per rank and one slice per micro-step;
  2. noise and timesteps for the whole global batch from a generator seeded by (seed, k), of
     which each rank takes its slice: a run's batches do not depend on the number of ranks or
     accumulation steps, and resuming needs nothing but k (RNG states are saved anyway);
  3. videos -> [-1, 1], frames [0, s, ..., (T-1)s], area-averaged by `data.downsample`, then
     `codec.encode` (identity in pixel space; the autoencoder's encoder in latent space);
  4. the frame-masked loss under autocast (bf16 on CUDA; fp32 on CPU unless asked), backward
     (DDP all-reduces gradients on the last micro-step), clipping, AdamW at the warmup/decay
     learning rate of step k, then the EMA update.
Rank 0 logs (TensorBoard, RUN/metrics.jsonl, a tqdm bar with loss, samples/s and ETA), writes
sample GIFs (ground truth | generated, EMA weights), runs the optional quick evaluation and
writes checkpoints; SIGINT/SIGTERM or `run.max_minutes` stop the run cleanly after the current
step with a checkpoint. Re-running the same command resumes from the latest checkpoint and
produces the same weights as an uninterrupted run (tests/test_train.py).

Run directory: config.json (the resolved config), checkpoints/ (`train.checkpoint`),
metrics.jsonl, tb/ (TensorBoard events), samples/step_NNNNNNN-{train,eval_id,eval_ood}.gif.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from phylaw import PhylawError
from phylaw.data.dataset import RenderLoader, VideoDataset
from phylaw.data.info import side_by_side
from phylaw.data.store import atomic_write_bytes, open_store, read_json, write_json
from phylaw.data.video import encode_gif
from phylaw.diffusion import (
    frame_mask,
    make_schedule,
    sample_timesteps,
    training_loss,
)
from phylaw.models.dit import DiT
from phylaw.train.checkpoint import (
    latest_checkpoint,
    load_module,
    load_optimizer,
    read_state,
    restore_rng,
    save_checkpoint,
)
from phylaw.train.config import (
    TrainConfig,
    config_diff,
    config_from_dict,
    config_to_dict,
    frame_indices,
    micro_batch,
    network_config,
    space_shape,
)
from phylaw.train.distributed import (
    Dist,
    all_reduce_max,
    all_reduce_mean,
    barrier,
    init_distributed,
    rank_batches,
    shutdown,
)
from phylaw.train.ema import EMA
from phylaw.train.generate import (
    Codec,
    Continuation,
    autocast,
    codec_for,
    frame_condition,
    prepare_video,
)
from phylaw.train.quickeval import QuickEval

__all__ = ["TrainResult", "lr_at", "train"]

# Keys that define a run: a checkpoint or RUN/config.json differing in them is another run.
FIXED = (
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
    "run.seed",
    "run.batch_size",
)


# ----------------------------------------------------------------------------------------------
# Learning rate and noise: pure functions of the step
# ----------------------------------------------------------------------------------------------


def lr_at(step: int, cfg: TrainConfig, time_used: float = 0.0) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warmup over `warmup_steps`,
    then constant or cosine down to `min_lr_ratio * lr` at `run.steps`, or sooner when a time
    budget is set: `time_used` is the fraction of `run.max_minutes` spent, and the cosine
    follows whichever of steps and time is further along, so a budget-limited run still anneals."""
    o = cfg.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    if o.decay == "constant":
        return o.lr
    progress = (step - o.warmup_steps) / max(1, cfg.run.steps - o.warmup_steps)
    progress = min(1.0, max(progress, time_used))
    return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    mixed = int(np.random.SeedSequence([seed, step, 0x6E6F697365]).generate_state(1, np.uint64)[0])
    return torch.Generator(device).manual_seed(mixed)


# ----------------------------------------------------------------------------------------------
# Logging (rank 0)
# ----------------------------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


class _Log:
    """TensorBoard scalars and GIFs, RUN/metrics.jsonl and sample files."""

    def __init__(self, run_dir: Path, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step)
        self.jsonl = run_dir / "metrics.jsonl"
        if self.jsonl.exists():  # drop what a killed run logged after its last checkpoint
            keep = []
            for ln in self.jsonl.read_text().splitlines():
                try:
                    if json.loads(ln).get("step", 0) <= start_step:
                        keep.append(ln)
                except (json.JSONDecodeError, AttributeError):  # a line cut by the kill
                    pass
            _write_text(self.jsonl, "".join(ln + "\n" for ln in keep))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.tb.add_scalar(k, v, step)
        with open(self.jsonl, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")

    def gif(self, step: int, tag: str, frames: np.ndarray) -> Path:
        from tensorboard.compat.proto.summary_pb2 import Summary

        data = encode_gif(frames)
        path = self.run_dir / "samples" / f"step_{step:07d}-{tag}.gif"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        t, h, w, _ = frames.shape
        image = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=data)
        summary = Summary(value=[Summary.Value(tag=f"samples/{tag}", image=image)])
        self.tb._get_file_writer().add_summary(summary, step)
        return path

    def close(self) -> None:
        self.tb.close()


# ----------------------------------------------------------------------------------------------
# The training function
# ----------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """How a call to `train` ended: the step reached, why it stopped ('done', 'time',
    'signal'), the last checkpoint, the live and EMA networks, and the last logged loss."""

    step: int
    stopped: str
    checkpoint: Path | None
    model: nn.Module
    ema: nn.Module
    loss: float | None


def _fixed_changes(old: TrainConfig, new: TrainConfig) -> list[str]:
    return [c for c in config_diff(old, new) if c.split(":")[0].startswith(FIXED)]


def _check_run_dir(cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse a run directory holding another run; write RUN/config.json."""
    path = run_dir / "config.json"
    if path.exists():
        old = config_from_dict(read_json(path, "run config"), str(path))
        fixed = _fixed_changes(old, cfg)
        if fixed:
            raise PhylawError(
                f"{run_dir} holds a run with another config ({'; '.join(fixed[:3])}); choose "
                "another --out, or resume it with the same settings"
            )
        changed = config_diff(old, cfg)
        if changed:
            print(f"resuming {run_dir} with changed settings: {'; '.join(changed)}")
    elif run_dir.is_dir() and any(run_dir.iterdir()):
        raise PhylawError(f"{run_dir} exists and is not a phylaw run; choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, config_to_dict(cfg))


def _resume(ckpt: Path, cfg, model, ema, optimizer) -> dict[str, Any]:
    state = read_state(ckpt)
    fixed = _fixed_changes(state["config"], cfg)
    if fixed:
        raise PhylawError(
            f"checkpoint {ckpt} belongs to another config ({'; '.join(fixed[:3])}); choose "
            "another --out"
        )
    load_module(model, ckpt / "model.safetensors")
    load_module(ema.module, ckpt / "ema.safetensors")
    load_optimizer(
        optimizer, model, ckpt / "optimizer.safetensors", state["optimizer"]["param_groups"]
    )
    restore_rng(state["rng"])
    return state


class _StopFlag:
    """SIGINT/SIGTERM -> stop after the current step (a second SIGINT interrupts at once)."""

    def __init__(self) -> None:
        self.set, self.previous = False, {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.set = True
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, self.previous[signal.SIGINT])
            print("\nstopping after this step with a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _sample_videos(cfg: TrainConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fixed (ids, uint8 videos) per available split for the sample GIFs."""
    out = {}
    splits = {"train": cfg.data.train, "eval_id": cfg.data.eval_id, "eval_ood": cfg.data.eval_ood}
    for tag, root in splits.items():
        if not root:
            continue
        ds = VideoDataset(root, cfg.data.resolution_px)
        n = min(cfg.run.sample_count, len(ds))
        rows = np.sort(np.random.default_rng([cfg.run.seed, 7]).permutation(len(ds))[:n])
        batch = ds.render_rows(ds.rows[rows])
        out[tag] = (batch["index"].numpy(), batch["video"].numpy())
    return out


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    codec: Codec | None = None,
    evaluator: Callable[[Continuation, int], dict[str, float]] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume) the run `cfg` in `run_dir`; see the module docstring.

    codec: the latent path's `Codec` (None: `codec_for(cfg)`, i.e. the identity in pixel space
    and the autoencoder run `space.autoencoder` in latent space);
    evaluator(sample_fn, step) -> {name: value}: called on rank 0 every `run.eval_every`
    steps with a `Continuation` of the EMA network, its values logged as 'eval/<name>'
    (None: `QuickEval` on data.eval_id and data.eval_ood when run.eval_every is set).
    Works alone or under torchrun (`train.distributed`). Returns a `TrainResult`.
    """
    d = init_distributed(cfg.run.device)
    threads = torch.get_num_threads()
    try:
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        return _train(cfg, Path(run_dir), d, codec, evaluator, progress)
    finally:
        torch.set_num_threads(threads)
        shutdown(d)


def _train(cfg, run_dir, d: Dist, codec, evaluator, progress) -> TrainResult:
    codec = codec or codec_for(cfg)
    if not cfg.data.train:
        raise PhylawError("no training split: give --data DIR (built with 'phylaw data build')")
    b, accum, B = micro_batch(cfg, d.world_size), cfg.run.grad_accum, cfg.run.batch_size
    dataset = VideoDataset(open_store(cfg.data.train), cfg.data.resolution_px)
    if dataset.store.manifest["num_frames"] <= frame_indices(cfg)[-1]:
        raise PhylawError(
            f"{cfg.data.train} has {dataset.store.manifest['num_frames']} frames per video; "
            f"data.frames x data.frame_stride needs {frame_indices(cfg)[-1] + 1}"
        )
    if d.is_main:
        _check_run_dir(cfg, run_dir)
    barrier(d)

    # ---- network, EMA, optimizer, and the state of a previous run
    device, network = d.device, network_config(cfg)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    torch.manual_seed(cfg.run.seed)
    model = DiT(network).to(device)
    ema = EMA(model, cfg.optim.ema_decay)
    o = cfg.optim
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=o.lr,
        betas=o.betas,
        eps=o.eps,
        weight_decay=o.weight_decay,
        fused=device.type == "cuda",
    )
    start_step, elapsed_before = 0, 0.0
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None:
        state = _resume(ckpt, cfg, model, ema, optimizer)
        start_step, elapsed_before = state["step"], state["extra"].get("elapsed_s", 0.0)
        if d.is_main:
            print(f"resuming {run_dir} from step {start_step} ({ckpt.name})")
    net: nn.Module = torch.compile(model) if cfg.run.compile else model
    if d.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)

    def denoiser(x: torch.Tensor, t: torch.Tensor, c: Any) -> torch.Tensor:
        return net(x, t, c.video, c.mask)

    schedule = make_schedule(
        cfg.diffusion.schedule, cfg.diffusion.num_steps, cfg.diffusion.zero_terminal_snr
    )
    shape = space_shape(cfg)
    if codec.module is not None:
        codec.module.to(device)
    log = _Log(run_dir, start_step) if d.is_main else None
    samples = _sample_videos(cfg) if d.is_main and cfg.run.sample_every else {}
    if evaluator is None and cfg.run.eval_every:  # on every rank: they meet at its barrier
        evaluator = QuickEval(cfg) or None
    if d.is_main and start_step == 0:
        n = sum(p.numel() for p in model.parameters())
        print(
            f"training {cfg.preset or 'a custom config'}: {n / 1e6:.2f}M parameters, "
            f"{network.num_tokens} tokens, batch {B} ({d.world_size} rank(s) x {accum} x {b}) "
            f"on {device}, into {run_dir}"
        )

    def continuation() -> Continuation:
        return Continuation(ema.module, cfg, codec, device=device, batch_size=max(b, 4))

    def write_samples(step: int) -> None:
        cont = continuation()
        for tag, (ids, videos) in samples.items():
            generated = cont(videos, seeds=ids)
            truth = videos[:, frame_indices(cfg)]
            log.gif(step, tag, side_by_side(truth, generated))

    def checkpoint(step: int, elapsed: float) -> Path | None:
        path = None
        if d.is_main:
            path = save_checkpoint(
                run_dir,
                step,
                model=model,
                ema=ema.module,
                optimizer=optimizer,
                cfg=cfg,
                network=network,
                extra={"elapsed_s": elapsed, "world_size": d.world_size, "time": time.time()},
                keep_last=cfg.run.keep_last,
            )
        barrier(d)
        return path

    if start_step >= cfg.run.steps:
        if d.is_main:
            print(f"{run_dir} already finished {start_step} steps (run.steps = {cfg.run.steps})")
            log.close()
        return TrainResult(start_step, "done", ckpt, model, ema.module, None)

    # ---- the loop
    loader = iter(
        RenderLoader(
            dataset,
            rank_batches(cfg, d, start_step, len(dataset)),
            threads=cfg.data.render_threads,
            prefetch=2,
        )
    )
    bar = tqdm(
        total=cfg.run.steps,
        initial=start_step,
        unit="step",
        desc="train",
        dynamic_ncols=True,
        disable=not (progress and d.is_main),
    )
    t0 = window_t = time.perf_counter()
    window_steps, loss_sum, last_loss, last_ckpt = 0, torch.zeros((), device=device), None, ckpt
    stopped, step, time_used = "done", start_step, 0.0
    budget_s = 60 * cfg.run.max_minutes
    net.train()
    with _StopFlag() as flag:
        try:
            for step in range(start_step, cfg.run.steps):
                lr = lr_at(step, cfg, time_used)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                gen = _step_generator(cfg.run.seed, step, device)
                t_all = sample_timesteps(B, schedule, gen, device)  # [B] global batch
                noise_all = torch.randn((B, *shape), generator=gen, device=device)
                for m in range(accum):
                    videos = next(loader)["video"]
                    with torch.no_grad():
                        x = prepare_video(videos, cfg, device)
                        z0 = codec.encode(x)
                        cond = frame_condition(codec, cfg, x, z0)
                    if tuple(z0.shape[1:]) != shape or cond.mask.shape[2:] != z0.shape[2:]:
                        raise PhylawError(
                            f"the codec encodes to {tuple(z0.shape[1:])}, the config expects "
                            f"{shape} (space.*)"
                        )
                    part = slice((d.rank * accum + m) * b, (d.rank * accum + m + 1) * b)
                    last = m == accum - 1
                    sync = net.no_sync() if d.distributed and not last else contextlib.nullcontext()
                    with sync:
                        with autocast(device, cfg.run.precision):
                            loss = training_loss(
                                denoiser,
                                z0,
                                cond,
                                t_all[part],
                                noise_all[part],
                                schedule,
                                cfg.diffusion.prediction,
                                frame_mask(cond.mask),
                            )
                        (loss / accum).backward()
                    loss_sum += loss.detach() / accum
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    model.parameters(), o.grad_clip if o.grad_clip > 0 else math.inf
                )
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                ema.update(model, step)
                done, window_steps = step + 1, window_steps + 1
                bar.update(1)
                elapsed = time.perf_counter() - t0

                if done % cfg.run.log_every == 0 or done == cfg.run.steps:
                    mean = all_reduce_mean(d, loss_sum / window_steps).item()
                    now = time.perf_counter()
                    rate = window_steps * B / (now - window_t)
                    if not math.isfinite(mean):
                        raise PhylawError(
                            f"the loss became {mean} at step {done}; lower optim.lr or raise "
                            "optim.warmup_steps"
                        )
                    if d.is_main:
                        log.scalars(
                            done,
                            {
                                "loss": mean,
                                "lr": lr,
                                "grad_norm": float(grad_norm),
                                "samples_per_s": rate,
                                "elapsed_s": elapsed_before + elapsed,
                            },
                        )
                        bar.set_postfix(loss=f"{mean:.4f}", vid_s=f"{rate:.1f}", lr=f"{lr:.2g}")
                    last_loss, window_t, window_steps = mean, now, 0
                    loss_sum.zero_()
                if cfg.run.sample_every and done % cfg.run.sample_every == 0:
                    if d.is_main:
                        write_samples(done)
                    barrier(d)
                if evaluator is not None and cfg.run.eval_every and done % cfg.run.eval_every == 0:
                    if d.is_main:
                        scores = evaluator(continuation(), done)
                        log.scalars(done, {f"eval/{k}": float(v) for k, v in scores.items()})
                        bar.write(
                            f"step {done}: "
                            + ", ".join(f"{k} {v:.4g}" for k, v in sorted(scores.items()))
                        )
                    barrier(d)

                spent = (elapsed_before + elapsed) / budget_s if budget_s else 0.0
                signal, time_used = all_reduce_max(d, float(flag.set), spent)
                stop = bool(signal) or time_used >= 1.0
                if stop:
                    stopped = "signal" if signal else "time"
                if done % cfg.run.ckpt_every == 0 or done == cfg.run.steps or stop:
                    last_ckpt = checkpoint(done, elapsed_before + time.perf_counter() - t0)
                if stop:
                    break
            if cfg.run.sample_every and (step + 1) % cfg.run.sample_every and d.is_main:
                write_samples(step + 1)  # the last state, when no sample step wrote it
            barrier(d)
        finally:
            loader.close()
            bar.close()
            if log is not None:
                log.close()
    step = step + 1
    if d.is_main:
        print(
            f"stopped at step {step}/{cfg.run.steps} ({stopped}); loss {last_loss}; "
            f"checkpoint {last_ckpt}"
        )
    return TrainResult(step, stopped, last_ckpt, model, ema.module, last_loss)

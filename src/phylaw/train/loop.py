"""The training loop: one skeleton for the DiT and the autoencoder, under `python` or `torchrun`.

    result = train(get_preset("cpu-uniform"), "runs/u", evaluator=None)        # the DiT
    result = train_autoencoder(autoencoder_preset("ae-small"), "runs/ae")     # train.ae

`fit(task, run_dir)` is generic over a `Task`, which knows its model family: the network, the
training videos, the random draws of a step and the loss of a micro-batch (`train.dit_task.
DiffusionTask`, `train.ae.AutoencoderTask`). The loop owns everything else: optimizer, learning
rate, EMA, checkpoints, logging, time budget, signals, resume and DDP. Optimizer step k:

  1. data: the global batch of step k is a pure function of (seed, k): positions k*B .. k*B+B-1
     of an endless sequence of seeded epoch permutations, cut into one contiguous share per rank
     and one slice per micro-step (`distributed.rank_batches`);
  2. draws: the task's random inputs for the whole global batch (the DiT's timesteps and noise,
     the autoencoder's clip offsets and posterior noise) from a generator seeded by (seed, k), of
     which each rank takes its slice: a run's batches do not depend on the number of ranks or
     accumulation steps, and resuming needs nothing but k (RNG states are saved anyway);
  3. batch -> loss: `task.batch` turns videos into model inputs (no gradients), `task.loss`
     runs under autocast (`run.precision`; 'auto' is bf16 on CUDA and, on a CPU, whichever dtype
     a short probe of the task's network measures faster, `train.precision`; a resumed run
     keeps its checkpoint's choice), backward (DDP all-reduces
     gradients on the last micro-step);
  4. clipping, AdamW at the learning rate of step k (`lr_at`), then the EMA update.

Rank 0 logs (TensorBoard, RUN/metrics.jsonl, a tqdm bar with loss, samples/s and ETA), writes
sample GIFs (`task.samples`, EMA weights), calls the evaluator handed in by the caller (quick
evaluation lives above train, in `experiments.quickeval`) and writes checkpoints; SIGINT/SIGTERM
or `run.max_minutes` (summed over resumes, agreed across ranks) stop the run cleanly after the
current step with a checkpoint. Re-running the same command resumes from the latest checkpoint
and produces the same weights as an uninterrupted run (tests/test_train.py, test_autoencoder.py).
The run directory's layout is in `train.rundir`.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from phylaw import PhylawError
from phylaw.data.dataset import RenderLoader
from phylaw.train.checkpoint import (
    kind_of,
    latest_checkpoint,
    load_module,
    load_optimizer,
    read_state,
    restore_rng,
    save_checkpoint,
)
from phylaw.train.config_core import fixed_changes, micro_batch
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
from phylaw.train.precision import autocast, resolve_precision
from phylaw.train.rundir import RunLog, StopFlag, check_run_dir
from phylaw.train.task import Evaluator, Task, TrainResult

__all__ = ["Evaluator", "Task", "TrainResult", "compile_network", "fit", "lr_at"]


def lr_at(step: int, cfg: Any, time_used: float = 0.0) -> float:
    """Learning rate of optimizer step `step` (0-based) of any training config: linear warmup
    over `optim.warmup_steps`, then constant or cosine down to `min_lr_ratio * lr` at
    `run.steps`, or sooner when a time budget is set: `time_used` is the fraction of
    `run.max_minutes` spent, and the cosine follows whichever of steps and time is further
    along, so a budget-limited run still anneals."""
    o = cfg.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    if o.decay == "constant":
        return o.lr
    progress = (step - o.warmup_steps) / max(1, cfg.run.steps - o.warmup_steps)
    progress = min(1.0, max(progress, time_used))
    return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def compile_network(model: nn.Module) -> nn.Module:
    """`torch.compile` per repeated block where the network has `blocks` (the DiT): one
    compilation serves every block, so compile time does not grow with depth and the weights
    keep their names; any other network is compiled whole. Compiles in place; returns it."""
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.ModuleList):
        for block in blocks:
            block.compile()
        return model
    return torch.compile(model)


def fit(
    task: Task, run_dir: str | Path, *, evaluator: Evaluator | None = None, progress: bool = True
) -> TrainResult:
    """Train (or resume) `task` in `run_dir` with the loop of the module docstring."""
    d = init_distributed(task.cfg.run.device)
    threads = torch.get_num_threads()
    try:
        if task.cfg.run.threads:
            torch.set_num_threads(task.cfg.run.threads)
        return _Loop(task, Path(run_dir), d, evaluator, progress).run()
    finally:
        torch.set_num_threads(threads)
        shutdown(d)


class _Loop:
    """The state of one call to `fit`, and its phases as methods."""

    def __init__(self, task: Task, run_dir: Path, d: Dist, evaluator, progress: bool) -> None:
        self.task, self.cfg, self.run_dir, self.d = task, task.cfg, run_dir, d
        self.evaluator, self.progress = evaluator, progress
        self.stopped, self.last_loss, self.log = "done", None, None
        self.loss_sum = torch.zeros((), device=d.device)
        self.parts_sum: dict[str, float] = {}
        self.window_steps, self.elapsed = 0, 0.0

    # ---- setup: data, network, EMA, optimizer, and the state of a previous run
    def setup(self) -> None:
        cfg, d = self.cfg, self.d
        self.micro_batch = micro_batch(cfg, d.world_size)
        self.dataset = self.task.dataset()
        if d.is_main:
            check_run_dir(cfg, self.run_dir)
        barrier(d)
        if d.device.type == "cuda":
            torch.set_float32_matmul_precision("high")
        torch.manual_seed(cfg.run.seed)
        self.model, self.network = self.task.build(d)
        self.ema = EMA(self.model, cfg.optim.ema_decay)
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=o.lr,
            betas=o.betas,
            eps=o.eps,
            weight_decay=o.weight_decay,
            fused=d.device.type == "cuda",
        )
        self.start_step, self.elapsed_before, self.last_ckpt, recorded = self.resume()
        self.precision, why = self.resolve_precision(recorded)
        if d.is_main:
            print(why)
        self.net = self.wrap(self.model)

    def resolve_precision(self, recorded: str | None) -> tuple[str, str]:
        """The dtype of this run's steps (`train.precision`), the same on every rank (fp32
        where any rank's probe says so), and why."""
        probe = getattr(self.task, "precision_probe", None)
        make_step = (lambda: probe(self.model)) if probe is not None else None
        precision, why = resolve_precision(
            self.cfg.run.precision, self.d.device, make_step, recorded
        )
        if all_reduce_max(self.d, float(precision == "fp32"))[0]:
            precision = "fp32"
        return precision, why

    def resume(self) -> tuple[int, float, Path | None, str | None]:
        """Load the latest checkpoint, if any: (its step, training seconds before, its path,
        the precision it trained in)."""
        ckpt = latest_checkpoint(self.run_dir)
        if ckpt is None:
            return 0, 0.0, None, None
        state = read_state(ckpt, kind=kind_of(self.cfg))
        fixed = fixed_changes(state["config"], self.cfg)
        if fixed:
            raise PhylawError(
                f"checkpoint {ckpt} belongs to another config ({'; '.join(fixed[:3])}); choose "
                "another --out"
            )
        load_module(self.model, ckpt / "model.safetensors")
        load_module(self.ema.module, ckpt / "ema.safetensors")
        groups = state["optimizer"]["param_groups"]
        load_optimizer(self.optimizer, self.model, ckpt / "optimizer.safetensors", groups)
        restore_rng(state["rng"])
        if self.d.is_main:
            print(f"resuming {self.run_dir} from step {state['step']} ({ckpt.name})")
        extra = state["extra"]
        return state["step"], extra.get("elapsed_s", 0.0), ckpt, extra.get("precision")

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the steps call: compiled and/or wrapped in DDP as configured."""
        net: nn.Module = compile_network(model) if self.cfg.run.compile else model
        if self.d.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            device = self.d.device
            net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
        return net

    # ---- the run
    def run(self) -> TrainResult:
        """Set up, resume, loop until steps / time budget / signal, report."""
        self.setup()
        cfg, d = self.cfg, self.d
        if self.start_step >= cfg.run.steps:
            if d.is_main:
                done, steps = self.start_step, cfg.run.steps
                print(f"{self.run_dir} already finished {done} steps (run.steps = {steps})")
            return self.result(self.start_step)
        self.announce()
        batches = rank_batches(cfg, d, self.start_step, len(self.dataset))
        loader = iter(RenderLoader(self.dataset, batches, cfg.data.render_threads, prefetch=2))
        self.bar = tqdm(
            total=cfg.run.steps,
            initial=self.start_step,
            unit="step",
            desc="train",
            dynamic_ncols=True,
            disable=not (self.progress and d.is_main),
        )
        try:
            with StopFlag() as flag:
                step = self.loop(loader, flag)
        finally:
            loader.close()
            self.bar.close()
            if self.log is not None:
                self.log.close()
        if d.is_main:
            how = f"({self.stopped}); loss {self.last_loss}; checkpoint {self.last_ckpt}"
            print(f"stopped at step {step}/{cfg.run.steps} {how}")
        return self.result(step)

    def announce(self) -> None:
        """Open the logs; say what trains where (rank 0)."""
        cfg, d = self.cfg, self.d
        if not d.is_main:
            return
        self.log = RunLog(self.run_dir, self.start_step)
        if self.start_step == 0:
            n = sum(p.numel() for p in self.model.parameters())
            accum, b = cfg.run.grad_accum, self.micro_batch
            print(
                f"training {cfg.preset or 'a custom config'}: {n / 1e6:.2f}M parameters, "
                f"{self.task.summary()}, batch {cfg.run.batch_size} ({d.world_size} rank(s) x "
                f"{accum} x {b}) on {d.device}, into {self.run_dir}"
            )
        if cfg.run.eval_every and self.evaluator is None:
            print("run.eval_every is set but no evaluator was given: no quick evaluation")

    def loop(self, loader, flag: StopFlag) -> int:
        """Optimizer steps from `start_step`; returns the number of steps done."""
        cfg, d = self.cfg, self.d
        self.t0 = self.window_t = time.perf_counter()
        time_used, done = 0.0, self.start_step
        self.net.train()
        for step in range(self.start_step, cfg.run.steps):
            lr = lr_at(step, cfg, time_used)
            grad_norm = self.optimizer_step(step, lr, loader)
            done = step + 1
            self.bar.update(1)
            self.elapsed = time.perf_counter() - self.t0
            if done % cfg.run.log_every == 0 or done == cfg.run.steps:
                self.log_window(done, lr, grad_norm)
            self.samples_and_evaluation(done)
            stop, time_used = self.should_stop(flag)
            if done % cfg.run.ckpt_every == 0 or done == cfg.run.steps or stop:
                self.checkpoint(done)
            if stop:
                break
        if cfg.run.sample_every and done % cfg.run.sample_every and d.is_main:
            self.write_samples(done)  # the last state, when no sample step wrote it
        barrier(d)
        return done

    # ---- one optimizer step: data -> loss -> backward -> clip -> optimizer -> EMA
    def optimizer_step(self, step: int, lr: float, loader) -> torch.Tensor:
        cfg, d, b = self.cfg, self.d, self.micro_batch
        accum = cfg.run.grad_accum
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        draw = self.task.draw(step, d.device)
        for m in range(accum):
            videos = next(loader)["video"]
            first = (d.rank * accum + m) * b
            with torch.no_grad():
                inputs = self.task.batch(videos, draw, slice(first, first + b))
            last = m == accum - 1
            sync = self.net.no_sync() if d.distributed and not last else contextlib.nullcontext()
            with sync:
                with autocast(d.device, self.precision):
                    loss, parts = self.task.loss(self.net, inputs)
                (loss / accum).backward()
            self.loss_sum += loss.detach() / accum
            for k, v in parts.items():
                self.parts_sum[k] = self.parts_sum.get(k, 0.0) + v / accum
        clip = cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.model, step)
        self.window_steps += 1
        return grad_norm

    # ---- logging, samples, evaluation, stopping, checkpoints
    def log_window(self, done: int, lr: float, grad_norm: torch.Tensor) -> None:
        """Log the means since the last log line (loss over all ranks; parts of rank 0)."""
        mean = all_reduce_mean(self.d, self.loss_sum / self.window_steps).item()
        now = time.perf_counter()
        rate = self.window_steps * self.cfg.run.batch_size / (now - self.window_t)
        if not math.isfinite(mean):
            raise PhylawError(
                f"the loss became {mean} at step {done}; lower optim.lr or raise optim.warmup_steps"
            )
        if self.d.is_main:
            parts = {k: v / self.window_steps for k, v in self.parts_sum.items()}
            self.log.scalars(
                done,
                {
                    "loss": mean,
                    **parts,
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "samples_per_s": rate,
                    "elapsed_s": self.elapsed_before + self.elapsed,
                },
            )
            self.bar.set_postfix(loss=f"{mean:.4f}", vid_s=f"{rate:.1f}", lr=f"{lr:.2g}")
        self.last_loss, self.window_t, self.window_steps = mean, now, 0
        self.loss_sum.zero_()
        self.parts_sum = {}

    def samples_and_evaluation(self, done: int) -> None:
        """Sample GIFs every `run.sample_every` steps, the evaluator every `run.eval_every`."""
        run, d = self.cfg.run, self.d
        if run.sample_every and done % run.sample_every == 0:
            if d.is_main:
                self.write_samples(done)
            barrier(d)
        if self.evaluator is not None and run.eval_every and done % run.eval_every == 0:
            if d.is_main:
                scores = self.evaluator(self.task.predictor(self.ema.module), done)
                self.log.scalars(done, {f"eval/{k}": float(v) for k, v in scores.items()})
                line = ", ".join(f"{k} {v:.4g}" for k, v in sorted(scores.items()))
                self.bar.write(f"step {done}: {line}")
            barrier(d)

    def write_samples(self, step: int) -> None:
        for tag, frames in self.task.samples(self.ema.module).items():
            self.log.gif(step, tag, frames)

    def should_stop(self, flag: StopFlag) -> tuple[bool, float]:
        """(stop now?, fraction of the time budget used), the same on every rank."""
        budget_s = 60 * self.cfg.run.max_minutes
        spent = (self.elapsed_before + self.elapsed) / budget_s if budget_s else 0.0
        signal, time_used = all_reduce_max(self.d, float(flag.set), spent)
        stop = bool(signal) or time_used >= 1.0
        if stop:
            self.stopped = "signal" if signal else "time"
        return stop, time_used

    def checkpoint(self, step: int) -> None:
        self.task.before_checkpoint(self.model, self.ema.module)
        path = None
        if self.d.is_main:
            elapsed = self.elapsed_before + time.perf_counter() - self.t0
            path = save_checkpoint(
                self.run_dir,
                step,
                model=self.model,
                ema=self.ema.module,
                optimizer=self.optimizer,
                cfg=self.cfg,
                network=self.network,
                extra={
                    "elapsed_s": elapsed,
                    "world_size": self.d.world_size,
                    "time": time.time(),
                    "precision": self.precision,
                },
                keep_last=self.cfg.run.keep_last,
            )
        barrier(self.d)
        self.last_ckpt = path

    def result(self, step: int) -> TrainResult:
        return TrainResult(
            step, self.stopped, self.last_ckpt, self.model, self.ema.module, self.last_loss
        )

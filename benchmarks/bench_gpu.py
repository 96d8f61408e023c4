"""GPU training throughput of the paper's sizes: steps/s, model FLOP utilisation, largest batch.

One training step as `train.loop` takes it (bf16 autocast, frame-masked v-prediction loss on
a batch with its condition frame, forward + backward, gradient clipping, fused AdamW, EMA) at
the paper's latent shape: 32 frames of 128x128 through the autoencoder (4 x 9 x 16 x 16),
patch (1, 2, 2), 576 tokens. Inputs are random latents on the device (the autoencoder and the
renderer are left out). Model FLOPs are counted once with `torch.utils.flop_counter.
FlopCounterMode` (matmuls, convolutions, attention; forward and backward) and MFU = counted
FLOPs / median step time / peak, against two peaks: the measured one (the median rate of an
8192^3 bf16 `torch.mm` on random data) and the datasheet's dense bf16 (989 TFLOP/s for
H100/H200 SXM). Timing: CUDA events around each step after warm-up, the median of `--steps`.

For each size: eager steps at `--batch` (or the largest batch that fits, if smaller), then the
same with `torch.compile` of each transformer block (`train.loop.compile_network`: what
`run.compile=true` does), and the largest batch that fits in eager mode (memory at two small
batches -> a linear prediction -> one step at the prediction, shrunk by 10 % on OOM).

    python benchmarks/bench_gpu.py                                  # S, B, L; eager + compiled
    python benchmarks/bench_gpu.py --sizes DiT-B --no-compile --steps 20
    python benchmarks/bench_gpu.py --device cpu --sizes DiT-S --batch 2 --steps 1 --no-max-batch

Writes a Markdown table to stdout and, with `--json FILE`, every number.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from phylaw.diffusion import condition_inputs, frame_mask, make_schedule, training_loss
from phylaw.models.dit import DiT
from phylaw.train import get_preset, network_config, override
from phylaw.train.config import space_shape
from phylaw.train.ema import EMA
from phylaw.train.generate import autocast
from phylaw.train.loop import compile_network

EAGER_S, COMPILE_S = 10, 45  # seconds a job needs at least before --deadline (H200, DiT-L)
DATASHEET_BF16 = {"H100": 989.4e12, "H200": 989.4e12}  # dense, SXM (NVIDIA datasheets)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measured_peak(device: torch.device, n: int = 8192, reps: int = 10) -> float:
    """Median FLOP/s of an n^3 bf16 matrix product on random data (fp32 on a CPU)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    n = n if device.type == "cuda" else 1024
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times)


def datasheet_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in DATASHEET_BF16.items() if k in name), None)


class Step:
    """One model, its EMA and optimizer; `run(batch)` takes one training step at that batch on
    inputs drawn once per batch size."""

    def __init__(self, size: str, device: torch.device, precision: str) -> None:
        self.cfg = override(get_preset(f"paper-{size.removeprefix('DiT-')}"), [])
        self.device, self.precision = device, precision
        torch.manual_seed(0)
        self.model = DiT(network_config(self.cfg)).to(device)
        self.ema = EMA(self.model, self.cfg.optim.ema_decay)
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=self.cfg.optim.lr, fused=device.type == "cuda"
        )
        self.sched = make_schedule(self.cfg.diffusion.schedule, self.cfg.diffusion.num_steps, True)
        self.inputs: dict[int, tuple] = {}
        self.k = 0

    def batch(self, b: int) -> tuple:
        if b not in self.inputs:
            self.inputs.clear()
            gen = torch.Generator(self.device).manual_seed(b)
            shape = (b, *space_shape(self.cfg))
            x0 = torch.randn(shape, device=self.device, generator=gen)
            noise = torch.randn(shape, device=self.device, generator=gen)
            t = torch.randint(0, self.sched.num_steps, (b,), device=self.device, generator=gen)
            self.inputs[b] = (x0, noise, t)
        return self.inputs[b]

    def loss(self, net, b: int) -> torch.Tensor:
        x0, noise, t = self.batch(b)
        cond = condition_inputs(x0, 1)  # latent frame 0 (the paper's 3 given frames)
        with autocast(self.device, self.precision):
            return training_loss(
                lambda x, tt, c: net(x, tt, c.video, c.mask),
                x0,
                cond,
                t,
                noise,
                self.sched,
                self.cfg.diffusion.prediction,
                frame_mask(cond.mask),
            )

    def run(self, b: int) -> None:
        self.loss(self.model, b).backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.ema.update(self.model, self.k)
        self.k += 1

    def flops(self, b: int) -> float:
        with FlopCounterMode(display=False) as counter:
            self.loss(self.model, b).backward()
        self.opt.zero_grad(set_to_none=True)
        return float(counter.get_total_flops())

    def time(self, b: int, steps: int) -> tuple[float, float]:
        """(seconds of the first step, median seconds of `steps` steps after two warm-ups)."""
        sync(self.device)
        t0 = time.perf_counter()
        self.run(b)
        sync(self.device)
        first = time.perf_counter() - t0
        self.run(b)
        times = []
        for _ in range(steps):
            if self.device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(True)
                start.record()
                self.run(b)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                self.run(b)
                times.append(time.perf_counter() - t0)
        return first, statistics.median(times)

    def largest_batch(self, multiple: int = 8) -> tuple[int, float]:
        """The largest batch (a multiple of `multiple`) whose eager step fits, and its peak
        memory in GiB: a line through the peak memory at two small batches, then one step at
        the prediction, 10 % smaller after each out-of-memory error."""
        if self.device.type != "cuda":
            return 0, 0.0
        peaks = []
        for b in (8, 16):
            torch.cuda.reset_peak_memory_stats(self.device)
            self.run(b)
            sync(self.device)
            peaks.append(torch.cuda.max_memory_allocated(self.device))
        per_video = (peaks[1] - peaks[0]) / 8
        fixed = peaks[0] - 8 * per_video
        _, total = torch.cuda.mem_get_info(self.device)
        b = int((0.95 * total - fixed) / per_video) // multiple * multiple
        for _ in range(6):
            try:
                self.inputs.clear()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(self.device)
                self.run(b)
                sync(self.device)
                return b, torch.cuda.max_memory_allocated(self.device) / 2**30
            except torch.cuda.OutOfMemoryError:
                self.opt.zero_grad(set_to_none=True)
                b = int(b * 0.9) // multiple * multiple
        return 0, 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["DiT-S", "DiT-B", "DiT-L"])
    p.add_argument("--batch", type=int, default=256, help="batch of the timed steps (paper: 256)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (median)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--no-compile", action="store_true", help="eager steps only")
    p.add_argument("--no-max-batch", action="store_true", help="skip the largest-batch search")
    p.add_argument("--deadline", type=float, default=0, help="seconds; skip what starts later")
    p.add_argument("--json", help="write every number to this file")
    args = p.parse_args()
    device = torch.device(args.device)
    start = time.perf_counter()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    peak, sheet = measured_peak(device), datasheet_peak(device)
    print(
        f"measured peak: {peak / 1e12:.1f} TFLOP/s ({args.precision} matmul); datasheet: "
        f"{'n/a' if sheet is None else f'{sheet / 1e12:.0f} TFLOP/s'}"
    )
    rows: list[dict] = []
    print(
        "\n| size | params | batch | compile | first step s | s/step | steps/s | videos/s | "
        "TFLOP/s | MFU measured | MFU datasheet | largest batch (peak GiB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    # eager for every size first, then compiled (DiT-B, the goal's size, first) while time lasts
    order = sorted(args.sizes, key=lambda s: s != "DiT-B")
    jobs = [(s, False) for s in args.sizes] + (
        [] if args.no_compile else [(s, True) for s in order]
    )
    eager: dict[str, dict] = {}
    for size, compiled in jobs:
        left = args.deadline - (time.perf_counter() - start) if args.deadline else float("inf")
        if left < (COMPILE_S if compiled else EAGER_S) or (compiled and size not in eager):
            print(
                f"| {size} | skipped ({'compiled' if compiled else 'eager'}): {left:.0f} s left "
                "of the deadline |"
            )
            continue
        row = measure(size, compiled, eager.get(size), args, device, peak, sheet)
        rows.append(row)
        if not compiled:
            eager[size] = row
        print_row(row)
        if args.json:  # after every row: a run cut short keeps what it measured
            write_rows(args.json, rows, device, peak, sheet)


def measure(size: str, compiled: bool, eager: dict | None, args, device, peak, sheet) -> dict:
    """One row: a training step of ``size`` timed eager (after the largest-batch search) or
    compiled (at the eager row's batch)."""
    torch._dynamo.reset()
    step = Step(size, device, args.precision)
    if compiled:
        batch, flops, largest = eager["batch"], eager["flops"], (0, 0.0)
        compile_network(step.model)
    else:
        largest = (0, 0.0) if args.no_max_batch else step.largest_batch()
        batch = min(args.batch, largest[0]) if largest[0] else args.batch
        flops = step.flops(batch)
    first, med = step.time(batch, args.steps)
    n = sum(q.numel() for q in step.model.parameters())
    del step
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return dict(
        size=size,
        params=n,
        batch=batch,
        compiled=compiled,
        first_step_s=first,
        step_s=med,
        flops=flops,
        mfu=flops / med / peak,
        mfu_datasheet=None if sheet is None else flops / med / sheet,
        largest_batch=largest[0],
        largest_batch_gib=largest[1],
    )


def print_row(row: dict) -> None:
    med, batch, largest = row["step_s"], row["batch"], row["largest_batch"]
    ds = "n/a" if row["mfu_datasheet"] is None else f"{row['mfu_datasheet']:.1%}"
    lb = f"{largest} ({row['largest_batch_gib']:.0f})" if largest else ""
    print(
        f"| {row['size']} | {row['params'] / 1e6:.1f}M | {batch} | "
        f"{'yes' if row['compiled'] else 'no'} | {row['first_step_s']:.1f} | {med:.3f} | "
        f"{1 / med:.2f} | {batch / med:.0f} | {row['flops'] / med / 1e12:.0f} | "
        f"{row['mfu']:.1%} | {ds} | {lb} |",
        flush=True,
    )


def write_rows(path: str, rows: list[dict], device, peak: float, sheet) -> None:
    info = dict(
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        torch=torch.__version__,
        peak=peak,
        datasheet=sheet,
        rows=rows,
    )
    with open(path, "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()

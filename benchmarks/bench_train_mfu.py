"""CPU training efficiency: model FLOP/s of a training step over the machine's matmul peak.

In one run: (1) the peak, the best fp32 `torch.mm` rate of large square matrices on the
threads training uses; (2) for each configuration, one training step as `train.loop` takes it
(frame-masked loss on a batch with its condition frames, forward + backward, gradient
clipping, AdamW, EMA update), on synthetic videos (rendering runs in a background thread in
training and is left out). Model FLOPs are counted once with `torch.utils.flop_counter.
FlopCounterMode` (matmuls, convolutions and attention, forward and backward; elementwise work
is not counted, as in the usual MFU definition) and checked against the analytic
6 * per-token weights * tokens + 12 * depth * tokens^2 * width (per video, forward + backward;
the per-video adaLN and timestep MLPs are left out of the analytic count). MFU =
counted FLOPs / step time / peak, for the median step and for the best one (the best matches
the best-of peak when the machine is shared). The goal is >= 40%. (The counter does not know
the CPU flash-attention kernel; its 12 L T^2 d is then added analytically.)

    python benchmarks/bench_train_mfu.py                     # all configs, fp32, 2 threads
    python benchmarks/bench_train_mfu.py --configs cpu-uniform --precision fp32 bf16
    python benchmarks/bench_train_mfu.py --compile           # adds torch.compile (20-40 s each)

Configurations (batch 32, spec/cpu-training-notes.md's table): `cpu-uniform` (the preset: 16
frames of 32 px, patch (1, 8, 8), DiT-T, 256 tokens) and variants with smaller patches, wider
models or more tokens. The machine may be shared: step times are medians of `--steps` steps.

Recorded (2-core AMD EPYC, AVX2 without avx512_bf16, torch 2.13 CPU, 2 threads, quiet machine;
fp32 matmul peak 159-184 GFLOP/s, i.e. the FMA peak of 2 cores):

| config      | params | tokens | s/step | videos/s | model GFLOP/s | MFU |
|-------------|--------|--------|--------|----------|---------------|-----|
| cpu-uniform | 1.35M  | 256    | 0.70-0.84 | 38-46 | 65-79         | 41-43% |
| cpu-uniform, torch.compile | | | 0.76 | 42     | 72            | 39% (no gain) |
| wide-256    | 5.16M  | 256    | 1.98   | 16.2     | 94            | 59% |
| xs-64px     | 7.69M  | 512    | 7.98   | 4.0      | 81            | 51% |
| wide-384    | 11.4M  | 256    | 3.58   | 8.9      | 111           | 70% |
| cpu-uniform, bf16 autocast | | | 17.6 | 1.8   | 3             | 2%  |

bf16 matmul runs at 0.3 GFLOP/s on this CPU (no bf16 instructions): keep fp32 here. The whole
`train()` loop of cpu-uniform (rendering in a background thread, EMA, logging) gives 35-41
videos/s, 10-20% under the bare step.
"""

from __future__ import annotations

import argparse
import math
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

CONFIGS = {  # name: (preset, --set overrides); batch 32 unless --batch
    "cpu-uniform": ("cpu-uniform", []),  # 8 x 32 px, (4, 8, 8), DiT-T 4 x 128: 32 tokens
    "uniform-128tok": ("cpu-uniform", ["model.patch_size=1,8,8"]),  # the preset until issue 13
    "uniform-64tok": ("cpu-uniform", ["model.patch_size=2,8,8"]),
    "uniform-16tok": ("cpu-uniform", ["model.patch_size=8,8,8"]),
    "cpu-collision": ("cpu-collision", []),  # 16 x 32 px, (4, 8, 8): 64 tokens
    "cpu-scenes": ("cpu-scenes", []),  # the preset
    "scenes-192tok": ("cpu-scenes", ["model.patch_size=1,16,16", "model.hidden_size=128"]),
    "scenes-4x8x8": ("cpu-scenes", ["model.patch_size=4,8,8", "model.hidden_size=128"]),
    "patch-2x4x4": ("cpu-uniform", ["model.patch_size=2,4,4"]),  # 256 tokens
    "wide-256": ("cpu-uniform", ["model.hidden_size=256", "model.num_heads=4"]),
    "xs-64px": (  # 8 x 64 px, (2, 8, 8), 6 x 256: 256 tokens
        "cpu-uniform",
        [
            "data.resolution_px=64",
            "model.patch_size=2,8,8",
            "model.depth=6",
            "model.hidden_size=256",
            "model.num_heads=4",
        ],
    ),
}


def matmul_peak(threads: int, seconds: float, n: int = 2048, dtype=torch.float32) -> float:
    """Best FLOP/s of an n x n x n `torch.mm` over `seconds`."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)
    best, start = math.inf, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def analytic_flops(net, batch: int) -> float:
    """6 N T over the per-token weights N (block linears, patch embedding, output layer; not
    the per-video adaLN and timestep MLPs) plus attention's 12 L T^2 d, forward + backward."""
    per_token = sum(
        m.weight.numel()
        for name, m in net.named_modules()
        if isinstance(m, torch.nn.Linear | torch.nn.Conv3d)
        and ("attn" in name or "mlp" in name or name in ("x_embedder", "final_layer.linear"))
        and not name.startswith("t_embedder")
    )
    tokens, cfg = net.cfg.num_tokens, net.cfg
    return batch * (6 * per_token * tokens + 12 * cfg.depth * tokens**2 * cfg.hidden_size)


def bench(
    name: str,
    config,
    batch: int,
    precision: str,
    compile_: bool,
    steps: int,
    clock=time.perf_counter,
):
    preset, sets = config
    cfg = override(get_preset(preset), [*sets, f"run.batch_size={batch}"])
    torch.manual_seed(0)
    model = DiT(network_config(cfg))
    ema = EMA(model, cfg.optim.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr)
    net = torch.compile(model) if compile_ else model
    sched = make_schedule(cfg.diffusion.schedule, cfg.diffusion.num_steps)
    x0 = torch.rand(batch, *space_shape(cfg)) * 2 - 1
    cond = condition_inputs(x0, cfg.diffusion.cond_frames)
    device = torch.device("cpu")

    def loss_of(module, t):
        with autocast(device, precision):
            return training_loss(
                lambda x, tt, c: module(x, tt, c.video, c.mask),
                x0,
                cond,
                t,
                torch.randn_like(x0),
                sched,
                cfg.diffusion.prediction,
                frame_mask(cond.mask),
            )

    def step(k: int) -> None:
        loss_of(net, torch.randint(0, sched.num_steps, (batch,))).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update(model, k)

    with FlopCounterMode(display=False) as counter:
        loss_of(model, torch.zeros(batch, dtype=torch.long)).backward()
    opt.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()
    ops = {str(op) for per_op in counter.get_flop_counts().values() for op in per_op}
    if not any("scaled_dot_product" in op for op in ops):  # CPU flash attention: not counted
        c = model.cfg
        flops += batch * 12 * c.depth * c.num_tokens**2 * c.hidden_size
    t0 = clock()
    step(0)  # warm-up (and compilation)
    warm = clock() - t0
    times = []
    for k in range(1, steps + 1):
        t0 = clock()
        step(k)
        times.append(clock() - t0)
    return flops, analytic_flops(model, batch), statistics.median(times), min(times), warm, model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true", help="also measure torch.compile")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=8, help="timed steps per configuration")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0, help="time for the peak measurement")
    p.add_argument(
        "--cpu-time",
        action="store_true",
        help="time steps by the process's CPU seconds (all threads) instead of the wall clock: "
        "steadier on a shared machine; use with --threads 1 to compare configurations",
    )
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    peak = matmul_peak(args.threads, args.seconds)
    print(f"fp32 matmul peak (2048^3 torch.mm, {args.threads} threads): {peak / 1e9:.1f} GFLOP/s")
    if "bf16" in args.precision:
        bpeak = matmul_peak(args.threads, args.seconds, dtype=torch.bfloat16)
        print(f"bf16 matmul (same shape): {bpeak / 1e9:.1f} GFLOP/s (MFU below is vs fp32 peak)")
    header = "| config | params | tokens | precision | compile | GFLOP/step | s/step (median, min) "
    print(f"\nbatch {args.batch}, forward + backward + AdamW + EMA\n")
    print(header + "| videos/s | GFLOP/s | MFU (median, best step) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.configs:
        for precision in args.precision:
            for compile_ in (False, True) if args.compile else (False,):
                flops, analytic, med, best, warm, model = bench(
                    name,
                    CONFIGS[name],
                    args.batch,
                    precision,
                    compile_,
                    args.steps,
                    time.process_time if args.cpu_time else time.perf_counter,
                )
                n = sum(q.numel() for q in model.parameters())
                rate = flops / med
                print(
                    f"| {name} | {n / 1e6:.2f}M | {model.cfg.num_tokens} | {precision} | "
                    f"{'yes' if compile_ else 'no'} | {flops / 1e9:.1f} (analytic "
                    f"{analytic / 1e9:.1f}) | {med:.3f}, {best:.3f} | {args.batch / med:.1f} | "
                    f"{rate / 1e9:.1f} | {rate / peak:.0%}, {flops / best / peak:.0%} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

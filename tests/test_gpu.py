"""The GPU path: every preset's step in bf16 autocast, sampling, the autoencoder, checkpoints
across devices and a torchrun launch, on CUDA (marker `gpu`; skipped where CUDA is absent).

    python -m pytest -m gpu tests/test_gpu.py          # on a GPU machine (benchmarks/gpu_check.sh)
    PHYLAW_TEST_DEVICE=cpu python -m pytest -m gpu tests/test_gpu.py   # the same code on a CPU

Each test compares the device against the CPU where that is exact up to float rounding, so a
tensor left on the wrong device, a dtype that autocast does not reach or a state that does not
survive the move fails here rather than in a researcher's first run.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import safetensors.torch
import torch

from phylaw.data.build import build_split
from phylaw.data.spaces import resolve_split
from phylaw.diffusion import condition_inputs, frame_mask, make_schedule, training_loss
from phylaw.models.autoencoder import AE_PRESETS, Autoencoder, pad_frames
from phylaw.models.dit import DiT
from phylaw.train import get_preset, network_config, override, train
from phylaw.train.ae import reconstruct
from phylaw.train.checkpoint import load_module, read_state
from phylaw.train.config import space_shape
from phylaw.train.generate import Continuation, autocast, generate
from phylaw.train.presets import PRESETS

DEVICE = torch.device(os.environ.get("PHYLAW_TEST_DEVICE", "cuda"))
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        DEVICE.type == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device"
    ),
]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def perturbed(model: torch.nn.Module, seed: int = 0, std: float = 0.02) -> torch.nn.Module:
    """The network with every parameter moved by seeded noise: the zero-initialised output and
    modulation layers would otherwise make every prediction 0 and hide device errors."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * std)
    return model


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu-data")
    build_split(resolve_split("uniform", "train", "40", 0), root / "train", progress=False)
    return root


def small_batch_cfg(name: str):
    """A preset at batch 2; the 128-px latent presets keep their shape (no codec is needed to
    build the network)."""
    return override(get_preset(name), ["run.batch_size=2"])


# ------------------------------------------------------------------------------ every preset
@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_steps_in_bf16_autocast_and_agrees_with_fp32(name):
    cfg = small_batch_cfg(name)
    torch.manual_seed(0)
    model = perturbed(DiT(network_config(cfg))).to(DEVICE)
    sched = make_schedule(cfg.diffusion.schedule, cfg.diffusion.num_steps)
    gen = torch.Generator().manual_seed(1)
    x0 = (torch.rand(2, *space_shape(cfg), generator=gen) * 2 - 1).to(DEVICE)
    noise = torch.randn(x0.shape, generator=gen).to(DEVICE)
    t = torch.tensor([3, sched.num_steps // 2], device=DEVICE)
    cond = condition_inputs(x0, cfg.diffusion.cond_frames)
    seen = {}

    def record(module, inputs, output) -> None:
        seen.setdefault("dtype", output.dtype)

    linear = next(m for m in model.blocks[0].modules() if isinstance(m, torch.nn.Linear))
    hook = linear.register_forward_hook(record)

    def loss_in(precision):
        model.zero_grad(set_to_none=True)
        with autocast(DEVICE, precision):
            loss = training_loss(
                lambda x, tt, c: model(x, tt, c.video, c.mask),
                x0,
                cond,
                t,
                noise,
                sched,
                cfg.diffusion.prediction,
                frame_mask(cond.mask),
            )
        loss.backward()
        return loss.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}

    loss16, grads16 = loss_in("bf16")
    hook.remove()
    loss32, grads32 = loss_in("fp32")
    assert seen["dtype"] == torch.bfloat16, "autocast did not reach the blocks' linears"
    assert loss16.dtype == torch.float32 and torch.isfinite(loss16)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for n, g in grads16.items():
        assert g.dtype == torch.float32 and g.device.type == DEVICE.type, n
        assert torch.isfinite(g).all(), f"non-finite gradient in {n}"
    assert abs(float(loss16 - loss32)) <= 0.05 * float(loss32)
    flat16 = torch.cat([g.flatten() for g in grads16.values()])
    flat32 = torch.cat([g.flatten() for g in grads32.values()])
    assert rel_err(flat16, flat32) < 0.1


@pytest.mark.parametrize("name", list(AE_PRESETS))
def test_every_autoencoder_preset_steps_in_bf16_and_round_trips_like_the_cpu(name):
    cfg = AE_PRESETS[name]
    torch.manual_seed(0)
    cpu = Autoencoder(cfg).eval()
    dev = Autoencoder(cfg).to(DEVICE).eval()
    dev.load_state_dict(cpu.state_dict())
    res = cfg.resolution_px
    gen = torch.Generator().manual_seed(2)
    video = torch.rand(1, 3, 9, res, res, generator=gen) * 2 - 1
    with torch.no_grad():
        ref, _ = cpu(video, sample=False)
        out, post = dev(video.to(DEVICE), sample=False)
    assert out.device.type == DEVICE.type and post.mean.device.type == DEVICE.type
    assert rel_err(out, ref) < 1e-2  # TF32 convolutions on CUDA
    dev.train()
    with autocast(DEVICE, "bf16"):
        recon, post = dev(video.to(DEVICE), noise=torch.randn(post.mean.shape).to(DEVICE))
        loss = (recon.float() - video.to(DEVICE)).square().mean() + 1e-6 * post.kl().mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in dev.parameters() if p.grad is not None)
    # uint8 in, uint8 out, on the CPU, from an autoencoder on the device
    videos = (torch.rand(2, 5, res, res, 3, generator=gen) * 255).to(torch.uint8)
    assert pad_frames(video, cfg.temporal_factor).shape[2] == 9
    back = reconstruct(dev.eval(), videos)
    assert back.dtype == torch.uint8 and back.device.type == "cpu"
    assert tuple(back.shape) == tuple(videos.shape)


# ------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize("sampler", ["ddim", "dpmpp-2m"])  # deterministic given x_T
def test_sampling_on_the_device_matches_the_cpu(sampler):
    cfg = override(get_preset("cpu-tiny"), ["diffusion.sample_steps=4"])
    torch.manual_seed(0)
    cpu = perturbed(DiT(network_config(cfg))).eval()
    dev = perturbed(DiT(network_config(cfg))).to(DEVICE).eval()
    dev.load_state_dict(cpu.state_dict())
    sched = make_schedule(cfg.diffusion.schedule, cfg.diffusion.num_steps)
    gen = torch.Generator().manual_seed(3)
    x0 = torch.rand(3, *space_shape(cfg), generator=gen) * 2 - 1
    noise = torch.randn(x0.shape, generator=gen)
    cond = condition_inputs(x0, cfg.diffusion.cond_frames)
    dev_cond = condition_inputs(x0.to(DEVICE), cfg.diffusion.cond_frames)
    kw = dict(steps=4, sampler=sampler, precision="fp32")
    ref = generate(cpu, cfg, sched, cond, noise, **kw)
    out = generate(dev, cfg, sched, dev_cond, noise, **kw)
    assert out.device.type == DEVICE.type and out.dtype == torch.float32
    assert rel_err(out, ref) < 1e-2
    known = cond.mask.expand_as(x0).bool()
    assert torch.equal(out.cpu()[known], x0[known])  # condition frames re-imposed exactly


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp-2m", "ddpm"])
def test_bf16_sampling_and_the_continuation_on_the_device(sampler):
    cfg = override(
        get_preset("cpu-tiny"), ["diffusion.sample_steps=4", f"diffusion.sampler={sampler}"]
    )
    torch.manual_seed(0)
    model = perturbed(DiT(network_config(cfg))).to(DEVICE).eval()
    videos = (torch.rand(5, 8, 16, 16, 3, generator=torch.Generator().manual_seed(4)) * 255).to(
        torch.uint8
    )
    cont = Continuation(model, cfg, device=DEVICE, batch_size=2, precision="bf16")
    out = cont(videos.numpy(), seeds=[10, 11, 12, 13, 14])
    assert out.dtype == np.uint8 and out.shape == (5, 8, 16, 16, 3)
    assert np.array_equal(out[:, :3], videos.numpy()[:, :3])
    if sampler != "ddpm":  # per-video noise: a video's sample does not depend on its batch
        one = Continuation(model, cfg, device=DEVICE, batch_size=2, precision="fp32")
        five = Continuation(model, cfg, device=DEVICE, batch_size=5, precision="fp32")
        a, b = (c(videos.numpy(), seeds=[10, 11, 12, 13, 14]) for c in (one, five))
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # kernels differ by shape


# ------------------------------------------------------------------------------ checkpoints
def tiny(split, run_device, *sets):
    base = [f"data.train={split / 'train'}", "run.grad_accum=2", "run.ckpt_every=2"]
    base += ["run.keep_last=10", "run.sample_every=0", f"run.device={run_device}"]
    base += ["run.precision=fp32", "optim.decay=constant"]  # lr independent of run.steps
    return override(get_preset("cpu-tiny"), base + list(sets))


def test_a_checkpoint_written_on_the_device_loads_on_the_cpu_and_resumes_on_either(split, tmp_path):
    dev = DEVICE.type
    run = tmp_path / "dev"
    result = train(tiny(split, dev, "run.steps=4"), run, progress=False)
    assert result.step == 4 and next(result.model.parameters()).device.type == dev
    ckpt = run / "checkpoints" / "step_0000004"
    state = read_state(ckpt)
    assert state["step"] == 4
    # weights saved from the device load into a CPU model, bit for bit
    cpu_model = DiT(network_config(tiny(split, "cpu")))
    load_module(cpu_model, ckpt / "model.safetensors")
    live_dev = result.model.state_dict()
    for k, a in cpu_model.state_dict().items():
        assert torch.equal(a, live_dev[k].cpu()), k
    ema = safetensors.torch.load_file(str(ckpt / "ema.safetensors"))
    live = safetensors.torch.load_file(str(ckpt / "model.safetensors"))
    assert all(v.device.type == "cpu" for v in ema.values())
    assert any(not torch.equal(ema[k], live[k]) for k in live)  # the EMA trails the weights
    for k, v in result.ema.state_dict().items():
        assert torch.equal(ema[k], v.cpu()), k
    # resume the device's checkpoint on the CPU, and a CPU checkpoint on the device
    cpu_run = tmp_path / "to-cpu"
    shutil.copytree(run, cpu_run)
    on_cpu = train(tiny(split, "cpu", "run.steps=6"), cpu_run, progress=False)
    assert on_cpu.step == 6 and np.isfinite(on_cpu.loss)
    back = tmp_path / "back"
    shutil.copytree(cpu_run, back)
    on_dev = train(tiny(split, dev, "run.steps=8"), back, progress=False)
    assert on_dev.step == 8 and next(on_dev.model.parameters()).device.type == dev
    # an uninterrupted device run ends near the resumed one: far nearer than either is to
    # the step-4 weights both started from (kernels and TF32 differ by device, so not bitwise)
    straight = train(tiny(split, dev, "run.steps=8"), tmp_path / "straight", progress=False)
    ref, w4 = straight.model.state_dict(), cpu_model.state_dict()
    for k, a in on_dev.model.state_dict().items():
        moved = (ref[k].cpu() - w4[k]).abs().max()
        tol = 0.0 if dev == "cpu" else 0.5 * float(moved) + 1e-6  # one device: bit for bit
        assert (a.cpu() - ref[k].cpu()).abs().max() <= tol, k


def test_torchrun_with_one_process_trains_on_the_device(split, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    cmd += ["-m", "phylaw.cli", "train", "--preset", "cpu-tiny", "--data", str(split / "train")]
    cmd += ["--out", str(tmp_path / "run"), "--quiet"]
    for s in ("run.steps=2", "run.sample_every=0", f"run.device={DEVICE.type}"):
        cmd += ["--set", s]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"on {DEVICE.type}" in proc.stdout
    state = read_state(tmp_path / "run" / "checkpoints" / "step_0000002")
    assert state["step"] == 2 and state["extra"]["world_size"] == 1

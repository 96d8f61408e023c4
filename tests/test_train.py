"""Training: configs and overrides, one step per preset family, exact resume (also after a real
SIGKILL), checkpoints that refuse corruption with one line, and a 2-process DDP step (gloo)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import safetensors.torch
import torch

from phylaw import PhylawError
from phylaw.data.build import build_split
from phylaw.data.spaces import resolve_split
from phylaw.models.autoencoder import Autoencoder, AutoencoderConfig
from phylaw.models.dit import DiT
from phylaw.train import (
    autoencoder_codec,
    config_from_dict,
    config_to_dict,
    get_preset,
    list_checkpoints,
    network_config,
    override,
    train,
)
from phylaw.train.checkpoint import load_module, read_state
from phylaw.train.config import frame_indices, micro_batch, space_shape
from phylaw.train.distributed import step_rows
from phylaw.train.loop import lr_at
from phylaw.train.precision import model_step, probe_precision, resolve_precision

FILES = ("model.safetensors", "ema.safetensors", "optimizer.safetensors")


def tiny_split(root):
    """40 uniform training videos (``root/train``) and 6 OOD ones (``root/ood``)."""
    build_split(resolve_split("uniform", "train", "40", 0), root / "train", progress=False)
    build_split(resolve_split("uniform", "eval-ood", "6", 0), root / "ood", progress=False)
    return root


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return tiny_split(tmp_path_factory.mktemp("train-data"))


def tiny(split, *sets):
    """cpu-tiny on the test split, 6 steps of 2 accumulated micro-batches, one thread."""
    base = [f"data.train={split / 'train'}", "run.steps=6", "run.grad_accum=2", "run.threads=1"]
    base += ["run.ckpt_every=2", "run.keep_last=10", "run.sample_every=3"]
    return override(get_preset("cpu-tiny"), base + list(sets))


def tensors(ckpt):
    return {f: safetensors.torch.load_file(str(ckpt / f)) for f in FILES}


def assert_same_weights(a, b):
    ta, tb = tensors(a), tensors(b)
    for f in FILES:
        assert ta[f].keys() == tb[f].keys()
        for k in ta[f]:
            assert torch.equal(ta[f][k], tb[f][k]), f"{f}:{k} differs"


@pytest.fixture(scope="module")
def reference(split, tmp_path_factory):
    """An uninterrupted 6-step run with a checkpoint every 2 steps."""
    run = tmp_path_factory.mktemp("ref") / "run"
    result = train(tiny(split), run, progress=False)
    assert result.step == 6 and result.stopped == "done"
    return run


# ------------------------------------------------------------------------------ config
def test_overrides_are_type_checked_and_list_the_valid_keys():
    cfg = override(
        get_preset("cpu-uniform"),
        ["optim.lr=3e-4", "model.patch_size=1,4,4", "run.compile=true", "run.steps=1e3"],
    )
    assert cfg.optim.lr == 3e-4 and cfg.model.patch_size == (1, 4, 4)
    assert cfg.run.compile is True and cfg.run.steps == 1000
    with pytest.raises(PhylawError, match="valid keys of optim: optim.lr"):
        override(cfg, ["optim.lrr=1"])
    with pytest.raises(PhylawError, match="valid keys: preset, model.size"):
        override(cfg, ["nope.x=1"])
    with pytest.raises(PhylawError, match="expected an integer"):
        override(cfg, ["run.steps=1.5"])
    with pytest.raises(PhylawError, match="3 comma-separated"):
        override(cfg, ["model.patch_size=1,4"])
    with pytest.raises(PhylawError, match="choose one of: v, x0, eps"):
        override(cfg, ["diffusion.prediction=noise"])
    with pytest.raises(PhylawError, match="not divisible by patch_size"):
        override(cfg, ["model.patch_size=1,5,5"])


def test_config_round_trips_through_json_and_refuses_unknown_keys():
    for name in ("cpu-tiny", "cpu-uniform", "cpu-collision", "paper-XL"):
        cfg = get_preset(name)
        data = json.loads(json.dumps(config_to_dict(cfg)))
        assert config_from_dict(data) == cfg
    data["optim"]["momentum"] = 0.9
    with pytest.raises(PhylawError, match="unknown key"):
        config_from_dict(data)


def test_cpu_presets_keep_the_paper_objective_and_collisions_readable_velocities():
    from phylaw.physics.collision import MIN_PRE_FRAMES
    from phylaw.physics.state import FRAME_DT_S

    for name in ("cpu-uniform", "cpu-parabola", "cpu-collision", "cpu-scenes"):
        cfg = get_preset(name)
        network_config(cfg)  # the model fits the clip
        # what the paper fixes: mask-concatenated given frames, zero-terminal-SNR diffusion
        assert cfg.diffusion.zero_terminal_snr and cfg.diffusion.timesteps == "uniform"
        assert cfg.diffusion.cond_frames == (1 if name == "cpu-scenes" else 3)
    cfg = get_preset("cpu-collision")
    # contact comes no sooner than MIN_PRE_FRAMES frame intervals after t = 0: two given
    # frames always show the balls before it, so both velocities can be read from them
    second_given = frame_indices(cfg)[1]
    assert 0.01 + second_given * FRAME_DT_S < MIN_PRE_FRAMES * FRAME_DT_S


def test_paper_presets_have_table_1_sizes_and_the_paper_latent():
    expected = {"paper-S": 22.5, "paper-XL": 456.0}  # B and L lie between
    for name, millions in expected.items():
        cfg = get_preset(name)
        net = network_config(cfg)
        with torch.device("meta"):
            n = sum(p.numel() for p in DiT(net).parameters())
        assert abs(n / 1e6 - millions) / millions < 0.01, (name, n)
        assert net.input_size == (9, 16, 16) and net.in_channels == 4  # 32 frames -> 1 + 8
        assert cfg.run.batch_size == 256 and cfg.run.steps == 100_000
        assert cfg.diffusion.prediction == "v" and cfg.diffusion.zero_terminal_snr


def test_batches_are_epoch_permutations_and_independent_of_the_rank_split():
    rows = np.concatenate([step_rows(3, k, 8, 20) for k in range(5)])  # 2 epochs
    assert sorted(rows[:20]) == list(range(20)) and sorted(rows[20:40]) == list(range(20))
    assert not np.array_equal(rows[:20], rows[20:40])
    cfg = override(get_preset("cpu-tiny"), ["run.batch_size=8", "run.grad_accum=2"])
    assert micro_batch(cfg, 2) == 2
    with pytest.raises(PhylawError, match="not divisible"):
        micro_batch(cfg, 3)


def test_learning_rate_warms_up_then_decays():
    cfg = override(get_preset("cpu-tiny"), ["optim.warmup_steps=4", "optim.decay=cosine"])
    lrs = [lr_at(k, cfg) for k in range(cfg.run.steps)]
    assert lrs[0] == pytest.approx(cfg.optim.lr / 4) and lrs[3] == pytest.approx(cfg.optim.lr)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))
    assert lrs[-1] >= cfg.optim.lr * cfg.optim.min_lr_ratio
    # a time budget anneals as well: the cosine follows whichever of steps and time is further
    floor = cfg.optim.lr * cfg.optim.min_lr_ratio
    assert lr_at(5, cfg, time_used=1.0) == pytest.approx(floor)
    assert floor < lr_at(5, cfg, time_used=0.5) < lr_at(5, cfg, time_used=0.0)
    assert lr_at(5, cfg, time_used=0.0) == lrs[5]


# ------------------------------------------------------------------------------ one step each
def small_autoencoder():
    """An untrained causal VAE with the paper's compression (8x spatial, 4x temporal)."""
    return Autoencoder(AutoencoderConfig(channels=(8, 8, 8, 8), resolution_px=32))


@pytest.mark.parametrize(
    "preset,sets,codec",
    [
        ("cpu-tiny", [], None),
        ("cpu-uniform", ["run.batch_size=2"], None),
        (
            "paper-S",
            ["run.batch_size=2", "data.resolution_px=32"],
            "autoencoder",
        ),
    ],
)
def test_one_training_step_per_preset_family(split, tmp_path, preset, sets, codec):
    cfg = override(
        get_preset(preset), [f"data.train={split / 'train'}", "run.steps=1", "run.threads=1", *sets]
    )
    cfg = override(cfg, ["run.sample_every=1", "run.sample_count=1", "diffusion.sample_steps=2"])
    if codec == "autoencoder":
        codec = autoencoder_codec(small_autoencoder(), cfg)
    torch.manual_seed(cfg.run.seed)  # as train() does before building the network
    before = DiT(network_config(cfg))
    result = train(cfg, tmp_path / "run", codec=codec, progress=False)
    assert result.step == 1 and np.isfinite(result.loss)
    pairs = zip(before.parameters(), result.model.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_0000001"]
    assert (tmp_path / "run" / "samples" / "step_0000001-train.gif").stat().st_size > 0
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    # the dtype the run trained in is recorded ('auto' resolved; cpu-tiny pins fp32)
    recorded = read_state(list_checkpoints(tmp_path / "run")[-1])["extra"]["precision"]
    assert recorded == "fp32" if preset == "cpu-tiny" else recorded in ("fp32", "bf16")


def test_timestep_sampling_and_loss_weights_reach_the_step(split, tmp_path):
    plain = train(tiny(split, "run.steps=2", "run.sample_every=0"), tmp_path / "a", progress=False)
    sets = ("diffusion.timesteps=logit-normal", "diffusion.loss_weighting=min-snr")
    cfg = tiny(split, "run.steps=2", "run.sample_every=0", *sets)
    weighted = train(cfg, tmp_path / "b", progress=False)
    assert np.isfinite(weighted.loss) and weighted.loss != plain.loss
    pairs = zip(plain.model.parameters(), weighted.model.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)
    with pytest.raises(PhylawError, match="diffusion.timesteps"):
        tiny(split, "diffusion.timesteps=beta")


@pytest.mark.slow
def test_compiled_training_step(split, tmp_path):
    cfg = tiny(split, "run.steps=2", "run.compile=true", "run.sample_every=0")
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.step == 2 and np.isfinite(result.loss)


def test_latent_preset_without_codec_is_refused(split, tmp_path):
    cfg = override(get_preset("paper-S"), [f"data.train={split / 'train'}"])
    with pytest.raises(PhylawError, match="names no autoencoder"):
        train(cfg, tmp_path / "run", progress=False)
    with pytest.raises(PhylawError, match="latent channels, temporal, spatial factor"):
        autoencoder_codec(small_autoencoder(), override(cfg, ["space.spatial_factor=4"]))


# ------------------------------------------------------------------------------ precision probe
def test_precision_probe_picks_the_measured_faster_dtype():
    now = [0.0]

    def clock():
        return now[0]

    def fake(cost):  # a step that costs cost[precision] seconds of the fake clock
        def step(precision):
            now[0] += cost[precision]

        return step

    def probe(cost):
        return probe_precision(fake(cost), repeats=2, clock=clock)

    choice, best = probe({"fp32": 0.01, "bf16": 0.002})
    assert choice == "bf16" and best == pytest.approx({"fp32": 0.01, "bf16": 0.002})
    assert probe({"fp32": 0.005, "bf16": 0.05})[0] == "fp32"
    # near-equal: fp32 (bf16 must be clearly faster to give up fp32's numerics)
    assert probe({"fp32": 0.01, "bf16": 0.0095})[0] == "fp32"
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert (
        resolve_precision("fp32", cpu)[0] == "fp32" and resolve_precision("bf16", cpu)[0] == "bf16"
    )
    assert resolve_precision("auto", cuda)[0] == "bf16"
    slow_bf16 = fake({"fp32": 0.0, "bf16": 1.0})
    assert resolve_precision("auto", cpu, lambda: slow_bf16, "bf16")[0] == "bf16"  # as recorded
    assert resolve_precision("auto", cpu, lambda: None)[0] == "fp32"  # no probe: fp32
    choice, why = resolve_precision("auto", cpu, lambda: lambda precision: None)
    assert choice in ("fp32", "bf16") and "measured" in why


def test_precision_probe_leaves_weights_and_random_streams_alone():
    cfg = get_preset("cpu-tiny")
    torch.manual_seed(0)
    model = DiT(network_config(cfg))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    step = model_step(model, space_shape(cfg), 2, torch.device("cpu"))
    for precision in ("fp32", "bf16"):
        step(precision)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(state, torch.get_rng_state())


# ------------------------------------------------------------------------------ exact resume
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(split, reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    for ckpt in list_checkpoints(run):
        if int(ckpt.name.split("_")[1]) > 2:
            shutil.rmtree(ckpt)
    result = train(tiny(split), run, progress=False)
    assert result.step == 6
    assert_same_weights(run / "checkpoints/step_0000006", reference / "checkpoints/step_0000006")
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and len(steps) == len(set(steps))


KILL_SCRIPT = """
import os, signal, sys
import safetensors.torch
from phylaw.train import get_preset, override, train
from test_train import tiny
import pathlib
real = safetensors.torch.save_file
def save_file(tensors, path, metadata=None):
    real(tensors, path, metadata=metadata)
    if metadata["step"] == "4" and path.endswith("model.safetensors"):
        os.kill(os.getpid(), signal.SIGKILL)  # dies in the middle of writing checkpoint 4
safetensors.torch.save_file = save_file
train(tiny(pathlib.Path(sys.argv[1])), sys.argv[2], progress=False)
"""


def test_a_killed_run_resumes_to_the_same_weights(split, reference, tmp_path):
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(split), str(run)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert [p.name for p in list_checkpoints(run)][-1] == "step_0000002"
    assert list((run / "checkpoints").glob(".step_0000004.tmp-*"))  # the half-written one
    result = train(tiny(split), run, progress=False)
    assert result.step == 6
    assert not list((run / "checkpoints").glob(".step_*"))
    assert_same_weights(run / "checkpoints/step_0000006", reference / "checkpoints/step_0000006")


def test_time_budget_stops_cleanly_with_a_checkpoint(split, tmp_path):
    result = train(tiny(split, "run.max_minutes=1e-9"), tmp_path / "run", progress=False)
    assert result.stopped == "time" and result.step == 1
    assert result.checkpoint.name == "step_0000001"


# ------------------------------------------------------------------------------ checkpoints
def test_corrupt_or_mismatched_checkpoints_give_one_clear_line(split, reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    ckpt = run / "checkpoints/step_0000006"
    state = read_state(ckpt)
    assert state["step"] == 6 and state["config"] == tiny(split)
    assert sorted(p.name for p in ckpt.iterdir()) == sorted([*FILES, "state.json"])  # no pickle

    # a model of another shape
    other = DiT(network_config(override(state["config"], ["model.hidden_size=32"])))
    with pytest.raises(PhylawError, match="does not fit the model: 'x_embedder.weight' is"):
        load_module(other, ckpt / "model.safetensors")
    # resuming the run with another structural config
    with pytest.raises(PhylawError, match="holds a run with another config .*model.depth"):
        train(tiny(split, "model.depth=3"), run, progress=False)
    # a truncated weights file
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(PhylawError, match="corrupt or truncated checkpoint file"):
        load_module(other, ckpt / "model.safetensors")
    with pytest.raises(PhylawError, match=r"step_0000006/model.safetensors is corrupt \(checksum"):
        train(tiny(split, "run.steps=7"), run, progress=False)
    # a flipped byte in the EMA weights, and a garbled state
    ckpt6 = run / "checkpoints/step_0000004"
    data = bytearray((ckpt6 / "ema.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (ckpt6 / "ema.safetensors").write_bytes(bytes(data))
    with pytest.raises(PhylawError, match="ema.safetensors is corrupt"):
        read_state(ckpt6)
    (ckpt6 / "state.json").write_text("{not json")
    with pytest.raises(PhylawError, match="state.json is corrupt"):
        read_state(ckpt6)


# ------------------------------------------------------------------------------ DDP
DDP_SCRIPT = """
import pathlib, sys
import safetensors.torch
import torch.distributed as dist
from phylaw.train import train
from test_train import tiny
result = train(tiny(pathlib.Path(sys.argv[1]), "run.steps=2", "run.sample_every=0"), sys.argv[2],
               progress=False)
rank = int(__import__("os").environ["RANK"])
safetensors.torch.save_file(result.model.state_dict(), f"{sys.argv[2]}/rank{rank}.safetensors")
"""


def test_two_process_ddp_step_on_cpu_matches_one_process(split, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, str(script), str(split), str(tmp_path / "ddp")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = safetensors.torch.load_file(str(tmp_path / "ddp" / "rank0.safetensors"))
    r1 = safetensors.torch.load_file(str(tmp_path / "ddp" / "rank1.safetensors"))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    # the same global batches in one process: the same weights up to float reduction order
    single = train(
        tiny(split, "run.steps=2", "run.sample_every=0"), tmp_path / "one", progress=False
    )
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(r0[k], v, atol=2e-5, rtol=1e-4)
    state = read_state(tmp_path / "ddp" / "checkpoints" / "step_0000002")
    assert state["extra"]["world_size"] == 2

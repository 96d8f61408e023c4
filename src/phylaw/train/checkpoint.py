"""Checkpoints as safetensors plus a JSON state, written atomically, loaded without running code.

Layout of a run directory's checkpoints::

    RUN/checkpoints/step_0000100/
        model.safetensors      the live weights (the raw network, unwrapped from DDP/compile)
        ema.safetensors        the EMA weights (what samples and evaluations use)
        optimizer.safetensors  AdamW's state, flattened: "<param name>/exp_avg", ".../step"
        state.json             kind ('dit' or 'autoencoder'), step, config, network shape,
                               optimizer hyper-parameters, RNG states (python, numpy, torch,
                               CUDA), SHA-256 of the three files

The DiT and the autoencoder share the format; `kind` says which config class `state["config"]`
is read as (`KINDS`; a state.json without it is a DiT's, as written before the autoencoder
moved to this format).

A checkpoint is assembled in a hidden temporary folder and renamed into place, so a complete
name always holds a complete checkpoint; the newest `keep_last` are kept. `latest_checkpoint`
scans for the highest step. Reading checks each file's SHA-256, the keys and shapes against
the model, and the config; any problem is one `PhylawError` line naming the file. safetensors
holds raw tensors only: nothing is unpickled, so loading never executes code.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import re
import shutil
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

from phylaw import PhylawError, __version__
from phylaw.data.store import read_json, write_json
from phylaw.train.ae_config import AETrainConfig
from phylaw.train.config import TrainConfig
from phylaw.train.config_core import config_to_dict, dict_to_config, json_ready

__all__ = [
    "FORMAT",
    "KINDS",
    "checkpoint_dir",
    "latest_checkpoint",
    "kind_of",
    "list_checkpoints",
    "load_module",
    "load_optimizer",
    "read_state",
    "resolve_checkpoint",
    "restore_rng",
    "rng_state",
    "save_checkpoint",
]

FORMAT = "phylaw-checkpoint"
FORMAT_VERSION = 1
FILES = ("model.safetensors", "ema.safetensors", "optimizer.safetensors")
_STEP_DIR = re.compile(r"^step_(\d+)$")
KINDS: dict[str, type] = {"dit": TrainConfig, "autoencoder": AETrainConfig}  # kind -> config
_KIND_NAMES = {
    "dit": "a DiT run ('phylaw train')",
    "autoencoder": "an autoencoder run ('phylaw train-ae')",
}


def kind_of(cfg: Any) -> str:
    """The kind of run a config describes ('dit' or 'autoencoder')."""
    for kind, cls in KINDS.items():
        if isinstance(cfg, cls):
            return kind
    raise TypeError(f"not a training config: {type(cfg).__name__}")


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    """RUN/checkpoints/step_NNNNNNN for optimizer step `step`."""
    return Path(run_dir) / "checkpoints" / f"step_{step:07d}"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run (those with a state.json), oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and (p / "state.json").is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from a run directory (its latest) or a checkpoint folder itself."""
    path = Path(path)
    if (path / "state.json").is_file():
        return path
    if not path.is_dir():
        raise PhylawError(f"no run or checkpoint at {path}")
    ckpt = latest_checkpoint(path)
    if ckpt is None:
        raise PhylawError(
            f"{path} holds no checkpoint yet; train first with 'phylaw train' (or 'train-ae')"
        )
    return ckpt


# ----------------------------------------------------------------------------------------------
# RNG states as JSON
# ----------------------------------------------------------------------------------------------


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode()


def _unb64(s: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype=np.uint8).copy())


def rng_state() -> dict[str, Any]:
    """This process's python, numpy, torch and CUDA generator states, as JSON data."""
    version, state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (legacy global)
    out: dict[str, Any] = {
        "python": [version, list(state), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": _b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of `rng_state` (CUDA states only where there are as many devices)."""
    version, py, gauss = state["python"]
    random.setstate((version, tuple(py), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = np.asarray(keys, dtype=np.uint32)
    np.random.set_state((name, keys, pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(_unb64(state["torch"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([_unb64(s) for s in cuda])


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}


def optimizer_tensors(
    optimizer: torch.optim.Optimizer, model: nn.Module
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """AdamW's state flattened to {"<param name>/<key>": tensor} and its param groups (JSON)."""
    names = {id(p): n for n, p in model.named_parameters()}
    tensors: dict[str, torch.Tensor] = {}
    groups = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if not torch.is_tensor(value):
                    value = torch.tensor(value)
                tensors[f"{names[id(p)]}/{key}"] = value
        meta = {k: v for k, v in group.items() if k != "params"}
        groups.append(json_ready(dict(meta, params=[names[id(p)] for p in group["params"]])))
    return tensors, groups


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    *,
    model: nn.Module,
    ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: Any,
    network: Any,
    extra: dict[str, Any] | None = None,
    keep_last: int = 3,
) -> Path:
    """Write checkpoint `step` atomically and delete all but the newest `keep_last`.

    model, ema: the raw networks (not DDP or compiled wrappers); cfg: the run's config (a
    `TrainConfig` or an `AETrainConfig`); network: the network's shape (a dataclass, e.g. the
    `DiTConfig`); extra: JSON data kept in state.json (e.g. elapsed time). Returns the folder.
    """
    final = checkpoint_dir(run_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(".step_*.tmp-*"):  # left by a killed writer
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    tmp.mkdir()
    opt_tensors, groups = optimizer_tensors(optimizer, model)
    meta = {"format": FORMAT, "step": str(step)}
    for name, tensors in zip(
        FILES, (model.state_dict(), ema.state_dict(), opt_tensors), strict=True
    ):
        safetensors.torch.save_file(_contiguous(tensors), str(tmp / name), metadata=meta)
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "phylaw_version": __version__,
        "kind": kind_of(cfg),
        "step": step,
        "config": config_to_dict(cfg),
        "network": json_ready(asdict(network) if is_dataclass(network) else network),
        "optimizer": {"class": type(optimizer).__name__, "param_groups": groups},
        "rng": rng_state(),
        "sha256": {name: _sha256(tmp / name) for name in FILES},
        "extra": json_ready(extra or {}),
    }
    write_json(tmp / "state.json", state)
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def read_state(ckpt: str | Path, verify: bool = True, kind: str | None = None) -> dict[str, Any]:
    """state.json of a checkpoint, validated, its config read as the class of its kind;
    `verify` also checks the files' SHA-256; `kind` refuses a checkpoint of another kind."""
    ckpt = Path(ckpt)
    state = read_json(ckpt / "state.json", "checkpoint state")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PhylawError(f"{ckpt / 'state.json'} is not a phylaw checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise PhylawError(
            f"{ckpt} has checkpoint format {state.get('format_version')}, this phylaw reads "
            f"{FORMAT_VERSION}"
        )
    for key in ("step", "config", "network", "sha256", "optimizer", "rng"):
        if key not in state:
            raise PhylawError(f"{ckpt / 'state.json'} lacks {key!r}; the checkpoint is corrupt")
    found = state.setdefault("kind", "dit")
    if found not in KINDS:
        raise PhylawError(f"{ckpt} holds a checkpoint of an unknown kind {found!r}")
    if kind is not None and found != kind:
        raise PhylawError(
            f"{ckpt} is a checkpoint of {_KIND_NAMES[found]}, not {_KIND_NAMES[kind]}"
        )
    where = f"{ckpt / 'state.json'}: config"
    state["config"] = dict_to_config(KINDS[found], state["config"], where)
    if verify:
        for name in FILES:
            path = ckpt / name
            if not path.is_file():
                raise PhylawError(f"checkpoint file missing: {path}")
            if _sha256(path) != state["sha256"].get(name):
                raise PhylawError(
                    f"checkpoint file {path} is corrupt (checksum mismatch); delete {ckpt} "
                    "to fall back to the previous checkpoint"
                )
    return state


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file on the CPU; a clear line if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise PhylawError(f"checkpoint file missing: {path}")
    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except Exception as e:  # SafetensorError and OSError: corrupt, truncated, unreadable
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise PhylawError(f"corrupt or truncated checkpoint file {path} ({msg})") from None


def load_module(module: nn.Module, path: str | Path) -> None:
    """Load a safetensors file into `module`, refusing missing, extra or reshaped tensors."""
    tensors = read_tensors(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has an unknown tensor {extra[0]!r}"
        raise PhylawError(
            f"checkpoint file {path} does not fit the model: it {what} "
            f"({len(missing)} missing, {len(extra)} unknown)"
        )
    for k, v in own.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise PhylawError(
                f"checkpoint file {path} does not fit the model: {k!r} is "
                f"{list(tensors[k].shape)} there, {list(v.shape)} in the model"
            )
    module.load_state_dict(tensors)


_KERNEL_FLAGS = ("fused", "foreach", "capturable", "differentiable")


def load_optimizer(
    optimizer: torch.optim.Optimizer, model: nn.Module, path: str | Path, groups: list[dict]
) -> None:
    """Restore AdamW's state saved by `save_checkpoint` (tensors by parameter name)."""
    tensors = read_tensors(path)
    params = dict(model.named_parameters())
    index = {id(p): i for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])}
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        name, _, field = key.rpartition("/")
        if name not in params:
            raise PhylawError(f"checkpoint file {path} has state for an unknown parameter {name!r}")
        p = params[name]
        if field != "step" and tuple(value.shape) != tuple(p.shape):
            raise PhylawError(
                f"checkpoint file {path} does not fit the model: {key!r} is "
                f"{list(value.shape)}, the parameter {list(p.shape)}"
            )
        state.setdefault(index[id(p)], {})[field] = value
    if len(groups) != len(optimizer.param_groups):
        raise PhylawError(f"checkpoint {path} has {len(groups)} optimizer groups, expected 1")
    saved_groups = []
    for g, live in zip(groups, optimizer.param_groups, strict=True):
        g = dict(g, params=[index[id(params[n])] for n in g["params"]])
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        # hyperparameters come from the checkpoint; how the step is computed (fused kernels,
        # foreach, capturable) stays this device's, so a run moves between CPU and GPU
        saved_groups.append(dict(live, **{k: v for k, v in g.items() if k not in _KERNEL_FLAGS}))
    optimizer.load_state_dict({"state": state, "param_groups": saved_groups})

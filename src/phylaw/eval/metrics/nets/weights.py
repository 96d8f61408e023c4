"""Pretrained weights for the fidelity networks: find the file, read it safely, check it.

The networks of :mod:`phylaw.eval.metrics.nets.lpips` (AlexNet + linear heads) and
:mod:`phylaw.eval.metrics.nets.i3d` (Inception-I3D) need pretrained weights that phylaw does
not ship and never downloads. The user gives a path, either as an argument (the CLI's flag)
or in an environment variable.

Reading a weights file never executes code: a file is read as safetensors, or else with
``torch.load(..., weights_only=True)``, which unpickles tensors and plain containers only.
TorchScript archives (such as stylegan-v's ``i3d_torchscript.pt``) are refused, because loading
one runs the code stored inside it.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from phylaw import PhylawError

__all__ = [
    "resolve_weights_path",
    "read_state_dict",
    "load_checked",
    "merge_lpips_weights",
    "to_safetensors",
]


def resolve_weights_path(path: str | os.PathLike | None, env_var: str, what: str, how: str) -> Path:
    """The weights file to use: ``path`` if given, else the environment variable ``env_var``.

    Args:
        path: a file given by the caller (CLI flag or function argument), or None.
        env_var: the environment variable consulted when ``path`` is None.
        what: a short name for error messages, e.g. "LPIPS".
        how: one sentence saying where to get the weights, appended to error messages.

    Raises:
        PhylawError: when neither is set, or the file does not exist.
    """
    if path is None:
        path = os.environ.get(env_var) or None
    if path is None:
        raise PhylawError(f"no {what} weights given: pass a path or set {env_var}; {how}")
    p = Path(path).expanduser()
    if not p.is_file():
        raise PhylawError(
            f"{what} weights file not found: {p} (pass a path or set {env_var}); {how}"
        )
    return p


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict of tensors from a safetensors file or a weights-only torch file.

    A torch file holding ``{"state_dict": {...}}`` is unwrapped. Nothing in the file is
    executed: TorchScript archives and pickles with arbitrary objects are refused.

    Raises:
        PhylawError: when the file is neither format, or holds no mapping of names to tensors.
    """
    p = Path(path)
    try:
        return dict(load_file(str(p), device="cpu"))
    except Exception:  # not safetensors: try a weights-only torch pickle below
        pass
    if _is_torchscript(p):
        raise PhylawError(
            f"{p} is a TorchScript archive, refused because loading it runs code: give a state "
            "dict instead (safetensors, or a torch.save of model.state_dict())"
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        why = (str(e).splitlines() or [""])[0][:120]
        raise PhylawError(
            f"cannot read weights {p}: neither safetensors nor a weights-only torch state dict "
            f"({type(e).__name__}: {why})"
        ) from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise PhylawError(f"weights file {p} does not hold a state dict (names -> tensors)")
    return dict(obj)


def _is_torchscript(p: Path) -> bool:
    """True for a TorchScript zip archive (it carries ``code/`` and ``constants.pkl``)."""
    if not zipfile.is_zipfile(p):
        return False
    with zipfile.ZipFile(p) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def load_checked(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str, source: str
) -> None:
    """Load ``state`` into ``module`` after checking every name and shape.

    ``num_batches_tracked`` counters of batch norms are optional (old checkpoints lack them).
    Tensors are cast to the module's dtypes.

    Raises:
        PhylawError: listing (up to three) missing, unexpected or mis-shaped entries.
    """
    own = module.state_dict()
    optional = {k for k in own if k.endswith("num_batches_tracked")}
    missing = sorted(set(own) - set(state) - optional)
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise PhylawError(f"{what} weights {source} do not fit the network: {'; '.join(parts)}")
    bad = [
        f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}"
        for k, v in state.items()
        if tuple(v.shape) != tuple(own[k].shape)
    ]
    if bad:
        raise PhylawError(f"{what} weights {source} have wrong shapes: {'; '.join(bad[:3])}")
    full = {k: state[k].to(own[k].dtype) if k in state else own[k] for k in own}
    module.load_state_dict(full, strict=True)


def to_safetensors(state: Mapping[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Write a state dict as safetensors, atomically (temporary file, then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp))
    os.replace(tmp, p)
    return p


def merge_lpips_weights(
    alexnet_path: str | os.PathLike, lin_path: str | os.PathLike, out_path: str | os.PathLike
) -> Path:
    """Merge torchvision's AlexNet and lpips' v0.1 linear heads into one LPIPS safetensors file.

    Args:
        alexnet_path: torchvision's ImageNet AlexNet, ``alexnet-owt-7be5be79.pth``
            (https://download.pytorch.org/models/alexnet-owt-7be5be79.pth); its
            ``features.{0,3,6,8,10}.{weight,bias}`` are kept, the classifier dropped.
        lin_path: lpips' ``weights/v0.1/alex.pth`` (in the ``lpips`` wheel, or
            https://github.com/richzhang/PerceptualSimilarity, ``lpips/weights/v0.1/alex.pth``);
            its ``lin{0..4}.model.1.weight`` are kept.
        out_path: the safetensors file to write; point ``PHYLAW_LPIPS_WEIGHTS`` at it.

    Both inputs are read without executing code (safetensors or weights-only torch.load).
    """
    alex = read_state_dict(alexnet_path)
    lin = read_state_dict(lin_path)
    feats = {k: v for k, v in alex.items() if k.startswith("features.")}
    heads = {k: v for k, v in lin.items() if k.startswith("lin")}
    if len(feats) != 10 or len(heads) != 5:
        raise PhylawError(
            f"expected 10 AlexNet feature tensors in {alexnet_path} and 5 lpips heads in "
            f"{lin_path}, found {len(feats)} and {len(heads)}: are the two files swapped?"
        )
    return to_safetensors({**feats, **heads}, out_path)

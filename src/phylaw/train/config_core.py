"""What every training config shares: the `optim` and `run` sections, and the typed machinery.

A training config is a frozen dataclass whose fields are sections (frozen dataclasses with a
documented default on every field): `train.config.TrainConfig` for the DiT,
`train.ae_config.AETrainConfig` for the autoencoder. Both end in the same two sections,
`OptimConfig` and `RunConfig`, which the training loop (`train.loop`) reads; the others belong
to the task. The same functions serve both:

    override(cfg, ["optim.lr=3e-4", "model.patch_size=1,4,4"])   # `--set`, type-checked
    config_to_dict(cfg) / dict_to_config(TrainConfig, data)     # JSON round trip
    config_diff(old, new)                                         # 'key: a -> b' lines

`override` applies all its assignments at once, so fields that must agree (`model.channels` and
`model.temporal_down`, `data.resolution_px` and `model.patch_size`) can change together. A
section may declare `LINKED = {"size": ("depth", ...)}`: assigning `size` resets the listed
fields to their defaults, from which the section derives them again (`model.size=DiT-B` brings
DiT-B's widths), unless they are assigned in the same call (`model.depth=6` wins wherever it
stands). A root config declares `FIXED`, the key prefixes that
define a run (a run directory or checkpoint differing in them is another run).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

from phylaw import PhylawError

__all__ = [
    "OptimConfig",
    "RunConfig",
    "choice",
    "config_diff",
    "config_to_dict",
    "dict_to_config",
    "fixed_changes",
    "json_ready",
    "micro_batch",
    "override",
    "positive",
    "valid_keys",
]

PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 on CUDA; on a CPU a measured probe decides
LR_DECAYS = ("constant", "cosine")


def choice(value: str, valid: tuple[str, ...] | list[str], key: str) -> None:
    """Refuse `value` unless it is one of `valid`, listing them."""
    if value not in valid:
        raise PhylawError(f"invalid {key} {value!r}; choose one of: {', '.join(valid)}")


def positive(key: str, value: float, zero_ok: bool = False) -> None:
    """Refuse a negative `value` (and zero unless `zero_ok`)."""
    if value < 0 or (value == 0 and not zero_ok):
        raise PhylawError(f"invalid {key} {value!r}: must be {'>= 0' if zero_ok else '> 0'}")


# ----------------------------------------------------------------------------------------------
# The sections every training run has
# ----------------------------------------------------------------------------------------------


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
    # EMA of the weights, warmed up as min(d, (1 + n) / (10 + n)); 0: the EMA is the live model
    ema_decay: float = 0.9999

    def __post_init__(self) -> None:
        positive("optim.lr", self.lr)
        positive("optim.warmup_steps", self.warmup_steps, zero_ok=True)
        positive("optim.grad_clip", self.grad_clip, zero_ok=True)
        positive("optim.weight_decay", self.weight_decay, zero_ok=True)
        choice(self.decay, LR_DECAYS, "optim.decay")
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
    # 'auto' (bf16 autocast on CUDA; on a CPU whichever a short probe of the network measures
    # faster, train.precision), 'bf16', 'fp32'
    precision: str = "auto"
    compile: bool = False  # torch.compile the network
    device: str = "auto"  # 'auto' (cuda:LOCAL_RANK if present, else cpu), 'cpu', 'cuda'
    threads: int = 0  # torch CPU threads; 0 = torch's default
    log_every: int = 50  # steps between logged scalars (loss, lr, grad norm, samples/s)
    ckpt_every: int = 1000  # steps between checkpoints (one is also written at the end)
    keep_last: int = 3  # checkpoints kept
    sample_every: int = 5000  # steps between sample GIFs; 0 = none
    sample_count: int = 4  # videos per sample GIF
    eval_every: int = 0  # steps between quick evaluations (an evaluator given to train); 0 = none
    eval_videos: int = 64  # videos per evaluation split in a quick evaluation
    # stop cleanly (with a checkpoint) after this much time, summed over resumes; the cosine
    # learning rate then anneals over the budget as well as over `steps`; 0 = none
    max_minutes: float = 0.0

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "grad_accum", "log_every", "ckpt_every", "keep_last"):
            positive(f"run.{key}", getattr(self, key))
        positive("run.eval_videos", self.eval_videos)
        for key in ("threads", "sample_every", "sample_count", "eval_every", "max_minutes"):
            positive(f"run.{key}", getattr(self, key), zero_ok=True)
        choice(self.precision, PRECISIONS, "run.precision")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise PhylawError(f"invalid run.device {self.device!r}; use auto, cpu or cuda")


def micro_batch(cfg: Any, world_size: int) -> int:
    """Videos per rank per micro-step: batch_size / (world_size * grad_accum), exactly."""
    parts = world_size * cfg.run.grad_accum
    if cfg.run.batch_size % parts:
        raise PhylawError(
            f"run.batch_size {cfg.run.batch_size} is not divisible by {world_size} rank(s) x "
            f"run.grad_accum {cfg.run.grad_accum}; pick a multiple of {parts}"
        )
    return cfg.run.batch_size // parts


# ----------------------------------------------------------------------------------------------
# `--set` overrides
# ----------------------------------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    """{field name: resolved type} of a dataclass (class variables left out)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def valid_keys(cls: type) -> list[str]:
    """Every settable key of the config class `cls`: 'section.field' (and top-level fields)."""
    keys = []
    for name, hint in _hints(cls).items():
        keys += [f"{name}.{g.name}" for g in fields(hint)] if is_dataclass(hint) else [name]
    return keys


def _expected(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        example = {bool: "true,false", float: "0.5,1.5"}.get(args[0], "16,32,64")
        return f"comma-separated values of {_expected(args[0])}, e.g. {example}"
    if typing.get_origin(hint) is tuple:
        return f"{len(args)} comma-separated values, e.g. {','.join(['1'] * len(args))}"
    names = {bool: "true or false", int: "an integer", float: "a number"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _parse(text: str, hint: Any, key: str) -> Any:
    """Parse `text` as a value of type `hint` (int, float, bool, str, tuple[...])."""
    try:
        if hint is bool:
            low = text.strip().lower()
            if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError
            return low in ("1", "true", "yes", "on")
        if hint is int:
            value = float(text)
            if value != int(value):
                raise ValueError
            return int(value)
        if hint is float:
            return float(text)
        if hint is str:
            return text
        if typing.get_origin(hint) is tuple:
            parts = [p for p in text.strip().strip("()[]").replace(" ", "").split(",") if p]
            args = typing.get_args(hint)
            if len(args) == 2 and args[1] is Ellipsis:
                args = (args[0],) * len(parts)
            if not parts or len(parts) != len(args):
                raise ValueError
            return tuple(_parse(p, a, key) for p, a in zip(parts, args, strict=True))
    except (ValueError, PhylawError):
        pass
    raise PhylawError(f"invalid value {text!r} for {key}: expected {_expected(hint)}")


def _split(item: str, cls: type) -> tuple[str, str, str]:
    """'section.field=value' -> (section, field, value) checked against `cls` ('' field for a
    top-level key)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep:
        raise PhylawError(f"invalid --set {item!r}: write KEY=VALUE, e.g. optim.lr=3e-4")
    section, _, name = key.partition(".")
    hints = _hints(cls)
    if section not in hints or is_dataclass(hints[section]) != bool(name):
        raise PhylawError(f"unknown key {key!r}; valid keys: {', '.join(valid_keys(cls))}")
    if name and name not in _hints(hints[section]):
        valid = ", ".join(f"{section}.{n}" for n in _hints(hints[section]))
        raise PhylawError(f"unknown key {key!r}; valid keys of {section}: {valid}")
    return section, name, text


def _assign(section: Any, values: dict[str, tuple[Any, str]]) -> Any:
    """`section` with `values` ({field: (value, key)}) set at once, resetting the fields that
    an assigned field is LINKED to unless they are assigned too."""
    links = getattr(type(section), "LINKED", {})
    linked = {f for name in values for f in links.get(name, ())}
    defaults = {f.name: f.default for f in fields(section) if f.name in linked - set(values)}
    try:
        return replace(section, **defaults, **{name: v for name, (v, _) in values.items()})
    except ValueError as e:  # a section from outside train (models.*) checks with ValueError
        keys = ", ".join(key for _, key in values.values())
        raise PhylawError(f"invalid {keys}: {e}") from None


def override(cfg: Any, assignments: list[str]) -> Any:
    """Apply 'section.field=value' assignments (as `--set`) to the config `cfg`, each
    type-checked, all at once (so fields that must agree can change together; a later
    assignment of the same key wins). An unknown key or a value of the wrong type raises
    PhylawError listing what is valid."""
    hints = _hints(type(cfg))
    changes: dict[str, Any] = {}
    sections: dict[str, dict[str, tuple[Any, str]]] = {}
    for item in assignments:
        section, name, text = _split(item, type(cfg))
        if not name:
            changes[section] = _parse(text, hints[section], section)
            continue
        key = f"{section}.{name}"
        value = _parse(text, _hints(hints[section])[name], key)
        sections.setdefault(section, {})[name] = (value, key)
    for section, values in sections.items():
        changes[section] = _assign(getattr(cfg, section), values)
    return replace(cfg, **changes)


# ----------------------------------------------------------------------------------------------
# Serialisation and comparison
# ----------------------------------------------------------------------------------------------


def json_ready(obj: Any) -> Any:
    """`obj` with tuples turned into lists, recursively (what JSON holds)."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    return obj


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON-able data (tuples become lists)."""
    return json_ready(dataclasses.asdict(cfg))


def _value(hint: Any, value: Any, where: str) -> Any:
    if typing.get_origin(hint) is tuple and isinstance(value, list):
        return tuple(value)
    wrong = isinstance(hint, type) and not isinstance(value, hint)
    if wrong and not (hint is float and isinstance(value, int) and not isinstance(value, bool)):
        raise PhylawError(f"{where}: expected {hint.__name__}, got {value!r}")
    return float(value) if hint is float else value


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise PhylawError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    unknown = set(data) - set(hints)
    if unknown:
        raise PhylawError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} (written by another version, "
            "or another kind of run?)"
        )
    kwargs = {}
    for name, value in data.items():
        hint, at = hints[name], f"{where}.{name}"
        kwargs[name] = _build(hint, value, at) if is_dataclass(hint) else _value(hint, value, at)
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise PhylawError(f"{where}: {e}") from None


def dict_to_config(cls: type, data: dict[str, Any], where: str = "config") -> Any:
    """The config of class `cls` from `config_to_dict` data; refuses unknown keys and wrong
    types with one line."""
    return _build(cls, data, where)


def config_diff(a: Any, b: Any, sections: tuple[str, ...] | None = None) -> list[str]:
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


def fixed_changes(old: Any, new: Any) -> list[str]:
    """The differences between two configs in the keys that define a run (`FIXED`)."""
    fixed = tuple(type(new).FIXED)
    return [c for c in config_diff(old, new) if c.split(":")[0].startswith(fixed)]

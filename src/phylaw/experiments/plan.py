"""Typed experiment plans: stages named by a hash of what they compute.

An experiment is a function ``plan(scale) -> Plan``. A `Stage` is one unit of work of a known
kind, a frozen dataclass per kind (`experiments.kinds`): build a split, train, sample, write a
baseline's videos, evaluate, train an autoencoder, measure reconstructions. Its fields are of
three sorts, told apart by their metadata:

* settings: every value that changes the stage's output, typed, with a documented default;
* inputs (``input_field``): the names of the stages whose directories it reads;
* the rest (``plan_field``): the time estimate and the cluster resources, which say where and
  how fast a stage runs, never what it computes.

The stage's key, ``{kind}-{hash}``, hashes its kind, its settings and the keys of its inputs:

* the same work in two experiments (the uniform 30K training split, say) is one directory;
* a changed setting anywhere upstream gives a new key downstream: nothing stale is reused;
* running on another cluster, or with more GPUs, reuses what is finished.

Stages live in ``OUT/stages/{key}/``; a finished stage has ``done.json`` there (see `runner`).
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import Any, ClassVar

from phylaw import PhylawError

__all__ = [
    "Plan",
    "Resources",
    "Stage",
    "added_field",
    "input_field",
    "plan_field",
    "scale_settings",
    "stage_keys",
]

_INPUT, _PLAN = "input", "plan"  # field roles (metadata["role"]); settings have none
_ADDED = "added"  # a setting keyed only away from its default (``added_field``)


def input_field(default: str | None = None, *, required: bool = True) -> Any:
    """A field naming the stage that produces one input (``None``: an optional input unused)."""
    if required:
        return field(metadata={"role": _INPUT})
    return field(default=default, metadata={"role": _INPUT})


def added_field(default: Any) -> Any:
    """A setting added to a kind after plans had run: left out of the stage key while it
    holds its default, so the stages of those plans keep their keys (and their directories)."""
    return field(default=default, metadata={_ADDED: True})


def plan_field(default: Any) -> Any:
    """A field about how the stage runs (estimate, resources): not part of the stage key."""
    return field(default=default, metadata={"role": _PLAN})


@dataclass(frozen=True)
class Resources:
    """What one cluster job of a stage asks for (`experiments.cluster`); never in the key.

    A training stage starts one rank per GPU on each of ``nodes`` machines (``torchrun``'s
    layout); every other stage is one process. A job that reaches ``time_min`` is requeued
    and resumes from what its stage left on disk.
    """

    nodes: int = 1  # machines (training only: DDP across them)
    gpus_per_node: int = 0  # GPUs per machine; training runs one rank per GPU
    tasks_per_node: int = 0  # processes per machine; 0: one per GPU for training, else 1
    cpus_per_task: int = 2  # CPU cores per process (data stages use them as build workers)
    mem_gb: int = 16  # memory per machine
    time_min: int = 0  # wall-clock limit per job; 0: twice the stage's estimate, at least 10
    partition: str = ""  # Slurm partition; "": the one given on the command line, or the default

    def __post_init__(self) -> None:
        for name in ("nodes", "cpus_per_task", "mem_gb"):
            if getattr(self, name) < 1:
                raise PhylawError(f"resources: {name} must be 1 or more")
        for name in ("gpus_per_node", "tasks_per_node", "time_min"):
            if getattr(self, name) < 0:
                raise PhylawError(f"resources: {name} must be 0 or more")


@dataclass(frozen=True)
class Stage:
    """One unit of work; ``name`` is unique within its plan and used by inputs and reports.

    Subclasses (one per kind, `experiments.kinds`) set ``kind`` and add their typed settings
    and inputs as keyword-only fields.
    """

    kind: ClassVar[str] = ""
    name: str
    _: KW_ONLY
    minutes: float = plan_field(1.0)  # estimated minutes on the plan's machine (the ETA)
    resources: Resources = plan_field(Resources())  # what a cluster job of it asks for

    def __post_init__(self) -> None:
        if not self.kind:
            raise PhylawError("a stage is one of the kinds in experiments.kinds, not a Stage")
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value, hint = getattr(self, f.name), hints[f.name]
            if not _is_instance(value, hint):
                raise PhylawError(f"stage {self.name!r}: {f.name} = {value!r} is not {hint}")
            if isinstance(value, int) and _is_instance(0.5, hint):  # one spelling per number
                object.__setattr__(self, f.name, float(value))

    @property
    def needs(self) -> dict[str, str]:
        """Input role -> the name of the stage producing it (optional inputs left out)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.metadata.get("role") == _INPUT and getattr(self, f.name) is not None
        }

    def settings(self) -> dict[str, Any]:
        """The values that define the stage's output, JSON-able (tuples as lists)."""
        out = {}
        for f in fields(self):
            if f.name != "name" and "role" not in f.metadata:
                value = getattr(self, f.name)
                if f.metadata.get(_ADDED) and value == f.default:
                    continue
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _is_instance(value: Any, hint: Any) -> bool:
    """``isinstance`` for the annotations stages use: classes, ``X | None``, tuple[X, ...]."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is_instance(value, h) for h in typing.get_args(hint))
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, tuple) and all(_is_instance(v, item) for v in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


@dataclass(frozen=True)
class Plan:
    """What an experiment runs, in order, and what its report shows."""

    name: str
    title: str
    scale: str
    note: str  # what this scale changes from the paper, said in the report
    stages: tuple[Stage, ...]
    # the report: methods compared in its tables, {label: {"id"|"ood": evaluate stage name}};
    # showcase videos, (label, sample stage, its evaluate stage, its data stage);
    # verdict(summaries) -> (text, reproduced or None), summaries shaped like `methods`;
    # figures(paths) -> [(caption, matplotlib Figure)], paths: stage name -> directory;
    # tables(paths) -> [eval.report.Table]: the plan's own tables;
    # animations(paths) -> [(caption, GIF bytes)]: the plan's own animations;
    # finding(paths) -> (text, reproduced or None): the verdict from the stages' directories
    # (for plans whose finding is not a table of summaries: the Sec. 5 studies)
    methods: dict[str, dict[str, str]] = field(default_factory=dict)
    showcase: tuple[tuple[str, str, str, str], ...] = ()
    verdict: Callable[[dict], tuple[str, bool | None]] | None = None
    figures: Callable[[dict], list] | None = None
    tables: Callable[[dict], list] | None = None
    animations: Callable[[dict], list] | None = None
    finding: Callable[[dict], tuple[str, bool | None]] | None = None

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise PhylawError(f"plan {self.name}: duplicate stage names")
        seen: set[str] = set()
        for s in self.stages:
            missing = [n for n in s.needs.values() if n not in seen]
            if missing:
                raise PhylawError(
                    f"plan {self.name}: stage {s.name} needs {missing}, which do not come before it"
                )
            seen.add(s.name)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise PhylawError(f"plan {self.name} has no stage {name!r}")

    @property
    def minutes(self) -> float:
        return sum(s.minutes for s in self.stages)


def scale_settings(experiment: str, scales: dict[str, Callable[[], Any]], scale: str) -> Any:
    """The settings of ``experiment`` at ``scale``: ``scales[scale]()``, listing the valid
    names when ``scale`` is not one."""
    if scale not in scales:
        raise PhylawError(
            f"{experiment} has no scale {scale!r}; choose one of: {', '.join(scales)}"
        )
    return scales[scale]()


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def stage_keys(plan: Plan) -> dict[str, str]:
    """Stage name -> ``{kind}-{hash of kind, settings and the keys of its inputs}``."""
    keys: dict[str, str] = {}
    for s in plan.stages:
        inputs = {role: keys[name] for role, name in sorted(s.needs.items())}
        keys[s.name] = f"{s.kind}-{_digest([s.kind, s.settings(), inputs])}"
    return keys

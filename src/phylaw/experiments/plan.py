"""Typed experiment plans: stages with resolved configs, named by a hash of what they compute.

An experiment is a function ``plan(scale) -> Plan``. A `Stage` is one unit of work of a known
kind (`STAGE_KINDS`): build a split, train, sample, write a baseline's videos, evaluate, train an
autoencoder, measure reconstructions. Its ``config`` holds every setting that changes its output
(JSON-able), and ``needs`` maps each input role to the stage that produces it. The stage's key,
``{kind}-{hash}``, hashes its kind, config and the keys of its inputs, so

* the same work in two experiments (the uniform 30K training split, say) is one directory;
* a changed setting anywhere upstream gives a new key downstream: nothing stale is reused.

Stages live in ``OUT/stages/{key}/``; a finished stage has ``done.json`` there (see `runner`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phylaw import PhylawError

__all__ = ["STAGE_KINDS", "Plan", "Stage", "stage_keys"]

# kind -> what its directory holds
STAGE_KINDS = {
    "data": "a split of states (phylaw data build)",
    "train": "a training run: checkpoints, metrics.jsonl, samples (phylaw train)",
    "sample": "generated continuations of a split (phylaw sample)",
    "baseline": "a baseline's videos for a split (phylaw baseline)",
    "evaluate": "videos.jsonl, summary.json, failures.json (phylaw eval)",
    "train-ae": "an autoencoder run (phylaw train-ae)",
    "ae-recon": "velocity errors of reconstructed ground truth against the floor",
}


@dataclass(frozen=True)
class Stage:
    """One unit of work. ``name`` is unique within its plan and used by ``needs`` and reports."""

    name: str
    kind: str
    config: dict[str, Any]
    needs: dict[str, str] = field(default_factory=dict)  # role -> stage name
    minutes: float = 1.0  # estimated minutes on the plan's machine (for the ETA)

    def __post_init__(self) -> None:
        if self.kind not in STAGE_KINDS:
            raise PhylawError(f"unknown stage kind {self.kind!r}; one of {', '.join(STAGE_KINDS)}")


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
    # animations(paths) -> [(caption, GIF bytes)]: the plan's own animations
    methods: dict[str, dict[str, str]] = field(default_factory=dict)
    showcase: tuple[tuple[str, str, str, str], ...] = ()
    verdict: Callable[[dict], tuple[str, bool | None]] | None = None
    figures: Callable[[dict], list] | None = None
    tables: Callable[[dict], list] | None = None
    animations: Callable[[dict], list] | None = None

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


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def stage_keys(plan: Plan) -> dict[str, str]:
    """Stage name -> ``{kind}-{hash of kind, config and the keys of its inputs}``."""
    keys: dict[str, str] = {}
    for s in plan.stages:
        inputs = {role: keys[name] for role, name in sorted(s.needs.items())}
        keys[s.name] = f"{s.kind}-{_digest([s.kind, s.config, inputs])}"
    return keys

"""Run a plan here: each stage once, in order, resumable; then the experiment's report.

    OUT/plan.json              the plan: stages, their keys, settings, inputs, resources and
                               commands
    OUT/stages/{key}/          one directory per stage (shared by plans writing to the same OUT)
    OUT/stages/{key}/done.json written last, atomically: the stage is finished
    OUT/report.html            the experiment's report (see `experiments.report`)

A stage with ``done.json`` is skipped. An unfinished stage is run again by the same library
call, which resumes from what is on disk (builds keep finished shards, training its last
checkpoint, sampling its finished batches). Ctrl-C stops the current stage at a resumable point
and `Interrupted` tells the caller to say so; the same command continues. One progress line per
stage gives the overall ETA from the stages' estimates, rescaled by the time spent so far.
The same directories and skip rule serve the cluster executors (`cluster`, `submit`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from phylaw.data.store import write_json
from phylaw.experiments.plan import Plan, Stage, stage_keys
from phylaw.experiments.stages import Interrupted, command, run_stage

__all__ = [
    "Interrupted",
    "describe",
    "is_done",
    "mark_done",
    "plan_paths",
    "plan_record",
    "run_plan",
]

DONE = "done.json"


def plan_paths(plan: Plan, out: Path) -> dict[str, Path]:
    """Stage name -> its directory under ``out``."""
    return {name: out / "stages" / key for name, key in stage_keys(plan).items()}


def stage_inputs(plan: Plan, paths: dict[str, Path], name: str) -> dict[str, Path]:
    return {role: paths[src] for role, src in plan.stage(name).needs.items()}


def describe(plan: Plan, out: Path) -> str:
    """The plan as text: stages, keys, estimated minutes, state on disk and commands."""
    paths, keys = plan_paths(plan, out), stage_keys(plan)
    lines = [
        f"{plan.name} ({plan.scale} scale): {plan.title}",
        f"{len(plan.stages)} stages, about {plan.minutes / 60:.1f} hours on the plan's machine",
        plan.note,
        "",
    ]
    for k, s in enumerate(plan.stages, 1):
        state = "done" if is_done(paths[s.name]) else "to do"
        lines.append(f"[{k}] {s.name}  ({s.kind}, ~{s.minutes:.1f} min, {state}) {keys[s.name]}")
        lines.append(f"    {command(s, stage_inputs(plan, paths, s.name), paths[s.name])}")
    return "\n".join(lines)


def _fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def plan_record(plan: Plan, out: Path) -> dict:
    """What ``OUT/plan.json`` holds: each stage's key, settings, inputs, resources, command."""
    paths = plan_paths(plan, out)
    return {
        "name": plan.name,
        "scale": plan.scale,
        "title": plan.title,
        "note": plan.note,
        "stages": [
            {
                "name": s.name,
                "kind": s.kind,
                "key": paths[s.name].name,
                "settings": s.settings(),
                "needs": s.needs,
                "resources": asdict(s.resources),
                "command": command(s, stage_inputs(plan, paths, s.name), paths[s.name]),
            }
            for s in plan.stages
        ],
    }


def is_done(stage_dir: Path) -> bool:
    """The skip rule: a stage is finished when its ``done.json`` is there."""
    return (stage_dir / DONE).exists()


def mark_done(stage_dir: Path, seconds: float, result: dict) -> None:
    """Write ``done.json`` (atomically, last): the stage is finished."""
    write_json(stage_dir / DONE, {"seconds": seconds, "result": result})


def run_plan(plan: Plan, out: str | Path, progress: bool = True, report: bool = True) -> Path:
    """Run every unfinished stage of ``plan`` into ``out`` and write the report; returns
    ``out``. Raises `Interrupted` (after a message) when a stage is stopped by Ctrl-C."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = plan_paths(plan, out)
    write_json(out / "plan.json", plan_record(plan, out))
    todo = [s for s in plan.stages if not is_done(paths[s.name])]
    if progress and len(todo) < len(plan.stages):
        print(f"{len(plan.stages) - len(todo)} of {len(plan.stages)} stages already done")
    measured: dict[str, list[float]] = {}  # stage kind -> [seconds spent, seconds estimated]
    for k, s in enumerate(todo, 1):
        if progress:
            eta = _eta(todo[k - 1 :], measured)
            print(
                f"[{k}/{len(todo)}] {s.name} ({s.kind}); about {_fmt_minutes(eta)} left in all",
                flush=True,
            )
        t0 = time.perf_counter()
        try:
            result = run_stage(s, stage_inputs(plan, paths, s.name), paths[s.name], progress)
        except Interrupted:
            if progress:
                print(
                    f"\ninterrupted in stage {s.name}; its state is kept in {paths[s.name]}.\n"
                    "Run the same command again to continue."
                )
            raise
        seconds = time.perf_counter() - t0
        mark_done(paths[s.name], seconds, result)
        got = measured.setdefault(s.kind, [0.0, 0.0])
        got[0], got[1] = got[0] + seconds, got[1] + s.minutes * 60
    if report:
        from phylaw.experiments.report.plan import write_plan_report

        path = write_plan_report(plan, out, paths)
        if progress:
            print(f"report: {path}")
    return out


def _eta(left: list[Stage], measured: dict[str, list[float]]) -> float:
    """Seconds the stages ``left`` should take: each stage's estimate, scaled by how its kind's
    finished stages compared with theirs (a kind not seen yet: the estimate as it is), so
    quick data stages do not shrink the estimate of the training ahead."""
    total = 0.0
    for s in left:
        spent, estimated = measured.get(s.kind, (0.0, 0.0))
        total += s.minutes * 60 * (spent / estimated if estimated else 1.0)
    return total


def stage_result(paths: dict[str, Path], name: str) -> dict:
    """The ``done.json`` record of a finished stage."""
    return json.loads((paths[name] / DONE).read_text())

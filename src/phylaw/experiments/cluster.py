"""A plan as cluster jobs: what each job runs, what it asks for, which jobs must succeed first.

Every unfinished stage is one job, in its stage directory's place (``OUT/stages/{key}``):

* a training stage asks for ``nodes`` machines with one task per GPU, the layout of
  ``torchrun --nnodes N --nproc_per_node G``; each task exports the variables torchrun would
  (`submit`), so `train.distributed` sees the same RANK, WORLD_SIZE and LOCAL_RANK;
* a data stage with ``jobs > 1`` is an array of jobs, each building a contiguous range of the
  split's shards (`data.build.build_shards`), then a finalize job that writes the manifest
  (`data.build.finalize_split`, the bytes of a one-machine build) and ``done.json``;
* every other stage is one process;
* one last job writes the report, after all the others.

A job starts after the jobs of its inputs succeed (Slurm's ``afterok``). A finished stage
(``done.json``) gets no job and holds nobody back; two stages of the same key (the same work
under two names) share one job. Resources come from each stage's `plan.Resources`; the
time limit, when the plan gives none, is twice the estimate (per array task: its share), at
least 10 minutes (an array task: its share, built by ``cpus_per_task`` workers). This module
only forms the jobs; `submit` hands them to submitit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from phylaw import PhylawError
from phylaw.experiments.kinds import DataStage
from phylaw.experiments.plan import Plan, Resources, Stage, stage_keys
from phylaw.experiments.runner import is_done, plan_paths

__all__ = ["Job", "format_jobs", "plan_jobs"]

REPORT = Resources(cpus_per_task=2, mem_gb=16, time_min=60)  # the report's job


@dataclass(frozen=True)
class Job:
    """One cluster job, or one array of jobs, of a plan."""

    name: str  # unique: a stage name, "{stage} [shards]", "{stage} [finalize]" or "report"
    step: str  # "stage", "shards", "finalize" or "report"
    stage: str | None  # the stage it works for (None: the report)
    key: str  # the stage's key (its directory), "" for the report
    nodes: int
    tasks_per_node: int
    gpus_per_node: int
    cpus_per_task: int
    mem_gb: int
    time_min: int
    partition: str  # "": the cluster's default
    after: tuple[str, ...] = ()  # names of the jobs that must succeed first
    shards: tuple[tuple[int, int], ...] = ()  # "shards": each array task's shard-index range


def _time_min(r: Resources, minutes: float, share: int = 1) -> int:
    return r.time_min or max(10, math.ceil(2 * minutes / share))


def _job(name: str, step: str, stage: Stage, key: str, partition: str, **kw) -> Job:
    r = stage.resources
    training = stage.kind == "train"
    tasks = r.tasks_per_node or (max(1, r.gpus_per_node) if training else 1)
    if (r.nodes > 1 or tasks > 1) and not training:
        raise PhylawError(f"stage {stage.name!r}: only training stages run several processes")
    kw.setdefault("time_min", _time_min(r, stage.minutes))
    return Job(
        name,
        step,
        stage.name,
        key,
        nodes=r.nodes,
        tasks_per_node=tasks,
        gpus_per_node=r.gpus_per_node,
        cpus_per_task=r.cpus_per_task,
        mem_gb=r.mem_gb,
        partition=r.partition or partition,
        **kw,
    )


def _shard_ranges(stage: DataStage) -> list[tuple[int, int]]:
    """Contiguous shard-index ranges, one per array task (at most ``stage.jobs``)."""
    from phylaw.data.build import shard_ranges
    from phylaw.experiments.stages import data_spec

    count = len(shard_ranges(data_spec(stage), stage.shard_size))
    tasks = min(stage.jobs, count)
    bounds = [round(k * count / tasks) for k in range(tasks + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _stage_jobs(stage: Stage, key: str, after: tuple[str, ...], partition: str) -> list[Job]:
    """The job of one stage: one, or an array and its finalize job for a sharded split."""
    ranges = _shard_ranges(stage) if isinstance(stage, DataStage) and stage.jobs > 1 else []
    if len(ranges) < 2:
        return [_job(stage.name, "stage", stage, key, partition, after=after)]
    shards = f"{stage.name} [shards]"
    workers = stage.resources.cpus_per_task  # each task builds its shards with this many
    verify = max(30, math.ceil(ranges[-1][1] / 50))  # finalize re-reads every shard
    return [
        _job(shards, "shards", stage, key, partition, after=after, shards=tuple(ranges),
             time_min=_time_min(stage.resources, stage.minutes, len(ranges) * workers)),
        _job(f"{stage.name} [finalize]", "finalize", stage, key, partition, after=(shards,),
             time_min=stage.resources.time_min or verify),
    ]  # fmt: skip


def plan_jobs(plan: Plan, out: Path, partition: str = "") -> list[Job]:
    """The jobs that finish ``plan`` in ``out``, in submission order (inputs first).

    ``partition``: the Slurm partition of every stage whose resources name none.
    """
    keys, paths = stage_keys(plan), plan_paths(plan, out)
    owner: dict[str, str] = {}  # stage key -> the job its dependents wait for
    jobs: list[Job] = []
    for s in plan.stages:
        key = keys[s.name]
        if is_done(paths[s.name]) or key in owner:
            continue
        after = tuple(dict.fromkeys(owner[keys[n]] for n in s.needs.values() if keys[n] in owner))
        new = _stage_jobs(s, key, after, partition)
        owner[key] = new[-1].name
        jobs += new
    report = Job(
        "report",
        "report",
        None,
        "",
        nodes=1,
        tasks_per_node=1,
        gpus_per_node=0,
        cpus_per_task=REPORT.cpus_per_task,
        mem_gb=REPORT.mem_gb,
        time_min=REPORT.time_min,
        partition=partition,
        after=tuple(owner.values()),
    )
    return jobs + [report]


def _hours(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}:00"


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _resources(job: Job) -> str:
    gpus = f", {job.gpus_per_node} GPUs/node" if job.gpus_per_node else ""
    part = f", partition {job.partition}" if job.partition else ""
    return (
        f"{_plural(job.nodes, 'node')} x {_plural(job.tasks_per_node, 'task')}{gpus}, "
        f"{job.cpus_per_task} CPUs/task, {job.mem_gb} GB/node, {_hours(job.time_min)}{part}"
    )


def format_jobs(plan: Plan, jobs: list[Job], executor: str, out: Path) -> str:
    """The jobs as text (``--dry-run``): resources, array sizes and dependencies."""
    stages = sum(1 for j in jobs if j.step in ("stage", "finalize"))
    lines = [
        f"{plan.name} ({plan.scale} scale) on {executor}: {len(jobs)} jobs for {stages} "
        f"unfinished stages of {len(plan.stages)}; stage directories in {out / 'stages'}, "
        f"job logs in {out / 'jobs'}",
        "",
    ]
    number = {j.name: k for k, j in enumerate(jobs, 1)}
    for j in jobs:
        head = f"[{number[j.name]}] {j.name}"
        if j.step == "shards":
            n = sum(b - a for a, b in j.shards)
            head += f": array of {len(j.shards)} jobs sharing {n} shards, each"
        lines.append(f"{head}: {_resources(j)}")
        if j.step == "report" and j.after:
            lines.append(f"    after all {len(j.after)} stages succeed")
        elif j.after:
            lines.append("    after " + ", ".join(f"[{number[a]}] {a}" for a in j.after))
    return "\n".join(lines)

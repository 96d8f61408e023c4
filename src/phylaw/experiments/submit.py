"""Run a plan's jobs (`cluster.plan_jobs`) through submitit: on Slurm, or as local processes.

    phylaw experiment run scaling --scale paper --executor slurm --partition gpu
    phylaw experiment run quickstart --executor submitit-local   # the same jobs, here

With ``slurm`` every job is submitted at once, each with ``--dependency=afterok:`` on the
jobs of its inputs (and ``--kill-on-invalid-dep=yes``, so a failure cancels what depends on
it); the command returns and the jobs write into the same stage directories as a local run.
Submitted job ids are kept in ``OUT/jobs/submitted.json``: running the command again skips
finished stages (``done.json``), waits on jobs still queued or running instead of
submitting them twice, and submits the rest, which resume from what is on disk. A job that
reaches its time limit or is preempted is requeued by submitit (``checkpoint``) and resumes.

``submitit-local`` runs the same job functions as local processes; submitit's local
executor knows no dependencies, so a job is started once the jobs of its inputs have
finished, and the command waits for all of them.

Multi-GPU training: one submitit task per GPU, each exporting RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT from the job's environment before training
(``submitit.helpers.TorchDistributedEnvironment``). Slurm thus starts and binds every rank
(on every node, with no rendezvous of our own), submitit's requeue reaches every rank, and
the training code runs exactly as under torchrun, which sets the same variables.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phylaw import PhylawError
from phylaw.data.store import write_json
from phylaw.experiments.cluster import Job, plan_jobs
from phylaw.experiments.kinds import DataStage
from phylaw.experiments.plan import Plan, Stage
from phylaw.experiments.runner import (
    Interrupted,
    is_done,
    mark_done,
    plan_paths,
    plan_record,
    stage_inputs,
)
from phylaw.experiments.stages import data_spec, run_stage

__all__ = ["SUBMITTED", "StageJob", "submit_plan"]

SUBMITTED = "submitted.json"  # OUT/jobs/: job name and stage key -> Slurm job id
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING"}
MAX_REQUEUES = 10  # time-outs and preemptions a job survives


# ------------------------------------------------------------------ what the jobs run
class _Requeueable:
    """submitit calls ``checkpoint`` on a time-out or preemption: the job is requeued as it
    is, and resumes from what its stage left on disk."""

    def checkpoint(self, *args: Any, **kwargs: Any):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _torchrun_env() -> int:
    """In a job of several tasks, export what torchrun would; returns this task's rank."""
    import submitit

    env = submitit.JobEnvironment()
    if env.num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(
            set_cuda_visible_devices=False, overwrite=True
        )  # every rank sees the node's GPUs and takes cuda:LOCAL_RANK
    return env.global_rank


@dataclass
class StageJob(_Requeueable):
    """Run one stage (every rank of a training stage); rank 0 writes ``done.json``."""

    stage: Stage
    inputs: dict[str, Path]
    out: Path

    def __call__(self) -> dict:
        if is_done(self.out):
            return {}
        rank = _torchrun_env()
        t0 = time.perf_counter()
        result = run_stage(self.stage, self.inputs, self.out, progress=False)
        if rank == 0:
            mark_done(self.out, time.perf_counter() - t0, result)
        return result


@dataclass
class ShardsJob(_Requeueable):
    """Build shards ``first..stop-1`` of a data stage's split (one array task)."""

    stage: DataStage
    out: Path
    first: int
    stop: int
    workers: int

    def __call__(self) -> int:
        from phylaw.data.build import build_shards

        spec = data_spec(self.stage)
        return build_shards(
            spec, self.out, self.first, self.stop, self.workers, self.stage.shard_size, False
        )


@dataclass
class FinalizeJob(_Requeueable):
    """Write the manifest of a split built by an array of `ShardsJob`, then ``done.json``."""

    stage: DataStage
    out: Path

    def __call__(self) -> dict:
        from phylaw.data.build import finalize_split

        if is_done(self.out):
            return {}
        store = finalize_split(data_spec(self.stage), self.out, self.stage.shard_size)
        result = {"videos": len(store)}
        mark_done(self.out, 0.0, result)
        return result


@dataclass
class ReportJob:
    """Write the plan's report once every stage is finished."""

    plan: Plan
    out: Path

    def __call__(self) -> str:
        from phylaw.experiments.report.plan import write_plan_report

        return str(write_plan_report(self.plan, self.out, plan_paths(self.plan, self.out)))


def _callables(plan: Plan, out: Path, job: Job) -> list:
    """What ``job`` runs: one callable, or one per array task."""
    if job.step == "report":
        return [ReportJob(plan, out)]
    stage, path = plan.stage(job.stage), plan_paths(plan, out)[job.stage]
    if job.step == "shards":
        return [ShardsJob(stage, path, a, b, job.cpus_per_task) for a, b in job.shards]
    if job.step == "finalize":
        return [FinalizeJob(stage, path)]
    return [StageJob(stage, stage_inputs(plan, plan_paths(plan, out), stage.name), path)]


# ------------------------------------------------------------------------- submission
def _submitit():
    try:
        import submitit
    except ImportError:
        raise PhylawError(
            "this executor needs submitit: pip install 'phylaw[cluster]' (or use --executor local)"
        ) from None
    return submitit


def _slug(name: str) -> str:
    return "phylaw-" + "".join(c if c.isalnum() or c in "._-" else "-" for c in name)


def _executor(kind: str, folder: Path, job: Job, after: list[str], account: str):
    """A fresh submitit executor for ``job`` (parameters do not carry over between jobs)."""
    submitit = _submitit()
    cluster = "slurm" if kind == "slurm" else "local"
    try:
        ex = submitit.AutoExecutor(
            folder / "%j", cluster=cluster, slurm_max_num_timeout=MAX_REQUEUES
        )
        ex.update_parameters(
            name=_slug(job.name),
            timeout_min=job.time_min,
            mem_gb=job.mem_gb,
            nodes=job.nodes,
            tasks_per_node=job.tasks_per_node,
            cpus_per_task=job.cpus_per_task,
            gpus_per_node=job.gpus_per_node or None,
            slurm_partition=job.partition or None,
            slurm_account=account or None,
            slurm_dependency="afterok:" + ":".join(after) if after else None,
            slurm_additional_parameters={"kill-on-invalid-dep": "yes"} if after else None,
        )
    except RuntimeError as e:  # no srun on this machine
        raise PhylawError(
            f"no Slurm here ({e}); run on a cluster or use --executor local"
        ) from None
    except ValueError as e:  # the local executor: one machine only
        raise PhylawError(f"job {job.name!r} cannot run with --executor {kind}: {e}") from None
    return ex


def _active_ids() -> set[str]:
    """Ids of this user's Slurm jobs still queued or running (array tasks as their array)."""
    import getpass
    import subprocess

    cmd = ["squeue", "-h", "-o", "%i", "-u", getpass.getuser()]
    try:
        lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as e:
        raise PhylawError(f"cannot list the queued jobs (squeue: {e})") from None
    return {line.split("_")[0] for line in lines}


def _live(folder: Path, jobs: list[Job]) -> dict[str, str]:
    """Job name -> the id of the same work submitted before and still queued or running."""
    path = folder / SUBMITTED
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    active = _active_ids()
    found = {j.name: earlier.get(f"{j.key} {j.step}") for j in jobs if j.step != "report"}
    return {name: jid for name, jid in found.items() if jid in active}


def _wait(name: str, handles: list) -> None:
    """Wait for a local job; its failure is one line pointing at its log."""
    for h in handles:
        try:
            h.results()  # every task's (a training job has one per rank)
        except Exception as e:  # submitit re-raises the job's error with its traceback
            last = (str(e).strip().splitlines() or ["failed"])[-1]
            raise PhylawError(f"job {name!r} failed: {last} (log: {h.paths.stderr})") from None


def _prepare(plan: Plan, out: Path, job: Job) -> None:
    """Before an array shares a build: create its directory once, from here."""
    if job.step == "shards":
        from phylaw.data.build import prepare_split

        prepare_split(data_spec(plan.stage(job.stage)), plan_paths(plan, out)[job.stage])


def _record(folder: Path, jobs: list[Job], ids: dict[str, str]) -> None:
    path = folder / SUBMITTED
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update({f"{j.key} {j.step}": ids[j.name] for j in jobs if j.key and j.name in ids})
    write_json(path, record)


def _submit(plan: Plan, out: Path, job: Job, executor: str, after: list[str], account: str):
    """Submit one job (an array for "shards"); returns its submitit handles."""
    _prepare(plan, out, job)
    ex = _executor(executor, out / "jobs", job, after, account)
    try:
        return ex.submit_array(_callables(plan, out, job))
    except RuntimeError as e:  # sbatch refused it
        last = (str(e).strip().splitlines() or ["refused"])[-1]
        raise PhylawError(f"submitting {job.name!r} failed: {last}") from None


def submit_plan(
    plan: Plan,
    out: str | Path,
    executor: str = "slurm",
    partition: str = "",
    account: str = "",
    progress: bool = True,
) -> dict[str, str]:
    """Submit the jobs that finish ``plan`` in ``out``; returns job name -> job id.

    ``executor``: "slurm" (submit everything with dependencies and return) or
    "submitit-local" (local processes; returns when all have finished).
    """
    _submitit()
    out = Path(out)
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    write_json(out / "plan.json", plan_record(plan, out))
    jobs = plan_jobs(plan, out, partition)
    local = executor == "submitit-local"
    ids = {} if local else _live(out / "jobs", jobs)
    handles: dict[str, list] = {}
    try:
        for job in jobs:
            if job.name in ids:
                continue  # the same work is still queued or running
            for name in job.after if local else ():
                _wait(name, handles[name])
            after = [ids[name] for name in job.after]
            handles[job.name] = _submit(plan, out, job, executor, after, account)
            ids[job.name] = handles[job.name][0].job_id.split("_")[0]
            if progress:
                print(f"submitted {job.name} (job {ids[job.name]})", flush=True)
        for name in handles if local else ():
            _wait(name, handles[name])
    except (KeyboardInterrupt, PhylawError) as e:
        for h in (h for hs in handles.values() for h in hs) if local else ():
            h.cancel(check=False)  # Ctrl-C to each local job: its stage stops resumably
        if isinstance(e, KeyboardInterrupt):
            raise Interrupted(
                "stopped while the jobs ran; run the same command to resume"
            ) from None
        raise
    finally:
        if not local:
            _record(out / "jobs", jobs, ids)
    return ids

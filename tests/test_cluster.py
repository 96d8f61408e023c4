"""Plans as cluster jobs: dependencies, resources, shard arrays, and the same outputs as a
local run, through submitit's local executor and (with a stand-in sbatch) its Slurm one."""

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from phylaw.cli import main
from phylaw.experiments import get_plan
from phylaw.experiments.cluster import plan_jobs
from phylaw.experiments.kinds import BaselineStage, DataStage, EvaluateStage
from phylaw.experiments.plan import Plan, Resources
from phylaw.experiments.runner import plan_paths, run_plan
from phylaw.experiments.submit import submit_plan
from test_experiments import tiny_plan

pytest.importorskip("submitit")


def test_jobs_follow_the_plan_and_skip_finished_stages(tmp_path):
    plan = tiny_plan(data_jobs=2)
    jobs = plan_jobs(plan, tmp_path)
    names = [j.name for j in jobs]
    assert names[:2] == ["data train [shards]", "data train [finalize]"]
    shards = jobs[0]
    assert shards.shards == ((0, 2), (2, 4))  # 40 videos in shards of 10, over 2 jobs
    by_name = {j.name: j for j in jobs}
    assert by_name["train"].after == ("data train [finalize]",)
    assert by_name["eval ood"].after == ("sample ood", "data ood")
    for k, job in enumerate(jobs):  # inputs are submitted first
        assert all(names.index(a) < k for a in job.after)
    assert jobs[-1].name == "report" and len(jobs[-1].after) == len(plan.stages)

    paths = plan_paths(plan, tmp_path)
    for name in ("data train", "data ood"):
        paths[name].mkdir(parents=True)
        (paths[name] / "done.json").write_text("{}")
    jobs = {j.name: j for j in plan_jobs(plan, tmp_path)}
    assert "data train [shards]" not in jobs and "data ood" not in jobs
    assert jobs["train"].after == () and jobs["eval ood"].after == ("sample ood",)


def test_paper_dry_run_prints_jobs_resources_and_dependencies(tmp_path, capsys):
    out = tmp_path / "table2"
    args = ["experiment", "run", "combinatorial", "--scale", "paper", "--executor", "slurm"]
    assert main([*args, "--dry-run", "--out", str(out), "--partition", "big"]) == 0
    text = capsys.readouterr().out
    assert "data train 60 [shards]: array of 59 jobs sharing 5940 shards" in text
    assert "train DiT-XL 60: 8 nodes x 8 tasks, 8 GPUs/node" in text
    assert "after [9] data train 60 [finalize], [11] autoencoder" in text
    assert "partition big" in text and "[42] report" in text
    assert not out.exists()  # a dry run writes nothing


def _same_tree(a: Path, b: Path, pattern: str) -> int:
    """Files matching ``pattern`` under ``a`` have the same bytes under ``b``; returns how many."""
    files = sorted(p.relative_to(a) for p in a.rglob(pattern) if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    return len(files)


def _same_outputs(plan, local: Path, jobs: Path) -> None:
    """Every stage finished in the same directory, with the same data, videos and scores."""
    here, there = plan_paths(plan, local), plan_paths(plan, jobs)
    assert {k: v.relative_to(jobs) for k, v in there.items()} == {
        k: v.relative_to(local) for k, v in here.items()
    }
    assert all((p / "done.json").exists() for p in there.values())
    assert _same_tree(local / "stages", jobs / "stages", "*.npy") > 5
    for s in plan.stages:
        if s.kind == "data":  # manifests, shard records, build spec
            assert _same_tree(here[s.name], there[s.name], "*[!e].json") >= 3
        if s.kind == "evaluate":
            a, b = (json.loads((p[s.name] / "summary.json").read_text()) for p in (here, there))
            assert a["overall"] == b["overall"]
    assert (jobs / "report.html").exists()
    assert not list((jobs / "stages").glob("*/shards/.*tmp*"))


def shards_plan() -> Plan:
    """A training split built by 2 array jobs and a finalize job, a nearest-case baseline
    reading it, its scores and the report: the cluster path in a few seconds."""
    d = {"scenario": "uniform", "seed": 0}
    stages = (
        DataStage("data train", split="train", size="40", shard_size=10, jobs=2, **d),
        DataStage("data ood", split="eval-ood", size="6", **d),
        BaselineStage(
            "nearest ood",
            method="nearest-case",
            resolution_px=16,
            frames=8,
            data="data ood",
            train="data train",
        ),  # fmt: skip
        EvaluateStage("eval nearest", videos="nearest ood", data="data ood"),
    )
    return Plan("shards", "a sharded plan", "cpu", "test scale", stages,
                methods={"nearest-case": {"ood": "eval nearest"}})  # fmt: skip


def test_a_plan_gives_the_same_outputs_locally_and_through_submitit(tmp_path):
    plan = shards_plan()
    run_plan(plan, tmp_path / "local", progress=False)
    ids = submit_plan(plan, tmp_path / "jobs", executor="submitit-local", progress=False)
    assert list(ids)[:2] == ["data train [shards]", "data train [finalize]"]
    _same_outputs(plan, tmp_path / "local", tmp_path / "jobs")


@pytest.mark.slow
def test_training_through_submitit_runs_one_rank_per_task(tmp_path):
    """The tiny plan with its training stage as a 2-task job (gloo on CPU): the ranks find
    each other from the variables each task exports, as under torchrun."""
    plan = tiny_plan(data_jobs=2)
    two = Resources(tasks_per_node=2)
    plan = replace(plan, stages=tuple(
        replace(s, resources=two) if s.kind == "train" else s for s in plan.stages))  # fmt: skip
    run_plan(plan, tmp_path / "local", progress=False)
    ids = submit_plan(plan, tmp_path / "jobs", executor="submitit-local", progress=False)
    log = (tmp_path / "jobs" / "jobs" / ids["train"] / f"{ids['train']}_0_log.out").read_text()
    assert "batch 4 (2 rank(s) x 1 x 2)" in log
    _same_outputs(plan, tmp_path / "local", tmp_path / "jobs")


def _fake_slurm(bin_dir: Path, queue: str = "") -> Path:
    """sbatch, srun and squeue stand-ins: sbatch keeps each script and answers a new id."""
    bin_dir.mkdir()
    scripts = bin_dir / "scripts"
    scripts.mkdir()
    tools = {
        "sbatch": f"n=$(ls {scripts} | wc -l); n=$((n + 100))\n"
        f'cp "$1" {scripts}/$n.sh\necho "Submitted batch job $n"\n',
        "srun": "exit 0\n",
        "squeue": f"cat {bin_dir}/queue 2>/dev/null\n",
    }
    for name, body in tools.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (bin_dir / "queue").write_text(queue)
    return scripts


def _directives(script: Path) -> dict[str, str]:
    lines = [x[8:].strip() for x in script.read_text().splitlines() if x.startswith("#SBATCH")]
    return dict(x.lstrip("-").split("=", 1) if "=" in x else (x.lstrip("-"), "") for x in lines)


def test_slurm_jobs_carry_resources_dependencies_and_arrays(tmp_path, monkeypatch):
    scripts = _fake_slurm(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    plan = tiny_plan(data_jobs=2)
    big = Resources(nodes=2, gpus_per_node=4, cpus_per_task=6, mem_gb=100, time_min=90)
    plan = replace(plan, stages=tuple(
        replace(s, resources=big) if s.name == "train" else s for s in plan.stages))  # fmt: skip
    ids = submit_plan(plan, tmp_path / "out", "slurm", "part", "acct", progress=False)
    sb = {name: _directives(scripts / f"{jid}.sh") for name, jid in ids.items()}
    assert sb["data train [shards]"]["array"].startswith("0-1")
    assert sb["data train [finalize]"]["dependency"] == f"afterok:{ids['data train [shards]']}"
    train = sb["train"]
    assert train["dependency"] == f"afterok:{ids['data train [finalize]']}"
    assert train["kill-on-invalid-dep"] == "yes"
    assert (train["nodes"], train["ntasks-per-node"], train["gpus-per-node"]) == ("2", "4", "4")
    assert (train["cpus-per-task"], train["mem"], train["time"]) == ("6", "100GB", "90")
    assert train["partition"] == "part" and train["account"] == "acct"
    deps = sb["eval ood"]["dependency"]
    assert deps == f"afterok:{ids['sample ood']}:{ids['data ood']}"
    assert "dependency" not in sb["data ood"]

    # again while everything is queued: only a new report job, waiting on the queued ones
    (tmp_path / "bin" / "queue").write_text("\n".join(f"{j}_0" for j in ids.values()))
    again = submit_plan(plan, tmp_path / "out", "slurm", progress=False)
    assert {k: v for k, v in again.items() if k != "report"} == {
        k: v for k, v in ids.items() if k != "report"
    }
    assert again["report"] != ids["report"]
    # once they have left the queue unfinished, they are submitted anew
    (tmp_path / "bin" / "queue").write_text("")
    third = submit_plan(plan, tmp_path / "out", "slurm", progress=False)
    assert set(third.values()).isdisjoint(again.values())


def test_cluster_mistakes_are_one_line(tmp_path, capsys, monkeypatch):
    run = ["experiment", "run", "scaling", "--out", str(tmp_path / "x")]
    assert main([*run, "--executor", "kubernetes"]) == 2
    err = capsys.readouterr().err
    assert "unknown executor 'kubernetes'; choose one of: local, slurm" in err
    assert err.count("\n") == 1
    assert main([*run, "--partition", "gpu"]) == 2
    assert "apply to --executor slurm" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "submitit", None)
    assert main([*run, "--executor", "slurm"]) == 2
    assert "needs submitit: pip install 'phylaw[cluster]'" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun here
    assert main([*run, "--executor", "slurm"]) == 2
    assert "no Slurm here" in capsys.readouterr().err
    assert get_plan("scaling", "cpu")  # the plan itself is fine

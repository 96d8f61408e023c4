"""Experiment plans and the runner: hash-named stages, resume after an interruption, reports."""

import json
from dataclasses import replace

import pytest

from phylaw import PhylawError
from phylaw.cli import main
from phylaw.experiments import EXPERIMENTS, get_plan
from phylaw.experiments import stages as stage_mod
from phylaw.experiments.plan import Plan, Stage, stage_keys
from phylaw.experiments.quickstart import verdict
from phylaw.experiments.runner import Interrupted, plan_paths, run_plan


def tiny_plan() -> Plan:
    """Data, a 4-step cpu-tiny run, its samples and a baseline, scored and reported."""
    d = {"scenario": "uniform", "seed": 0}
    train_sets = ["run.steps=4", "run.threads=1", "run.sample_every=0", "run.ckpt_every=2"]
    stages = (
        Stage("data train", "data", {**d, "split": "train", "size": "40"}),
        Stage("data id", "data", {**d, "split": "eval-id", "size": "4"}),
        Stage("data ood", "data", {**d, "split": "eval-ood", "size": "6"}),
        Stage(
            "train",
            "train",
            {"preset": "cpu-tiny", "sets": train_sets},
            {"train": "data train"},
        ),
        Stage("sample id", "sample", {}, {"run": "train", "data": "data id"}),
        Stage("sample ood", "sample", {}, {"run": "train", "data": "data ood"}),
        Stage("eval id", "evaluate", {}, {"videos": "sample id", "data": "data id"}),
        Stage("eval ood", "evaluate", {}, {"videos": "sample ood", "data": "data ood"}),
        Stage(
            "copy-last ood",
            "baseline",
            {"name": "copy-last", "resolution": 16, "frames": 8},
            {"data": "data ood"},
        ),
        Stage("eval copy-last", "evaluate", {}, {"videos": "copy-last ood", "data": "data ood"}),
    )
    return Plan(
        "tiny",
        "a tiny plan",
        "cpu",
        "test scale",
        stages,
        methods={
            "model": {"id": "eval id", "ood": "eval ood"},
            "copy-last": {"ood": "eval copy-last"},
        },
        showcase=(("OOD", "sample ood", "eval ood", "data ood"),),
        verdict=verdict,
    )


def counting(monkeypatch, interrupt_kind=None):
    """Wrap every executor to count its calls; the first stage of ``interrupt_kind`` gets a
    Ctrl-C, once."""
    calls: dict[str, int] = {}
    interrupted = []
    originals = dict(stage_mod.EXECUTORS)

    def wrap(kind, fn):
        def run(stage, inputs, out, progress):
            calls[stage.name] = calls.get(stage.name, 0) + 1
            if kind == interrupt_kind and not interrupted:
                interrupted.append(stage.name)
                raise KeyboardInterrupt
            return fn(stage, inputs, out, progress)

        return run

    for kind, fn in originals.items():
        monkeypatch.setitem(stage_mod.EXECUTORS, kind, wrap(kind, fn))
    return calls


def test_an_interrupted_plan_resumes_without_repeating_finished_stages(tmp_path, monkeypatch):
    plan = tiny_plan()
    calls = counting(monkeypatch, interrupt_kind="sample")
    with pytest.raises(Interrupted):
        run_plan(plan, tmp_path, progress=False)
    paths = plan_paths(plan, tmp_path)
    done = {s.name for s in plan.stages if (paths[s.name] / "done.json").exists()}
    assert done == {"data train", "data id", "data ood", "train"}
    assert not (tmp_path / "report.html").exists()

    run_plan(plan, tmp_path, progress=False)
    assert all(calls[name] == 1 for name in done)  # finished stages were not run again
    assert calls["sample id"] == 2 and all(v == 1 for k, v in calls.items() if k != "sample id")
    assert all((paths[s.name] / "done.json").exists() for s in plan.stages)

    html = (tmp_path / "report.html").read_text()
    for text in ("parse floor", "copy-last", "OOD", "data:image/png;base64", "image/gif"):
        assert text in html
    record = json.loads((tmp_path / "plan.json").read_text())
    assert [s["key"] for s in record["stages"]] == [p.name for p in paths.values()]

    before = dict(calls)
    run_plan(plan, tmp_path, progress=False)  # everything done: nothing runs
    assert calls == before


def test_stage_keys_change_downstream_of_a_changed_setting():
    plan = tiny_plan()
    keys = stage_keys(plan)
    assert len(set(keys.values())) == len(keys)
    changed = list(plan.stages)
    changed[1] = replace(changed[1], config={**changed[1].config, "size": "5"})  # data id
    new = stage_keys(replace(plan, stages=tuple(changed)))
    moved = {name for name in keys if keys[name] != new[name]}
    assert moved == {"data id", "sample id", "eval id"}


def test_plans_are_checked_and_every_registered_experiment_has_a_plan():
    with pytest.raises(PhylawError, match="do not come before it"):
        Plan("bad", "", "cpu", "", (Stage("a", "evaluate", {}, {"videos": "b"}),))
    with pytest.raises(PhylawError, match="unknown stage kind"):
        Stage("a", "paint", {})
    for name in EXPERIMENTS:
        p = get_plan(name, "cpu")
        assert p.stages and p.minutes > 0
    assert get_plan("scaling", "paper").minutes > get_plan("scaling", "cpu").minutes
    with pytest.raises(PhylawError, match="choose one of"):
        get_plan("gravity", "cpu")


def test_verdict_says_plainly_whether_the_finding_was_reproduced():
    def summary(mean, floor=0.001):
        stats = {"velocity_error_mean": {"mean": mean}}
        return {"overall": {"metrics": stats}, "floor": {"overall": {"metrics": {
            "velocity_error_mean": {"mean": floor}}}}}  # fmt: skip

    text, ok = verdict({"model": {"id": summary(0.05), "ood": summary(0.6)}})
    assert ok and text.startswith("Reproduced") and "12.0 times" in text
    text, ok = verdict({"model": {"id": summary(0.3), "ood": summary(0.6)}})
    assert not ok and text.startswith("Not reproduced") and "above 0.1" in text
    text, ok = verdict({"model": {"id": summary(0.05), "ood": summary(0.1)}})
    assert not ok and "less than 5x" in text


def test_cli_experiment_list_show_and_errors(tmp_path, capsys):
    assert main(["experiment", "list"]) == 0
    assert "scaling" in capsys.readouterr().out
    out = tmp_path / "x"
    assert main(["experiment", "show", "scaling", "--scale", "paper", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "torchrun --standalone --nproc_per_node 8" in text and "paper-L" in text
    assert not out.exists()  # show writes nothing
    assert main(["experiment", "run", "nope"]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert main(["experiment", "run", "scaling", "--scale", "huge"]) == 2
    assert main(["experiment", "show"]) == 2
    assert main(["quickstart", "--minutes", "-5", "--out", str(out)]) == 2
    assert "invalid --minutes" in capsys.readouterr().err
    assert main(["quickstart", "--dry-run", "--minutes", "30", "--out", str(out)]) == 0
    assert "phylaw train --preset cpu-uniform" in capsys.readouterr().out

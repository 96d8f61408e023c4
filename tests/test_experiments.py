"""Experiment plans and the runner: hash-named stages, resume after an interruption, reports."""

import json
from dataclasses import replace

import pytest

from phylaw import PhylawError
from phylaw.cli import main
from phylaw.experiments import EXPERIMENTS, get_plan, scaling
from phylaw.experiments import stages as stage_mod
from phylaw.experiments.kinds import (
    BaselineStage,
    DataStage,
    EvaluateStage,
    SampleStage,
    TrainStage,
)
from phylaw.experiments.plan import Plan, Resources, Stage, stage_keys
from phylaw.experiments.quickstart import verdict
from phylaw.experiments.runner import Interrupted, plan_paths, run_plan


def tiny_plan(data_jobs: int = 1) -> Plan:
    """Data, a 4-step cpu-tiny run, its samples and a baseline, scored and reported.

    ``data_jobs`` > 1 spreads the training split (4 shards of 10) over that many cluster jobs.
    """
    d = {"scenario": "uniform", "seed": 0}
    stages = (
        DataStage("data train", split="train", size="40", shard_size=10, jobs=data_jobs, **d),
        DataStage("data id", split="eval-id", size="4", **d),
        DataStage("data ood", split="eval-ood", size="6", **d),
        TrainStage(
            "train",
            preset="cpu-tiny",
            steps=4,
            sets=("run.threads=1", "run.sample_every=0", "run.ckpt_every=2"),
            train="data train",
        ),
        SampleStage("sample id", run="train", data="data id"),
        SampleStage("sample ood", run="train", data="data ood"),
        EvaluateStage("eval id", videos="sample id", data="data id"),
        EvaluateStage("eval ood", videos="sample ood", data="data ood"),
        BaselineStage(
            "copy-last ood", method="copy-last", resolution_px=16, frames=8, data="data ood"
        ),
        EvaluateStage("eval copy-last", videos="copy-last ood", data="data ood"),
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

    def changed(name, **fields):
        stages = tuple(replace(s, **fields) if s.name == name else s for s in plan.stages)
        new = stage_keys(replace(plan, stages=stages))
        return {n for n in keys if keys[n] != new[n]}

    assert changed("data id", size="5") == {"data id", "sample id", "eval id"}
    downstream = {"train", "sample id", "sample ood", "eval id", "eval ood"}
    assert changed("train", steps=5) == downstream
    assert changed("train", cond_frames=2) == downstream
    assert changed("copy-last ood", frame_stride=2) == {"copy-last ood", "eval copy-last"}
    assert changed("eval ood", limit=3) == {"eval ood"}
    # where and how fast a stage runs is not what it computes
    assert changed("train", resources=Resources(nodes=2, gpus_per_node=8), minutes=9.0) == set()
    assert changed("data train", jobs=4) == set()


def test_stages_are_typed():
    with pytest.raises(PhylawError, match="is not"):
        SampleStage("s", steps="10", run="a", data="b")
    with pytest.raises(PhylawError, match="is not"):
        TrainStage("t", preset="cpu-tiny", sets=["run.threads=1"], train="d")  # a list
    with pytest.raises(PhylawError, match="as the field steps"):
        TrainStage("t", preset="cpu-tiny", sets=("run.steps=3",), train="d")
    with pytest.raises(TypeError):
        EvaluateStage("e", videos="v")  # an input is missing
    assert TrainStage("t", preset="p", max_minutes=5, train="d").max_minutes == 5.0  # one spelling
    stage = TrainStage("t", preset="p", steps=4, cond_frames=1, sets=("run.threads=1",), train="d")
    assert stage.overrides() == ["run.seed=0", "run.steps=4", "diffusion.cond_frames=1",
                                 "run.threads=1"]  # fmt: skip
    assert stage.needs == {"train": "d"}


def test_plans_are_checked_and_every_registered_experiment_has_a_plan():
    with pytest.raises(PhylawError, match="do not come before it"):
        Plan("bad", "", "cpu", "", (EvaluateStage("a", videos="b", data="c"),))
    with pytest.raises(PhylawError, match="one of the kinds"):
        Stage("a")
    for name in EXPERIMENTS:
        p = get_plan(name, "cpu")
        assert p.stages and p.minutes > 0
    assert get_plan("scaling", "paper").minutes > get_plan("scaling", "cpu").minutes
    with pytest.raises(PhylawError, match="choose one of"):
        get_plan("gravity", "cpu")
    with pytest.raises(PhylawError, match="no scale 'huge'; choose one of: paper, cpu"):
        get_plan("scaling", "huge")


def test_scales_are_functions_editing_the_papers_settings():
    paper, cpu = scaling.paper(), scaling.cpu()
    assert paper == scaling.Scaling()  # the defaults are the paper's
    assert cpu.eval_id == 96 and cpu.autoencoder is None and cpu.models != paper.models
    trains = [s for s in get_plan("scaling", "paper").stages if isinstance(s, TrainStage)]
    assert {s.resources.gpus_per_node for s in trains} == {8}
    assert all(s.autoencoder and s.autoencoder.startswith("autoencoder ") for s in trains)


def test_verdict_says_plainly_whether_the_finding_was_reproduced():
    def summary(mean, floor=0.001):
        stats = {"velocity_error": {"mean": mean, "count": 64}, "velocity_error_mean": {
            "mean": mean / 2}}  # fmt: skip
        return {"overall": {"metrics": stats, "tracked_fraction": 0.97}, "floor": {"overall": {
            "metrics": {"velocity_error": {"mean": floor}}}}}  # fmt: skip

    text, ok = verdict({"model": {"id": summary(0.05), "ood": summary(0.6)}})
    assert ok and text.startswith("Reproduced") and "12.0 times" in text
    assert "64 videos, tracked 97.0 %" in text and "|mean v - v|: 0.025 ID" in text
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


def test_the_eta_scales_each_stage_kind_by_its_own_measured_pace():
    from phylaw.experiments.kinds import DataStage, TrainStage
    from phylaw.experiments.runner import _eta

    data = DataStage("data", scenario="uniform", split="train", minutes=1.0)
    train = TrainStage("train", preset="cpu-tiny", train="data", minutes=10.0)
    assert _eta([data, train], {}) == 11 * 60  # nothing measured: the estimates
    quick_data = {"data": [6.0, 60.0]}  # data stages ran 10x faster than estimated
    assert _eta([train], quick_data) == 600  # ... which says nothing about training
    assert _eta([data, train], {**quick_data, "train": [1200.0, 600.0]}) == 6 + 1200

"""The Sec. 5 experiments (interpolation-gap, flip-memorization, attribute-priority): each runs
end to end at the tiny scale and renders its report; the paper plans print; the CPU plans fit
their budget; study data stages are checked."""

import re

import pytest

from phylaw import PhylawError
from phylaw.cli import main
from phylaw.experiments import get_plan
from phylaw.experiments.kinds import BaselineStage, DataStage
from phylaw.experiments.runner import run_plan
from phylaw.experiments.stages import data_spec

STUDY_EXPERIMENTS = {  # name -> what its report must show
    "interpolation-gap": ("Figure 5 at this scale", "slope in gap", "gap-2-3", "keep-3"),
    "flip-memorization": (
        "Figure 7 at this scale",
        "reversed",
        "Set-2 (hflip 0.5)",
        "nearest case mirrored",
    ),
    "attribute-priority": (
        "Which attribute wins each pair",
        "colour-ring (A colour, B shape)",
        "all test quadrants",
        "Outcomes per quadrant: nearest-case",
        "image/gif",
    ),
}


@pytest.mark.parametrize("name", list(STUDY_EXPERIMENTS))
def test_study_experiment_runs_end_to_end_and_reports(name, tmp_path):
    plan = get_plan(name, "tiny")
    run_plan(plan, tmp_path, progress=False)
    html = (tmp_path / "report.html").read_text()
    for text in STUDY_EXPERIMENTS[name]:
        assert text in html, text
    verdict = re.search(r"<p class='verdict[^']*'>(.*?)</p>", html, re.S).group(1)
    assert verdict and "Traceback" not in html
    assert re.search(r"\d+\.\d+", html.split("<h2>")[1])  # the first table holds numbers
    assert "data:image/png;base64" in html


@pytest.mark.parametrize("name", list(STUDY_EXPERIMENTS))
def test_paper_plans_print_and_cpu_plans_fit_three_hours(name, tmp_path, capsys):
    out = tmp_path / name
    assert (
        main(["experiment", "run", name, "--scale", "paper", "--dry-run", "--out", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert "torchrun --standalone --nproc_per_node 8" in text and "--preset paper-B" in text
    assert "data.resolution_px=128" in text and "data.frames=32" in text
    assert "diffusion.cond_frames=3" in text and "DiT-B" in text and "--study" in text
    assert "--preset ae-paper" in text and not out.exists()
    assert main(["experiment", "run", name, "--scale", "paper", "--executor", "slurm",
                 "--dry-run", "--out", str(out)]) == 0  # fmt: skip
    assert "8 GPUs/node" in capsys.readouterr().out
    cpu = get_plan(name, "cpu")
    assert cpu.minutes <= 180
    assert {s.preset for s in cpu.stages if s.kind == "train"} == {"cpu-uniform"}


def test_study_data_stages_are_checked():
    with pytest.raises(PhylawError, match="grid applies"):
        DataStage("d", scenario="uniform", split="train", study="gap-2-3", grid="v=3")
    with pytest.raises(PhylawError, match="train or eval"):
        DataStage("d", scenario="uniform", split="eval-ood", study="gap-2-3")
    with pytest.raises(PhylawError, match="fixes its colours"):
        DataStage("d", scenario="uniform", split="train", study="gap-2-3", colours="red")
    stage = DataStage("d", scenario="collision", split="train", study="gap-2-3")
    with pytest.raises(PhylawError, match="uniform study"):
        data_spec(stage)
    spec = data_spec(DataStage("d", scenario="uniform", split="eval", study="flip", grid="v=5,r=2"))
    assert spec.count == 10 and spec.study == "flip"
    mixed = DataStage("d", scenario="uniform", split="train", size="10", shapes="disc,ring")
    assert data_spec(mixed).space.attributes == ("colour", "shape")


def test_a_coarser_study_grid_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "e"
    argv = ["data", "build", "--study", "colour-size", "--split", "eval", "--grid", "r=2,v=3"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "levels: red-small 6, blue-large 6, blue-small 6, red-large 6" in capsys.readouterr().out
    assert main([*argv[:-1], "q=2", "--out", str(tmp_path / "x")]) == 2
    assert "no count for 'q'" in capsys.readouterr().err
    assert main([*argv[:5], "train", "--grid", "r=2", "--out", str(tmp_path / "y")]) == 2


def test_settings_added_for_the_studies_leave_earlier_stage_keys_alone():
    plain = DataStage("d", scenario="uniform", split="train", size="30K")
    assert set(plain.settings()) == {"scenario", "split", "size", "seed", "templates",
                                     "shard_size"}  # fmt: skip
    study = DataStage("d", scenario="uniform", split="train", size="30K", study="gap-2-3")
    assert study.settings()["study"] == "gap-2-3"
    base = BaselineStage("b", method="nearest-case", data="d")
    assert "mirror" not in base.settings()
    assert BaselineStage("b", method="nearest-case", mirror=True, data="d").settings()["mirror"]

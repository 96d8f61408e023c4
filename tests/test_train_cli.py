"""The training command line and the quick evaluation during training (on `test_train`'s
tiny split and config)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.train import config_from_dict, config_to_dict, get_preset, train
from phylaw.train.config import frame_indices
from test_train import tiny, tiny_split


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return tiny_split(tmp_path_factory.mktemp("train-data"))


# ------------------------------------------------------------------------------ CLI
def parser():
    from phylaw.cli import build_parser

    return build_parser()


def test_cli_dry_run_prints_the_resolved_config_and_help_lists_presets(split, tmp_path, capsys):
    args = parser().parse_args(
        ["train", "--preset", "cpu-uniform", "--data", str(split / "train"), "--out",
         str(tmp_path / "r"), "--set", "optim.lr=2e-4", "--minutes", "5", "--dry-run"]
    )  # fmt: skip
    args.handler(args)
    out = capsys.readouterr().out
    cfg = config_from_dict(json.loads(out[: out.index("# network")]))
    assert cfg.optim.lr == 2e-4 and cfg.run.max_minutes == 5 and cfg.data.train.endswith("train")
    pt, ph, _ = cfg.model.patch_size
    tokens = (cfg.data.frames // pt) * (cfg.data.resolution_px // ph) ** 2
    assert f"{tokens} tokens" in out and not (tmp_path / "r").exists()
    with pytest.raises(SystemExit):
        parser().parse_args(["train", "--help"])
    help_text = capsys.readouterr().out
    for name in ("cpu-tiny", "cpu-uniform", "cpu-collision", "paper-S", "paper-XL"):
        assert name in help_text


def dry_run_model(tmp_path, capsys, *argv):
    args = parser().parse_args(["train", "--out", str(tmp_path / "r"), "--dry-run", *argv])
    args.handler(args)
    out = capsys.readouterr().out
    return config_from_dict(json.loads(out[: out.index("# network")])).model


def test_dry_run_shows_the_resolved_widths_of_the_size(tmp_path, capsys):
    m = dry_run_model(tmp_path, capsys, "--preset", "paper-S")
    assert (m.size, m.depth, m.hidden_size, m.num_heads) == ("DiT-S", 12, 384, 6)
    m = dry_run_model(tmp_path, capsys, "--preset", "paper-S", "--set", "model.size=DiT-B")
    assert (m.depth, m.hidden_size, m.num_heads) == (12, 768, 12)  # the new size's widths
    for sets in (["model.size=DiT-B", "model.depth=6"], ["model.depth=6", "model.size=DiT-B"]):
        argv = [a for s in sets for a in ("--set", s)]
        m = dry_run_model(tmp_path, capsys, "--preset", "paper-S", *argv)
        assert (m.depth, m.hidden_size, m.num_heads) == (6, 768, 12)  # an explicit width wins
    m = dry_run_model(tmp_path, capsys, "--preset", "cpu-tiny")
    assert (m.depth, m.hidden_size, m.num_heads) == (2, 64, 2)
    assert config_from_dict(config_to_dict(get_preset("paper-XL"))).model.depth == 28
    old = config_to_dict(get_preset("paper-S"))  # a config.json written before: widths 0
    old["model"].update(depth=0, hidden_size=0, num_heads=0)
    assert config_from_dict(old) == get_preset("paper-S")


def test_cli_train_errors_are_one_line(tmp_path):
    p = parser()
    for argv, needle in [
        (["train", "--out", str(tmp_path / "r")], "give --preset (one of: cpu-tiny"),
        (["train", "--preset", "nope", "--out", str(tmp_path)], "unknown preset 'nope'"),
        (["train", "--preset", "cpu-tiny", "--out", str(tmp_path), "--set", "run.stepz=3"],
         "valid keys of run"),
        (["train", "--preset", "cpu-tiny", "--data", str(tmp_path / "none"), "--out",
          str(tmp_path / "r")], "no split directory"),
    ]:  # fmt: skip
        args = p.parse_args(argv)
        with pytest.raises(PhylawError, match=needle.replace("(", r"\(")) as e:
            args.handler(args)
        assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------ quick evaluation
def test_evaluator_gets_a_sample_function_and_its_scores_are_logged(split, tmp_path):
    from phylaw.data.dataset import VideoDataset

    ood = VideoDataset(split / "ood", 32).render_rows(np.arange(2))["video"].numpy()
    seen = []

    def evaluator(sample_fn, step):
        videos = sample_fn(ood)  # 32 px in, the model runs at 16 px, 32 px out
        assert videos.shape == (2, 8, 32, 32, 3) and videos.dtype == np.uint8
        assert np.array_equal(videos[:, :3], ood[:, sample_fn.frame_indices[:3]])
        seen.append(step)
        return {"velocity_error_ood": float(step)}

    cfg = tiny(split, "run.steps=2", "run.eval_every=1", "run.sample_every=0")
    train(cfg, tmp_path / "run", evaluator=evaluator, progress=False)
    assert seen == [1, 2]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    scores = [json.loads(ln).get("eval/velocity_error_ood") for ln in lines]
    assert [s for s in scores if s is not None] == [1, 2]


def test_quick_evaluation_arrives_as_a_callback_from_the_cli_and_the_stages(
    split, tmp_path, monkeypatch
):
    from phylaw.experiments import stages
    from phylaw.experiments.kinds import TrainStage
    from phylaw.experiments.quickeval import QuickEval

    sets = ["run.steps=1", "run.eval_every=1", "run.eval_videos=2", "run.sample_every=0"]
    sets += [f"data.eval_ood={split / 'ood'}", "run.threads=1"]
    argv = ["train", "--preset", "cpu-tiny", "--data", str(split / "train")]
    argv += ["--out", str(tmp_path / "run"), *[a for s in sets for a in ("--set", s)], "--quiet"]
    args = parser().parse_args(argv)
    args.handler(args)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert any("eval/ood/velocity_error_mean" in json.loads(ln) for ln in lines)

    seen = {}

    def fake_train(cfg, out, *, evaluator=None, progress=True):
        seen["evaluator"] = evaluator
        return type("R", (), {"step": 1, "stopped": "done", "loss": 0.0})()

    monkeypatch.setattr("phylaw.train.dit_task.train", fake_train)
    stage = TrainStage("train", preset="cpu-tiny", steps=1, sets=tuple(sets[1:]), train="data")
    stages.EXECUTORS["train"](stage, {"train": split / "train"}, tmp_path / "stage", False)
    assert isinstance(seen["evaluator"], QuickEval) and list(seen["evaluator"].splits) == ["ood"]
    stage = TrainStage("train", preset="cpu-tiny", steps=1, train="data")
    stages.EXECUTORS["train"](stage, {"train": split / "train"}, tmp_path / "stage2", False)
    assert seen["evaluator"] is None  # no run.eval_every: no evaluator


class _Oracle:
    """A stand-in continuation: the ground truth itself, or its last condition frame frozen."""

    def __init__(self, cfg, frozen=False):
        self.frames, self.c, self.frozen = frame_indices(cfg), cfg.diffusion.cond_frames, frozen

    def __call__(self, videos, seeds=None):
        clip = videos[:, self.frames].copy()
        if self.frozen:
            clip[:, self.c :] = clip[:, self.c - 1 : self.c]
        return clip


def test_quick_evaluation_scores_the_oracle_at_the_floor_and_a_frozen_ball_at_its_speed(split):
    from phylaw.experiments.quickeval import QuickEval

    cfg = tiny(
        split,
        f"data.eval_id={split / 'ood'}",
        f"data.eval_ood={split / 'ood'}",
        "data.resolution_px=64",
        "data.frame_stride=2",
        "run.eval_videos=4",
    )
    quick = QuickEval(cfg)
    oracle = quick(_Oracle(cfg), 0)
    assert oracle["id/tracked"] == 1.0 and oracle["id/velocity_error_mean"] < 0.01
    frozen = quick(_Oracle(cfg, frozen=True), 0)
    store, rows = quick.splits["ood"]
    speed = np.abs(store.get(rows).params[:, 1]).mean()  # params: (radius, velocity)
    assert frozen["ood/velocity_error_mean"] == pytest.approx(speed, rel=0.05)
    assert frozen["ood_over_id"] == pytest.approx(1.0)

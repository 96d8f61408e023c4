"""Attribute outcomes, the priority order and case matching on constructed videos: the ground
truth keeps both attributes, a video re-rendered with its training partner's value switches
that attribute, the nearest-case baseline's own videos score as the case; bad input fails
with one line."""

import json
from dataclasses import replace

import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.baselines import BASELINES, BaselineContext, nearest_cases, write_baseline
from phylaw.baselines.producers import read_cases
from phylaw.cli import main
from phylaw.data.build import build_split
from phylaw.data.studies import study_split
from phylaw.eval.metrics.outcomes import pair_design, pair_outcomes, priority_order
from phylaw.eval.run import EvalConfig, evaluate
from phylaw.eval.sources import open_source
from phylaw.experiments.casematch import case_match
from phylaw.physics.state import Colour, Shape
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render

GRID = PixelGrid.square(32)


def split(tmp_path, study, grid, name="e"):
    return build_split(study_split(study, "eval", grid=grid), tmp_path / name, progress=False)


def score(store, videos, out):
    """Evaluate ``videos`` [B, 32, H, W, 3] on ``store`` into ``out``; the records."""
    np.savez(out.with_suffix(".npz"), videos=videos, index=store.column("index"))
    source = open_source(out.with_suffix(".npz"), store.column("index"))
    cfg = EvalConfig(floor=False, resamples=200)
    return evaluate(source, store, out, cfg, progress=False).records


def continued(store, bodies=None, vx=None):
    """The ground truth, its bodies (``bodies``) or velocity (``vx`` [B]) replaced after the
    three condition frames."""
    truth = store.trajectory(np.arange(len(store)))
    given = render(truth.pos, truth.bodies, GRID)
    pos = truth.pos.copy()
    if vx is not None:
        t = truth.times - truth.times[2]
        pos[:, 3:, 0, 0] = pos[:, 2:3, 0, 0] + vx[:, None] * t[None, 3:]
    after = render(pos, bodies or truth.bodies, GRID)
    return np.concatenate([given[:, :3], after[:, 3:]], axis=1)


@pytest.fixture(scope="module")
def colour_shape(tmp_path_factory):
    return split(tmp_path_factory.mktemp("cs"), "colour-shape", (("r", 2), ("v", 3)))


def test_manifests_carry_the_boxes_as_records(colour_shape):
    regions = colour_shape.manifest["regions"]
    assert [b["name"] for b in regions["train_boxes"]] == ["red-disc", "blue-square"]
    assert regions["train_boxes"][0]["values"] == {"colour": [0], "shape": [0]}
    assert len(regions["block_boxes"]) == 4 and regions["train_space"]["bounds"]["v"] == [1, 4]
    pair = pair_design(colour_shape.manifest)
    assert pair.columns == ("colour", "shape") and pair.trained("red-disc")
    assert pair.partner("blue-disc", "colour").name == "red-disc"  # the box sharing the shape


def test_ground_truth_keeps_both_and_switches_are_seen(colour_shape, tmp_path):
    store = colour_shape
    truth = store.trajectory(np.arange(len(store))).bodies
    gt = pair_outcomes(store.manifest, score(store, continued(store), tmp_path / "gt"))
    assert gt["test"]["rate/both kept"]["mean"] == 1.0 and gt["winner"] is None
    # re-rendered with the partner's colour (matched by shape): the colour switches
    other = np.where(truth.colour == Colour.RED, int(Colour.BLUE), int(Colour.RED))
    rec = score(store, continued(store, replace(truth, colour=other)), tmp_path / "c")
    res = pair_outcomes(store.manifest, rec)
    assert res["test"]["rate/shape kept, colour switched"]["mean"] == 1.0
    assert (res["winner"], res["loser"]) == ("shape", "colour")
    # with the partner's shape (matched by colour): the shape switches
    other = np.where(truth.shape == Shape.DISC, int(Shape.SQUARE), int(Shape.DISC))
    rec = score(store, continued(store, replace(truth, shape=other)), tmp_path / "s")
    res = pair_outcomes(store.manifest, rec)
    assert res["test"]["rate/colour kept, shape switched"]["mean"] == 1.0
    assert res["winner"] == "colour" and res["levels"]["red-disc"]["role"] == "trained"


def test_a_velocity_taken_from_the_partner_is_a_switch_with_shift_one(tmp_path):
    store = split(tmp_path, "velocity-size", (("v", 8), ("r", 3)))
    params = store.column("params")
    r, v = params[:, 0], params[:, 1]
    partner = np.where(r <= 1.05, 1.75, 3.25)  # centre of the velocity its size was trained with
    rec = score(store, continued(store, vx=partner), tmp_path / "v")
    res = pair_outcomes(store.manifest, rec)
    test = res["levels"]["small-fast"]
    assert test["rate/size kept, velocity switched"]["mean"] > 0.9
    assert test["shift/v"]["mean"] == pytest.approx(1.0, abs=0.1)
    assert res["winner"] == "size"
    gt = pair_outcomes(store.manifest, score(store, continued(store), tmp_path / "gt"))
    assert gt["test"]["rate/both kept"]["mean"] == 1.0 and abs(gt["test"]["shift/v"]["mean"]) < 0.05
    assert np.all(v > 0)


def test_priority_order_from_pairs():
    def pair(a, b, winner):
        loser = b if winner == a else a if winner else None
        return {"study": f"{a}-{b}", "attributes": [a, b], "winner": winner, "loser": loser}

    paper = [pair("colour", "shape", "colour"), pair("size", "shape", "size"),
             pair("velocity", "shape", "velocity"), pair("velocity", "size", "size"),
             pair("colour", "size", "colour"), pair("colour", "velocity", "colour")]  # fmt: skip
    assert priority_order(paper) == "colour > size > velocity > shape"
    tied = paper[:3] + [pair("velocity", "size", None)] + paper[4:]
    assert priority_order(tied) == "colour > size ~ velocity > shape"
    cycle = [pair("a", "b", "a"), pair("b", "c", "b"), pair("c", "a", "c")]
    assert priority_order(cycle).startswith("a ~ b ~ c")


def test_analyses_refuse_splits_they_cannot_read(colour_shape, tmp_path, capsys):
    gap = split(tmp_path, "gap-2-3", (("v", 4), ("r", 1)), "gap")
    with pytest.raises(PhylawError, match="two boxes of the same two attributes"):
        pair_design(gap.manifest)
    old = json.loads(json.dumps(colour_shape.manifest))
    del old["regions"]["train_boxes"]
    with pytest.raises(PhylawError, match="rebuild it"):
        pair_design(old)
    with pytest.raises(PhylawError, match="not a study split"):
        pair_design({"bodies": {}})
    records = score(gap, continued(gap), tmp_path / "g")
    assert records and main(["outcomes", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pair studies" in err[0]
    assert main(["outcomes", str(tmp_path / "nothing")]) == 2
    assert "no videos.jsonl" in capsys.readouterr().err
    assert main(["experiment", "run", "attribute-priority", "--scale", "huge"]) == 2
    assert "choose one of: paper, cpu, tiny" in capsys.readouterr().err


def test_case_scores_place_the_law_at_0_and_the_nearest_case_at_1(tmp_path, capsys):
    train = build_split(study_split("gap-1.25-3.75", "train", 400), tmp_path / "t", progress=False)
    store = split(tmp_path, "gap-1.25-3.75", (("v", 12), ("r", 2)))
    score(store, continued(store), tmp_path / "law")
    write_baseline("nearest-case", BaselineContext(store, 32, 3, train), tmp_path / "nn",
                   batch=8, progress=False)  # fmt: skip
    source = open_source(tmp_path / "nn", store.column("index"))
    evaluate(source, store, tmp_path / "case", EvalConfig(floor=False), progress=False)
    law = case_match(tmp_path / "law", store, train, tmp_path / "cm-law", resamples=100)
    case = case_match(tmp_path / "case", store, train, resamples=100)
    again = case_match(
        tmp_path / "case", store, train, resamples=100, cases=tmp_path / "nn" / "cases.npz"
    )  # the baseline's own matches
    assert again == case
    rows = np.arange(len(store))
    saved = read_cases(tmp_path / "nn" / "cases.npz", BaselineContext(store, 32, 3, train), rows)
    assert saved is not None and (saved.row == nearest_cases(ctx_of(store, train), rows).row).all()
    assert read_cases(tmp_path / "nn" / "cases.npz", ctx_of(store, train, 16), rows) is None
    gap = case["levels"]["gap"]
    assert gap["score_px"]["mean"] > 0.95 and gap["case_px"]["mean"] == 1.0
    assert law["overall"]["score_px"]["mean"] < 0.05 and law["levels"]["gap"]["case_px"]["count"]
    rows = [
        json.loads(x) for x in (tmp_path / "cm-law" / "casematch.jsonl").read_text().splitlines()
    ]
    assert len(rows) == len(store) and {"case_px", "score_param"} <= set(rows[0])
    assert (
        main(["case-match", "--scores", str(tmp_path / "law"), "--train", str(tmp_path / "t")]) == 0
    )
    assert "closer to case" in capsys.readouterr().out


def ctx_of(store, train, px=32):
    return BaselineContext(store, 32, 3, train, feature_px=px)


def test_mirrored_cases_move_the_other_way(tmp_path):
    train = build_split(study_split("flip", "train", 2000), tmp_path / "t", progress=False)
    store = split(tmp_path, "flip", (("v", 12), ("r", 2)))
    clip = tuple(range(0, 32, 4))  # the CPU preset's clip: given frames 0.4 s apart
    rows = np.arange(len(store))
    plain = nearest_cases(BaselineContext(store, 32, 3, train, frames=clip), rows)
    both = nearest_cases(BaselineContext(store, 32, 3, train, frames=clip, mirror=True), rows)
    assert not plain.mirrored.any() and both.mirrored.any()
    assert (both.distance <= plain.distance + 1e-6).all()
    assert (store.column("params")[both.mirrored, 1] < 2.5).all()  # slow balls match reversed
    ctx = BaselineContext(store, 32, 3, train, frames=clip, mirror=True)
    videos = BASELINES["nearest-case"](ctx, rows)
    mass = (255 - videos[..., 0].astype(float)).sum(2)  # a blue ball lacks red: [B, T, W]
    centre = (mass * np.arange(32)).sum(-1) / np.maximum(mass.sum(-1), 1)
    moving = centre[:, 4] - centre[:, 3]  # the first generated step
    assert (moving[both.mirrored] < 0).all() and (moving[~both.mirrored] > 0).all()

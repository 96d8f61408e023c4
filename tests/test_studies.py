"""Regions of parameter space and the Sec. 5 study splits: what training sets hold (checked on
their exports), evaluation grid counts and labels, per-video bodies, determinism, bad input."""

import json

import h5py
import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.cli import main
from phylaw.data.build import build_split
from phylaw.data.export import export_store
from phylaw.data.info import describe, preview, render_rows
from phylaw.data.labels import Block, inside_hull
from phylaw.data.region_args import resolve_region_args
from phylaw.data.regions import Region, box
from phylaw.data.regionsplit import default_space, region_params, region_split
from phylaw.data.studies import STUDIES, study_split
from phylaw.physics.state import Colour, Shape

# reference 1.5 (and the studies module docstring for colour-shape, colour-ring and flip)
EVAL_COUNTS = {
    "gap-1.25-3.75": 4356,
    "gap-1.5-3.5": 4356,
    "gap-1.75-3.25": 4356,
    "gap-2-3": 4356,
    "keep-3": 4356,
    "keep-4": 4356,
    "flip": 1584,
    "colour-size": 1364,
    "colour-velocity": 1584,
    "size-shape": 620,
    "velocity-shape": 704,
    "colour-shape": 1400,
    "colour-ring": 1400,
    "velocity-size": 4356,
    "collision-hole-2-3": 6825,
}
GAPS = {"gap-1.25-3.75": (1.25, 3.75), "gap-2-3": (2.0, 3.0)}
KEPT = {
    "keep-3": [(1, 1.25), (2.375, 2.625), (3.75, 4)],
    "keep-4": [(1, 1.25), (1.875, 2.125), (2.875, 3.125), (3.75, 4)],
}


def test_every_study_has_its_evaluation_count_and_equal_training_arms():
    assert set(EVAL_COUNTS) == set(STUDIES)
    for name, count in EVAL_COUNTS.items():
        spec = study_split(name, "eval")
        assert spec.count == count, name
        _, level = region_params(spec, 0, spec.count)
        assert len(np.unique(level)) == len(spec.levels), name  # every level occurs
    sizes = {STUDIES[n].train_size for n in list(GAPS) + list(KEPT) + ["gap-1.5-3.5"]}
    assert sizes == {200_000}  # one size for every arm of Fig. 5
    for name in ("colour-size", "colour-velocity", "size-shape", "velocity-shape", "colour-ring"):
        spec = study_split(name, "train")  # 300K: the two training quadrants hold 150K each
        assert np.bincount(region_params(spec, 0, spec.count)[1]).tolist() == [150_000] * 2


def _export_params(spec, tmp_path, fmt="npz") -> np.ndarray:
    store = build_split(spec, tmp_path / "split", progress=False)
    out = export_store(store, fmt, tmp_path / f"x.{fmt}", resolution=16, progress=False)
    if fmt == "npz":
        return np.load(out)["params"]
    with h5py.File(out) as f:
        return np.concatenate([f["init_streams"][k][()] for k in sorted(f["init_streams"])])


@pytest.mark.parametrize("name", list(GAPS) + list(KEPT))
def test_training_exports_hold_no_video_in_a_gap_or_outside_kept_intervals(name, tmp_path):
    fmt, n = ("npz", 600) if name in GAPS else ("phyworld-hdf5", 240)  # hdf5: the init_streams
    params = _export_params(study_split(name, "train", n), tmp_path, fmt)
    v = params[:, 1]
    assert len(v) == n and v.min() >= 1 and v.max() <= 4
    if name in GAPS:
        lo, hi = GAPS[name]
        assert not ((v > lo) & (v < hi)).any()
        assert (v < lo).any() and (v > hi).any()
    else:
        inside = np.any([(v >= a) & (v <= b) for a, b in KEPT[name]], axis=0)
        assert inside.all()
        assert all(((v >= a) & (v <= b)).sum() == n // len(KEPT[name]) for a, b in KEPT[name])


def test_a_region_split_is_a_pure_function_of_its_spec(tmp_path):
    spec = study_split("colour-size", "train", 500, seed=3)
    a = build_split(spec, tmp_path / "a", progress=False)
    b = build_split(spec, tmp_path / "b", shard_size=128, workers=2, progress=False)
    for key in ("params", "pos", "level"):
        assert np.array_equal(a.column(key), b.column(key))
    other = region_params(study_split("colour-size", "train", 500, seed=4), 0, 500)[0]
    assert not np.array_equal(a.column("params"), other)
    part = region_params(spec, 200, 300)[0]  # any index range alone gives the same videos
    assert np.array_equal(part, a.column("params")[200:300])


def test_gap_grid_is_labelled_support_gap_and_beyond():
    spec = resolve_region_args(
        "uniform", "eval", None, 0, exclude=("v=2:3",), grid="v=121,r=36", eval_range="v=0:6"
    )
    params, level = region_params(spec, 0, spec.count)
    names = np.array(spec.levels)[level]
    v = params[:, 1]
    assert spec.levels == ("support", "gap", "beyond")
    assert (names[(v > 2) & (v < 3)] == "gap").all()
    assert (names[(v < 1) | (v > 4)] == "beyond").all()
    assert (names[((v >= 1) & (v <= 2)) | ((v >= 3) & (v <= 4))] == "support").all()


def test_hull_labels_split_holes_from_outside_points():
    c = default_space("collision")
    hole = Region(c, exclude=(box(v1=(2, 3), v2=(2, 3)),))
    ell = Region(c, keep=(box(v1=(1, 2)), box(v2=(1, 2))))  # the L-shaped region of Fig. 6
    pts = np.array([[1.0, 1.0, 2.5, 2.5], [1.0, 1.0, 3.5, 3.5], [1.0, 1.0, 2.2, 2.2]])
    assert inside_hull(hole, pts).tolist() == [True, True, True]
    # the L's hull is cut by the segment (4, 2)-(2, 4), v1 + v2 = 6: (3.5, 3.5) lies beyond it
    assert inside_hull(ell, pts).tolist() == [True, False, True]
    spec = study_split("collision-hole-2-3", "eval")
    params, level = region_params(spec, 0, spec.count)
    names = np.array(spec.levels)[level]
    in_hole = (params[:, 2] > 2) & (params[:, 2] < 3) & (params[:, 3] > 2) & (params[:, 3] < 3)
    assert (names[in_hole] == "hull-inside").all() and (names[~in_hole] != "hull-inside").all()
    assert (names[params[:, 2] < 1] == "hull-outside").all()


def test_quadrant_videos_carry_their_colours_and_shapes(tmp_path):
    store = build_split(study_split("colour-ring", "eval"), tmp_path / "e", progress=False)
    assert store.levels == ["blue-disc", "red-ring", "red-disc", "blue-ring"]
    batch = store.get(np.arange(len(store)))
    bodies = store.bodies(batch)
    want = {"blue-disc": (Colour.BLUE, Shape.DISC), "red-ring": (Colour.RED, Shape.RING)}
    want |= {"red-disc": (Colour.RED, Shape.DISC), "blue-ring": (Colour.BLUE, Shape.RING)}
    for k, name in enumerate(store.levels):
        sel = batch.level == k
        assert (bodies.colour[sel] == want[name][0]).all() and (
            bodies.shape[sel] == want[name][1]
        ).all()
    ring = bodies.shape == Shape.RING
    assert np.allclose(bodies.inner_radius()[ring], 0.5 * bodies.size[ring])
    table = store.manifest["bodies"]
    assert table["colour"] == [None] and table["colour_values"] == [[0, 1]]  # varies per video
    # pixels: a ring's centre is background, a disc's is its colour
    rows = np.array([np.flatnonzero(batch.level == k)[0] for k in range(4)])
    frames = render_rows(store, rows, 64)[:, 0]  # [4, H, W, 3]
    centre = np.rint(store.get(rows).pos[:, 0, 0] * 6.4 - 0.5).astype(int)  # (col, row from bottom)
    px = frames[np.arange(4), 63 - centre[:, 1], centre[:, 0]]
    assert px.tolist() == [[0, 0, 255], [255, 255, 255], [255, 0, 0], [255, 255, 255]]
    gif = preview(tmp_path / "e", tmp_path / "p.gif", count=4, resolution=32)
    assert gif.stat().st_size > 0  # one video per quadrant, through the same renderer
    text = describe(tmp_path / "e")
    assert "study      colour-ring" in text and "labels     blocks" in text
    assert "colour   red: 700, blue: 700" in text and "shape    disc: 700, ring: 700" in text


def test_per_video_attributes_reach_every_export(tmp_path):
    spec = resolve_region_args(
        "uniform", "train", "12", 0, colours="red,green", shapes="square,ring"
    )
    store = build_split(spec, tmp_path / "m", progress=False)
    assert store.manifest["param_names"] == ["r", "v", "colour", "shape"]
    npz = np.load(export_store(store, "npz", tmp_path / "m.npz", resolution=16, progress=False))
    assert set(npz["colour"].ravel()) == {Colour.RED, Colour.GREEN}
    assert np.array_equal(npz["shape"][:, 0], npz["params"][:, 3].astype(int))
    folder = export_store(store, "gif", tmp_path / "g", resolution=16, progress=False)
    records = json.loads((folder / "videos.json").read_text())["videos"]
    assert {r["shape"][0] for r in records} == {"square", "ring"}


BUILD = ["data", "build", "--scenario", "uniform", "--split", "train", "--size", "10"]


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--exclude", "v=0:5"], "excludes everything"),
        (["--keep", "v=1:2,1.5:3"], "overlap"),
        (["--keep", "texture=1:2"], "texture"),
        (["--exclude", "v1=2:3"], "'v1'"),
        (["--colour", "pink"], "pink"),
        (["--shape", "hexagon"], "hexagon"),
        (["--shape", "ring", "--ring-inner", "1.0"], "inner radius"),
        (["--exclude", "v=3:2"], "LO < HI"),
        (["--grid", "v=4"], "--split eval"),
    ],
)
def test_bad_regions_give_one_line(extra, needle, tmp_path, capsys):
    code = main(BUILD + extra + ["--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and needle in err[0], err


def test_unknown_study_lists_the_valid_names(tmp_path, capsys):
    code = main(["data", "build", "--study", "gap-9", "--split", "train", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "gap-2-3" in err[0] and "colour-ring" in err[0]
    with pytest.raises(PhylawError, match="leave out --size"):
        study_split("gap-2-3", "eval", 100)


def test_study_build_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "k"
    assert main(["data", "build", "--study", "keep-3", "--split", "eval", "--out", str(out)]) == 0
    assert "levels: support 1188, gap 3168" in capsys.readouterr().out
    assert main(["data", "info", str(out)]) == 0
    assert "keep v=1:1.25 U v=2.375:2.625 U v=3.75:4" in capsys.readouterr().out


def test_region_validation_in_the_library():
    u = default_space("uniform")
    with pytest.raises(PhylawError, match="does not vary"):
        Region(u, keep=(box(colour=Colour.RED),))
    with pytest.raises(PhylawError, match="inner radius"):
        region_split("uniform", "train", 10, 0, Region(u), ring_inner_ratio=1.5)
    ell = Region(default_space("collision"), keep=(box(v1=(1, 2)), box(v2=(1, 2))))
    assert ell.cells().share.sum() == pytest.approx(1)  # overlapping boxes over other columns
    assert Block(grid=(("v", 3), ("r", 2))).size(u) == 6
    draws = resolve_region_args("uniform", "eval", "300", 0, exclude=("v=2:3",), eval_range="v=0:5")
    params, level = region_params(draws, 0, 300)  # uniform draws over the evaluation space
    assert draws.levels == ("support", "gap", "beyond") and len(params) == 300
    assert np.array_equal(
        np.array(draws.levels)[level] == "gap", (params[:, 1] > 2) & (params[:, 1] < 3)
    )

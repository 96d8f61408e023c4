"""Combinatorial (PHYRE-style) scenes: templates, layouts, physics, rendering, splits, CLI."""

import math

import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.cli import main
from phylaw.data.build import build_split
from phylaw.data.combinatorial import resolve_scene_split, scene_ids, scene_trajectory
from phylaw.data.views import render_batch
from phylaw.physics.engine import PhyreConstants
from phylaw.physics.scenes import TEMPLATES, Kind, build_layout, simulate_layout, simulate_scenes
from phylaw.physics.scenes import layout as layout_mod
from phylaw.physics.scenes.action import place_red_ball
from phylaw.physics.scenes.collide import inside, overlaps
from phylaw.physics.scenes.kinds import (
    SCENE_PX,
    WORLD_PER_PX,
    form_of,
    is_dynamic,
    jar_dims_px,
    local_parts,
    parts_table,
)
from phylaw.physics.scenes.layout import Layout
from phylaw.physics.scenes.simulate import frame_steps, scene_frame_times
from phylaw.physics.scenes.templates import HELD_OUT_IDS, SUBSETS, TRAIN_IDS, parse_templates
from phylaw.physics.state import WORLD_SIZE, Colour
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import PALETTE
from phylaw.render.shapes import render_scenes

# ---------------------------------------------------------------- the reference's table (3.2)
B1, B2, SB, DB = "ball_1", "ball_2", "static_ball", "dyn_bar"
SBS, STB, JAR, STK = "standing_bars", "static_bar", "jar", "standingsticks"
REFERENCE_TABLE = """
B2 SBS JAR STK|DB STB JAR STK|B1 DB STB JAR|SBS STB JAR STK|B2 SB SBS JAR|SB DB SBS STB|
B1 DB SBS STK|B2 SB JAR STK|B2 SB DB STB|B2 SB SBS STB|SB SBS STB STK|B2 STB JAR STK|
B1 DB SBS JAR|B1 DB STB STK|SB DB SBS JAR|B1 SB SBS JAR|SB DB JAR STK|B2 DB SBS STB|
B2 DB SBS STK|B2 SB STB JAR|B1 SB STB JAR|B2 SB DB JAR|B2 SBS STB STK|B1 B2 SB DB|
B1 B2 SBS STB|B2 SB STB STK|B1 B2 SB STB|B1 B2 DB STK|B1 SBS STB JAR|B1 B2 DB JAR|
SB DB STB STK|B1 SB DB SBS|B1 SBS STB STK|B1 SB JAR STK|B1 SB SBS STK|B1 B2 DB SBS|
DB SBS STB STK|SB DB SBS STK|SB STB JAR STK|B1 B2 SBS JAR|B1 B2 STB JAR|B2 DB STB STK|
B2 DB SBS JAR|B2 SB SBS STK|DB SBS STB JAR|DB SBS JAR STK|B1 SB DB STB|B1 B2 DB STB|
SB SBS JAR STK|B1 SB DB JAR|B1 SB STB STK|B1 STB JAR STK|B1 SBS JAR STK|B1 B2 JAR STK|
B1 B2 SB JAR|B2 DB STB JAR|B2 SBS STB JAR|B1 SB DB STK|SB DB STB JAR|B2 SB DB SBS|
B1 DB SBS STB|B1 B2 SB SBS|B1 B2 SB STK|B1 B2 SBS STK|B1 SB SBS STB|SB SBS STB JAR|
B2 DB JAR STK|B1 B2 STB STK|B2 SB DB STK|B1 DB JAR STK
"""
ABBREVIATION = {
    "B1": Kind.DYNAMIC_BALL_1,
    "B2": Kind.DYNAMIC_BALL_2,
    "SB": Kind.STATIC_BALL,
    "DB": Kind.DYNAMIC_BAR,
    "SBS": Kind.DYNAMIC_STANDING_BARS,
    "STB": Kind.STATIC_BAR,
    "JAR": Kind.DYNAMIC_JAR,
    "STK": Kind.DYNAMIC_STANDINGSTICKS,
}


def draw(pos, angle, kind, dims, grid, **kw):
    """``render_scenes`` of raw arrays: the record built by ``scene_record``."""
    from phylaw.physics.scenes import scene_record as record

    return render_scenes(record(np.zeros(np.shape(pos)[1]), pos, angle, kind, dims), grid, **kw)


def test_every_template_has_the_authors_objects():
    rows = [r.split() for r in REFERENCE_TABLE.replace("\n", "").split("|")]
    assert len(rows) == 70 == len(TEMPLATES)
    for k, row in enumerate(rows):
        assert TEMPLATES[10000 + k] == tuple(ABBREVIATION[a] for a in row), 10000 + k


def test_subsets_and_splits_of_templates():
    assert TRAIN_IDS == tuple(range(10000, 10060)) and HELD_OUT_IDS == tuple(range(10060, 10070))
    assert SUBSETS["60"] == TRAIN_IDS and len(SUBSETS["30"]) == 30
    assert all(t % 2 == 0 for t in SUBSETS["30"])
    assert set(SUBSETS["6"]) & set(SUBSETS["30"]) == {10016, 10024}
    # The six templates cover every pair of the four groups (paper Sec. 4.1).
    groups = [{Kind.DYNAMIC_BALL_1, Kind.DYNAMIC_BALL_2}, {Kind.STATIC_BALL, Kind.DYNAMIC_BAR}]
    groups += [{Kind.DYNAMIC_STANDING_BARS, Kind.STATIC_BAR}]
    groups += [{Kind.DYNAMIC_JAR, Kind.DYNAMIC_STANDINGSTICKS}]
    covered = {frozenset(TEMPLATES[t]) for t in SUBSETS["6"]}
    for i in range(4):
        for j in range(i + 1, 4):
            assert frozenset(groups[i] | groups[j]) in covered
    assert parse_templates("10016,10003", held_out=False) == (10003, 10016)
    assert parse_templates(None, held_out=True) == HELD_OUT_IDS
    for text, held_out in (("10063", False), ("10003", True), ("6", True), ("7", False)):
        with pytest.raises(PhylawError):
            parse_templates(text, held_out)


# ---------------------------------------------------------------- layouts and determinism
def test_builders_draw_the_reference_sizes():
    rng = np.random.default_rng(0)
    for _ in range(200):
        ((_, dims, (x, y), _),) = layout_mod.dynamic_ball(rng, Kind.DYNAMIC_BALL_1)
        assert 15.5 <= dims[0] <= 30.5 and dims[0] % 1 == 0.5
        assert 0.3 * SCENE_PX <= x <= 0.6 * SCENE_PX and 0.4 * SCENE_PX <= y - dims[0]
        bars = layout_mod.standing_bars(rng)
        assert 1 <= len(bars) <= 4
        for i, (_, (length, thick, *_), (_, y), angle) in enumerate(bars):
            assert length == pytest.approx((0.2 + 0.05 * i) * SCENE_PX) and thick == 10.24
            assert y == pytest.approx(length / 2) and angle == pytest.approx(math.pi / 2)
        chain = layout_mod.static_balls(rng)
        assert 1 <= len(chain) <= 7 and chain[0][2] == pytest.approx((0.4 * 512, 0.55 * 512))
        assert all(b[1][0] == 10.5 and b[2][1] < 0.5 * 512 for b in chain[1:])
        ((_, (length, _, _, _), _, angle),) = layout_mod.static_bar(rng)
        assert 0.2 * 512 <= length <= 0.5 * 512 and abs(angle) <= math.radians(60)
        ((_, dims, _, angle),) = layout_mod.dynamic_jar(rng)
        assert 0.08 * 512 <= dims[0] <= 0.3 * 512 and abs(angle) <= math.radians(45)
    assert jar_dims_px(0.3)[3] == pytest.approx(512 / 50)  # wall thickness W/50 at scale 0.3


def test_layouts_are_seeded_and_valid():
    for template in (10005, 10016, 10053):
        a, b = build_layout(template, 7, seed=3), build_layout(template, 7, seed=3)
        for name in ("kind", "dims", "pos", "angle"):
            assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
        c = build_layout(template, 8, seed=3)
        assert c.pos.shape != a.pos.shape or not np.array_equal(c.pos, a.pos)
        outs = a.outlines()
        for i in range(len(a)):  # no interpenetration unless both are static; dynamic inside
            if is_dynamic(a.kind[i]):
                assert inside(outs[i], 0.0, WORLD_SIZE)
            for j in range(i):
                if is_dynamic(a.kind[i]) or is_dynamic(a.kind[j]):
                    assert not overlaps(outs[i], outs[j])
        kinds_in_order = list(dict.fromkeys(Kind(int(k)) for k in a.kind))
        assert tuple(kinds_in_order) == TEMPLATES[template]


def test_red_ball_depends_on_the_trial_only_and_touches_nothing():
    base = build_layout(10023, 4)
    scenes = [place_red_ball(base, 10023, 4, trial)[0] for trial in range(6)]
    radii = set()
    for scene in scenes:
        assert scene.kind[-1] == Kind.RED_BALL and len(scene) == len(base) + 1
        np.testing.assert_array_equal(scene.pos[:-1], base.pos)
        outs = scene.outlines()
        assert inside(outs[-1], 0.0, WORLD_SIZE)
        assert not any(overlaps(outs[-1], o) for o in outs[:-1])
        r_px = scene.dims[-1, 0] / WORLD_PER_PX
        assert r_px == round(r_px) and 2 <= r_px <= 64
        radii.add(float(r_px))
    assert len(radii) > 1  # trials differ
    again = place_red_ball(base, 10023, 4, 3)[0]
    np.testing.assert_array_equal(again.pos, scenes[3].pos)


def test_same_ids_same_bytes_other_seed_other_scene():
    ids = np.array([[10016, 2, 0], [10016, 2, 1], [10061, 0, 0]])
    a, valid_a = simulate_scenes(ids, seed=5)
    b, valid_b = simulate_scenes(ids, seed=5)
    assert valid_a.all() and np.array_equal(valid_a, valid_b)
    for key in a:
        assert a[key].tobytes() == b[key].tobytes(), key
    c, _ = simulate_scenes(ids, seed=6)
    assert not np.array_equal(a["pos0"], c["pos0"], equal_nan=True)
    # Trials of one task share the layout; only the red ball differs.
    n = int((a["kind"][0] >= 0).sum())
    assert np.array_equal(a["pos0"][0, : n - 1], a["pos0"][1, : n - 1])


# ---------------------------------------------------------------- physics
def test_frame_timing_follows_phyre_stride():
    assert frame_steps(3).tolist() == [0, 20, 40]
    np.testing.assert_allclose(scene_frame_times(32), (20 * np.arange(32) + 1) / 60)


def test_free_fall_matches_the_integrator_and_rest_is_exact():
    c = PhyreConstants()
    r = 1.0
    ball = Layout(
        np.array([Kind.DYNAMIC_BALL_1], np.int8),
        np.array([[r, 0, 0, 0]], float),
        np.array([[5.0, 8.5]]),
        np.zeros(1),
    )
    pos, angle = simulate_layout(ball, num_frames=32)
    g = c.gravity_m_s2 / c.metres_per_unit  # world units / s^2
    n, h = (frame_steps(2) + 1) * c.substeps, c.dt_s / c.substeps  # engine steps of frames 0, 1
    semi_implicit = 8.5 - g * h**2 * n * (n + 1) / 2  # Box2D's integrator (v += g h; y += v h)
    np.testing.assert_allclose(pos[:2, 0, 1], semi_implicit, rtol=0, atol=1e-9)
    assert np.all(pos[:, 0, 0] == 5.0) and np.all(angle == 0.0)
    assert abs(pos[-1, 0, 1] - r) < 0.01  # at rest on the floor
    assert pos[-1, 0, 1] == pos[-2, 0, 1]  # asleep: exactly the same pose


def test_every_template_simulates_without_blowing_up():
    ids = np.array([[t, task, trial] for t in TEMPLATES for task, trial in ((0, 0), (51, 990))])
    arrays, valid = simulate_scenes(ids, seed=1)
    assert valid.all()
    present = arrays["kind"] >= 0
    kinds = arrays["kind"]
    assert (present.sum(1) >= 5).all() and (present.sum(1) <= 14).all()
    dynamic = is_dynamic(kinds)
    pos, angle = arrays["pos"], arrays["angle"]
    mask = np.broadcast_to(present[:, None, :], angle.shape)
    assert np.isfinite(pos[mask]).all() and np.isfinite(angle[mask]).all()
    quads, radius = parts_table(kinds, arrays["dims"])  # [B, N, P, 4, 2]
    c, s = np.cos(angle)[..., None, None], np.sin(angle)[..., None, None]
    x = c * quads[:, None, ..., 0] - s * quads[:, None, ..., 1] + pos[..., None, None, 0]
    y = s * quads[:, None, ..., 0] + c * quads[:, None, ..., 1] + pos[..., None, None, 1]
    tol = 0.02  # world units (1 PHYRE px): transient impact depth (engine.py) and slop
    for coord in (x, y):
        dyn = np.broadcast_to(dynamic[:, None, :, None, None], coord.shape)
        values = coord[dyn & np.isfinite(coord)]
        assert values.min() > -tol and values.max() < WORLD_SIZE + tol
    balls = dynamic & (radius > 0)
    for axis in (0, 1):
        centre = pos[..., axis][np.broadcast_to(balls[:, None], angle.shape)]
        r = np.broadcast_to(radius[:, None], angle.shape)[
            np.broadcast_to(balls[:, None], angle.shape)
        ]
        assert (centre - r).min() > -tol and (centre + r).max() < WORLD_SIZE + tol
    # Things fall: the mean height of dynamic bodies drops.
    heights = np.where(dynamic[:, None], pos[..., 1], np.nan)
    assert np.nanmean(heights[:, -1]) < np.nanmean(heights[:, 0]) - 0.5


# ---------------------------------------------------------------- rendering
def coverage_of(frame: np.ndarray, colour: Colour) -> np.ndarray:
    """Per-pixel coverage of a single colour over white, from the channel that varies most."""
    rgb = np.asarray(PALETTE[colour], float)
    ch = int(np.argmax(255 - rgb))
    return (255.0 - frame[..., ch]) / (255.0 - rgb[ch])


def one_body(kind: Kind, dims, pos, angle, frames=1):
    k = np.array([[kind]], np.int8)
    d = np.asarray(dims, float).reshape(1, 1, 4)
    p = np.broadcast_to(np.asarray(pos, float), (1, frames, 1, 2))
    a = np.broadcast_to(np.asarray(angle, float).reshape(1, -1, 1), (1, frames, 1))
    return p, a, k, d


@pytest.mark.parametrize("resolution", [256, 128, 64])
def test_rotated_bar_area_matches_geometry(resolution):
    grid = PixelGrid.square(resolution)
    rng = np.random.default_rng(1)
    length, thick = 3.0, 10.24 * WORLD_PER_PX  # a 0.3 W static bar, W/50 thick
    expected = length * thick * (resolution / WORLD_SIZE) ** 2
    for angle in np.linspace(0, math.pi, 13):
        pos = 5.0 + rng.uniform(-0.5, 0.5, 2)
        frame = draw(*one_body(Kind.STATIC_BAR, [length, thick, 0, 0], pos, angle), grid)
        area = coverage_of(frame[0, 0], Colour.BLACK).sum()
        assert area == pytest.approx(expected, rel=0.01), angle


def supersampled(kind: Kind, dims, pos, angle, resolution: int, k: int = 8) -> np.ndarray:
    """Exact-area reference: the fraction of k x k sub-samples of each pixel inside the body."""
    polys, r = local_parts(int(form_of(kind)), np.asarray(dims, float))
    s = (np.arange(resolution * k) + 0.5) / (resolution * k) * WORLD_SIZE
    x, y = np.meshgrid(s, WORLD_SIZE - s)  # row 0 at the top
    lx, ly = x - pos[0], y - pos[1]
    c, sn = math.cos(angle), math.sin(angle)
    u, v = c * lx + sn * ly, -sn * lx + c * ly  # body coordinates
    hit = np.zeros_like(u, dtype=bool) if polys else (u**2 + v**2 <= r**2)
    for poly in polys:
        inside_all = np.ones_like(hit)
        for i in range(4):
            (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % 4]
            inside_all &= (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0) >= 0
        hit |= inside_all
    return hit.reshape(resolution, k, resolution, k).mean(axis=(1, 3))


@pytest.mark.parametrize(
    "kind,dims",
    [
        (Kind.DYNAMIC_JAR, np.array(jar_dims_px(0.25)) * WORLD_PER_PX),
        (Kind.DYNAMIC_STANDINGSTICKS, [0.45 * 10, 10.24 * WORLD_PER_PX, 0, 0]),
        (Kind.DYNAMIC_BAR, [2.5, 10.24 * WORLD_PER_PX, 0, 0]),
        (Kind.DYNAMIC_BALL_1, [0.9, 0, 0, 0]),
    ],
)
def test_shapes_match_a_supersampled_reference(kind, dims):
    grid, pos, angle = PixelGrid.square(128), np.array([4.87, 5.31]), 0.61
    frame = draw(*one_body(kind, dims, pos, angle), grid)
    got = coverage_of(frame[0, 0], Colour.GRAY)
    want = supersampled(kind, dims, pos, angle, 128)
    assert got.sum() == pytest.approx(want.sum(), rel=0.01)
    assert np.abs(got - want).max() < 0.3  # one-pixel ramps vs exact area coverage
    assert np.abs(got - want).mean() < 0.01


def test_every_object_is_visible_in_its_colour():
    ids = np.array([[t, 3, 0] for t in TEMPLATES])
    arrays, valid = simulate_scenes(ids)
    assert valid.all()
    frames = draw(
        arrays["pos"][:, :1],
        arrays["angle"][:, :1],
        arrays["kind"],
        arrays["dims"],
        PixelGrid.square(256),
    )[:, 0]
    for b, kinds in enumerate(arrays["kind"]):
        counts = {
            colour: int(np.all(frames[b] == PALETTE[colour], axis=-1).sum())
            for colour in (Colour.GRAY, Colour.BLACK, Colour.PHYRE_RED)
        }
        assert counts[Colour.PHYRE_RED] > 0
        assert (counts[Colour.GRAY] > 0) == bool(np.isin(kinds, [0, 1, 3, 4, 6, 7]).any())
        assert (counts[Colour.BLACK] > 0) == bool(np.isin(kinds, [2, 5]).any())
        assert (frames[b] == 255).all(-1).mean() > 0.5  # mostly white background


def test_cached_poses_and_copied_frames_match_frame_by_frame_rendering():
    arrays, _ = simulate_scenes(np.array([[10012, 1, 0], [10038, 2, 3]]))
    grid = PixelGrid.square(96)
    whole = draw(arrays["pos"], arrays["angle"], arrays["kind"], arrays["dims"], grid)
    for t in (0, 7, 31):
        alone = draw(
            arrays["pos"][:, t : t + 1],
            arrays["angle"][:, t : t + 1],
            arrays["kind"],
            arrays["dims"],
            grid,
        )
        assert np.abs(whole[:, t].astype(int) - alone[:, 0]).max() <= 1


def test_render_input_errors():
    p, a, k, d = one_body(Kind.DYNAMIC_BALL_1, [1, 0, 0, 0], [5, 5], 0.0)
    with pytest.raises(PhylawError, match="square"):
        draw(p, a, k, d, PixelGrid(64, 32))
    with pytest.raises(PhylawError, match="angle"):
        draw(p, a[:, :, :0], k, d, PixelGrid.square(32))
    with pytest.raises(PhylawError, match="out"):
        draw(p, a, k, d, PixelGrid.square(32), out=np.empty((1, 1, 16, 16, 3), np.uint8))
    nan = draw(np.full_like(p, np.nan), a, k, d, PixelGrid.square(16))
    assert (nan == 255).all()


# ---------------------------------------------------------------- splits, store, CLI
def test_split_ids_sizes_and_errors():
    spec = resolve_scene_split("eval-in-template", "3", 0, "10003,10005")
    ids, level = scene_ids(spec, 0, spec.count)
    assert spec.count == 6 and level.tolist() == [0, 0, 0, 1, 1, 1]
    assert ids[:, 0].tolist() == [10003] * 3 + [10005] * 3
    assert ids[:3, 1].tolist() == [0, 1, 2] and set(ids[:, 2]) == {990}
    spec = resolve_scene_split("train", "250", 0, "6")
    ids, _ = scene_ids(spec, 200, 250)
    assert ids[:, 2].tolist() == [2] * 50 and spec.count == 1500
    assert resolve_scene_split("train", None, 0, None).count == 60 * 99_000
    assert resolve_scene_split("eval-out-of-template", None, 0, None).count == 1000
    for split, size, templates in (
        ("train", "100K", "6"),
        ("eval-in-template", "1001", "6"),
        ("eval-id", "3", None),
        ("train", "3", "10065"),
        ("eval-out-of-template", "3", "30"),
    ):
        with pytest.raises(PhylawError):
            resolve_scene_split(split, size, 0, templates)


def test_build_info_and_read_back(tmp_path):
    spec = resolve_scene_split("train", "3", 2, "10024,10053")
    store = build_split(spec, tmp_path / "tr", progress=False)
    assert len(store) == 6 and store.levels == ["10024", "10053"]
    assert store.verify() == []
    traj = scene_trajectory(store, np.arange(6))
    ids, _ = scene_ids(spec, 0, 6)
    arrays, _ = simulate_scenes(ids, seed=2)
    assert traj.pos.tobytes() == arrays["pos"].astype(np.float32).tobytes()
    assert traj.kind.tobytes() == arrays["kind"].tobytes()
    np.testing.assert_allclose(traj.times, scene_frame_times())
    frames = render_batch(store, store.get([0, 5]), PixelGrid.square(64))
    assert frames.shape == (2, 32, 64, 64, 3) and (frames < 255).any()
    again = build_split(spec, tmp_path / "tr", progress=False)  # finished: nothing to redo
    assert again.manifest == store.manifest
    evals = build_split(
        resolve_scene_split("eval-in-template", "3", 2, "10024,10053"),
        tmp_path / "ev",
        progress=False,
    )
    a, b = store.get([1]), evals.get([1])  # same task, trial 0 vs 990: same layout
    n = int((a.extra["kind"][0] >= 0).sum())
    np.testing.assert_array_equal(a.pos0[0, : n - 1], b.pos0[0, : n - 1])
    assert not np.array_equal(a.pos0[0, n - 1], b.pos0[0, n - 1])


def run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_build_info_and_one_line_errors(tmp_path, capsys):
    out = tmp_path / "oot"
    build = ["data", "build", "--scenario", "combinatorial", "--split", "eval-out-of-template"]
    code, text, _ = run([*build, "--size", "1", "--templates", "10066,10069", "--out", out], capsys)
    assert code == 0 and "2 videos" in text
    code, text, _ = run(["data", "info", out, "--verify"], capsys)
    assert code == 0 and "10066: 1, 10069: 1" in text and "every checksum matches" in text
    code, text, _ = run(
        ["data", "preview", out, "--out", tmp_path / "p.gif", "--resolution", 64], capsys
    )
    assert code == 0 and (tmp_path / "p.gif").stat().st_size > 0
    bad = [
        ([*build[:-1], "train", "--templates", "10063", "--out", tmp_path / "a"], "10063"),
        ([*build, "--templates", "6", "--out", tmp_path / "b"], "training subset"),
        ([*build, "--templates", "12345", "--out", tmp_path / "c"], "unknown template"),
        ([*build[:-1], "train", "--size", "100K", "--out", tmp_path / "d"], "99000"),
        ([*build[:-1], "eval-id", "--out", tmp_path / "e"], "unknown split"),
        (
            [
                "data",
                "build",
                "--scenario",
                "uniform",
                "--split",
                "train",
                "--templates",
                "6",
                "--out",
                tmp_path / "f",
            ],
            "combinatorial only",
        ),
        ([*build, "--ranges", "paper", "--out", tmp_path / "g"], "--ranges applies"),
        (
            ["data", "export", out, "--format", "phyworld-hdf5", "--out", tmp_path / "x.h5"],
            "choose --format",
        ),
    ]
    for argv, needle in bad:
        code, _, err = run(argv, capsys)
        lines = [ln for ln in err.strip().splitlines() if ln]
        assert code == 2 and "Traceback" not in err and len(lines) == 1, err
        assert needle in lines[0], lines[0]

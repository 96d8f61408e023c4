"""Parsing pixels back to states: parse(render(state)) == state within stated tolerances."""

from __future__ import annotations

import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.data.io.video import decode_video, encode_mp4
from phylaw.eval.parse import ParsedStates, membership_tables, parse_videos, white_bits
from phylaw.physics.state import WORLD_SIZE, Colour, discs, frame_times
from phylaw.render import PALETTE, PixelGrid, render

RED, BLUE, GRAY, PURPLE = Colour.RED, Colour.BLUE, Colour.GRAY, Colour.PURPLE
GRID = PixelGrid.square(128)
POS_TOL = 0.005  # world units (0.064 px at 128 px); measured max 0.0011 for r in [0.3, 2]
RADIUS_TOL = 0.01  # relative; measured max 0.3 %


def random_balls(rng, b: int, t: int, r_lo: float = 0.3, r_hi: float = 2.0):
    """Positions [B, T, 1, 2] of red balls fully in view at random sub-pixel offsets."""
    r = rng.uniform(r_lo, r_hi, (b, 1))
    lo, hi = r[..., None] + 0.1, WORLD_SIZE - r[..., None] - 0.1  # 0.1: clear of the border px
    p0 = rng.uniform(lo, hi, (b, 1, 2))
    p1 = rng.uniform(lo, hi, (b, 1, 2))
    u = np.linspace(0, 1, t)[None, :, None, None]
    return p0[:, None] * (1 - u) + p1[:, None] * u, discs(r, (RED,))


def test_parse_of_render_recovers_position_and_radius():
    rng = np.random.default_rng(0)
    pos, bodies = random_balls(rng, 12, 32)
    parsed = parse_videos(render(pos, bodies, GRID), (RED,), GRID)
    assert isinstance(parsed, ParsedStates) and parsed.colours == (RED,)
    assert parsed.pos.shape == (12, 32, 1, 2) and parsed.pos.dtype == np.float64
    assert parsed.visible.all() and parsed.in_view.all()
    assert np.abs(parsed.pos - pos).max() < POS_TOL
    rel = parsed.size[..., 0] / bodies.size - 1
    assert np.abs(rel).max() < RADIUS_TOL
    assert np.allclose(parsed.area_px, np.pi * (parsed.size * 12.8) ** 2)
    assert (parsed.count == 1).all() and parsed.grid == GRID


def test_default_grid_and_non_square_frames_with_odd_width():
    """Widths that are not a multiple of 8 take the padded path; pixels need not be square."""
    rng = np.random.default_rng(1)
    pos, bodies = random_balls(rng, 3, 5, 1.0, 1.5)
    grid = PixelGrid(100, 60)
    parsed = parse_videos(render(pos, bodies, grid), [RED], grid)
    assert np.abs(parsed.pos - pos).max() < 2 * POS_TOL
    videos = render(pos, bodies, GRID)
    square = parse_videos(videos, [RED])  # grid inferred from the frames
    assert np.abs(square.pos - pos).max() < POS_TOL
    reverse = parse_videos(videos[::-1], [RED])  # strided input: copied chunk by chunk
    assert np.array_equal(reverse.pos, square.pos[::-1])


def test_missing_and_partly_visible_objects():
    pos = np.array([[[[5.0, 5.0]], [[0.2, 5.0]], [[np.nan, np.nan]], [[-3.0, 5.0]]]])
    videos = render(pos, discs(np.array([[1.0]]), (RED,)), GRID)
    parsed = parse_videos(videos, (RED,), GRID)
    assert parsed.visible[0, :, 0].tolist() == [True, True, False, False]
    assert parsed.in_view[0, :, 0].tolist() == [True, False, False, False]
    assert np.isnan(parsed.pos[0, 2:]).all() and np.isnan(parsed.size[0, 2:]).all()
    assert parsed.area_px[0, 2:].max() == 0.0  # never imputed: no position, no size


def test_blue_and_red_are_separated_in_collision_frames():
    """Blue pixels never count for red (and vice versa), even where the balls touch."""
    x = np.array([[2.0, 7.0], [3.5, 5.6], [4.0, 6.0], [4.4, 5.9]])  # far, near, touching, overlap
    pos = np.stack([x, np.full_like(x, 5.0)], -1)[None]  # [1, 4, 2, 2]
    both = render(pos, discs(np.array([[1.0, 1.0]]), (RED, BLUE)), GRID)
    alone = [
        render(pos[:, :, k : k + 1], discs(np.array([[1.0]]), (c,)), GRID)
        for k, c in enumerate((RED, BLUE))
    ]
    parsed = parse_videos(both, (RED, BLUE), GRID)
    for k, colour in enumerate((RED, BLUE)):
        ref = parse_videos(alone[k], (colour,), GRID)
        # apart: the other ball changes nothing at all
        assert np.array_equal(parsed.pos[0, :2, k], ref.pos[0, :2, 0])
        assert np.abs(parsed.pos[0, :3, k] - pos[0, :3, k]).max() < 0.01  # touching: a few px
    red_only = parse_videos(both, (RED,), GRID)
    assert np.array_equal(red_only.pos[..., 0, :], parsed.pos[..., 0, :])  # blue is nobody's
    # overlap: blue is painted over red, so red's visible area shrinks and its centroid moves left
    assert parsed.area_px[0, 3, 0] < 0.9 * parsed.area_px[0, 0, 0]
    assert parsed.pos[0, 3, 0, 0] < pos[0, 3, 0, 0]


def test_parse_survives_the_mp4_codec():
    """H.264 crf 25 (the authors' files): measured max 0.010 world units, radius 0.9 %."""
    rng = np.random.default_rng(2)
    pos, bodies = random_balls(rng, 4, 16, 0.5, 1.5)
    videos = render(pos, bodies, GRID)
    decoded = np.stack([decode_video(encode_mp4(v)) for v in videos])
    parsed = parse_videos(decoded, (RED,), GRID)
    assert parsed.visible.all()
    assert np.abs(parsed.pos - pos).max() < 0.03
    assert np.abs(parsed.size[..., 0] / bodies.size - 1).max() < 0.03


def test_background_noise_creates_no_mass():
    """Near-white noise (channels >= 248, as a codec or a VAE leaves) is background."""
    rng = np.random.default_rng(3)
    pos, bodies = random_balls(rng, 2, 4, 0.8, 1.2)
    videos = render(pos, bodies, GRID)
    clean = parse_videos(videos, (RED,), GRID)
    noisy = videos.copy()
    white = (videos == 255).all(-1)
    noise = rng.integers(248, 256, videos.shape, dtype=np.uint8)
    noisy[white] = noise[white]
    parsed = parse_videos(noisy, (RED,), GRID)
    assert np.array_equal(parsed.area_px, clean.area_px)
    assert white_bits([RED]) == 3 and white_bits([GRAY]) < 3  # pale colours need a tighter band


def test_other_colours_do_not_count_and_distractors_compete():
    """Grey is far in angle from red: nobody's. Purple is close to blue: declare it."""
    pos = np.array([[[[3.0, 5.0], [7.0, 5.0]]]])
    grey = render(pos, discs(np.array([[1.0, 1.0]]), (RED, GRAY)), GRID)
    assert np.abs(parse_videos(grey, (RED,), GRID).pos[0, 0, 0] - pos[0, 0, 0]).max() < POS_TOL
    purple = render(pos, discs(np.array([[1.0, 1.0]]), (BLUE, PURPLE)), GRID)
    naive = parse_videos(purple, (BLUE,), GRID)
    parsed = parse_videos(purple, (BLUE,), GRID, distractors=(PURPLE,))
    assert naive.pos[0, 0, 0, 0] > 3.5  # purple mass pulls blue towards it
    assert np.abs(parsed.pos[0, 0, 0] - pos[0, 0, 0]).max() < POS_TOL


def test_blob_count_flags_duplicates():
    pos = np.array([[[[3.0, 5.0]], [[7.0, 5.0]], [[np.nan, np.nan]]]])
    one = render(pos, discs(np.array([[1.0]]), (RED,)), GRID)
    two = np.minimum(one[:, :1], one[:, 1:2])  # frames 0 and 1 overlaid: a duplicated ball
    parsed = parse_videos(np.concatenate([one, two], axis=1), (RED,), GRID)
    assert parsed.count[0, :, 0].tolist() == [1, 1, 0, 2]


def test_membership_table_rules():
    table = membership_tables((RED, BLUE))

    def weight(k, rgb):
        r, g, b = rgb
        return table[k, (255 - r) + 256 * (255 - g) + 65536 * (255 - b)] / 65535

    assert weight(0, PALETTE[RED]) == 1 and weight(1, PALETTE[RED]) == 0
    assert weight(1, PALETTE[BLUE]) == 1 and weight(0, PALETTE[BLUE]) == 0
    assert weight(0, (255, 128, 128)) == pytest.approx(127 / 255, abs=1e-4)  # half-covered
    assert weight(0, (255, 250, 250)) == 0  # codec ringing on white: below the floor
    assert weight(0, (128, 128, 128)) == 0 and weight(0, (0, 0, 0)) == 0  # far from the line


def test_input_errors_are_clear():
    videos = np.full((1, 2, 16, 16, 3), 255, dtype=np.uint8)
    with pytest.raises(PhylawError, match="uint8"):
        parse_videos(videos.astype(np.float32), (RED,))
    with pytest.raises(PhylawError, match=r"\[B, T, H, W, 3\]"):
        parse_videos(videos[0], (RED,))
    with pytest.raises(PhylawError, match="grid"):
        parse_videos(videos, (RED,), PixelGrid.square(32))
    with pytest.raises(PhylawError, match="distinct"):
        parse_videos(videos, (RED, RED))
    parsed = parse_videos(videos, (RED,))
    assert not parsed.visible.any() and np.isnan(parsed.pos).all()


def test_frame_times_are_what_the_metrics_difference():
    assert np.allclose(np.diff(frame_times()), 0.1)


def test_table_cache_returns_the_built_table_and_rebuilds_a_bad_file(tmp_path, monkeypatch):
    from phylaw.eval import tablecache

    calls = []

    def build(n, value):
        calls.append(n)
        return np.full(n, value, dtype=np.uint16)

    monkeypatch.setenv("PHYLAW_CACHE", str(tmp_path))
    first = tablecache.cached_table(build, 5, 7, shape=(5,), dtype=np.uint16)
    again = tablecache.cached_table(build, 5, 7, shape=(5,), dtype=np.uint16)
    assert calls == [5] and isinstance(again, np.memmap) and (again == first).all()
    assert (again == 7).all() and not again.flags.writeable  # read-only: a table stays right
    other = tablecache.cached_table(build, 5, 8, shape=(5,), dtype=np.uint16)  # other arguments
    assert calls == [5, 5] and (other == 8).all()
    del first, again, other  # their maps, before the files change under them
    for p in (tmp_path / "tables").iterdir():
        p.write_bytes(p.read_bytes()[:20])  # truncated: rebuilt, not an error
    assert (tablecache.cached_table(build, 5, 7, shape=(5,), dtype=np.uint16) == 7).all()
    assert calls == [5, 5, 5]
    monkeypatch.setenv("PHYLAW_CACHE", "off")
    plain = tablecache.cached_table(build, 5, 7, shape=(5,), dtype=np.uint16)
    assert not isinstance(plain, np.memmap)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("PHYLAW_CACHE", str(blocked))  # cannot be written: built in memory
    assert (tablecache.cached_table(build, 5, 7, shape=(5,), dtype=np.uint16) == 7).all()


def test_cached_membership_tables_equal_a_fresh_build():
    from phylaw.eval.parse import _membership_tables

    membership_tables.cache_clear()
    cached = membership_tables((RED, BLUE))
    assert (np.asarray(cached) == _membership_tables((RED, BLUE), (), 128.0, 0.05, 0.85)).all()


def _dense_reference(videos, table, foreign, pq):
    """What ``parse_videos`` measures, computed pixel by pixel on whole frames (numpy and
    scipy.ndimage): weight sums, in_view, moments of the solid pixels of the window's 8-pixel
    groups about their own centroid, blob count (8-neighbour), eroded foreign pixels."""
    from scipy import ndimage

    from phylaw.eval import scan

    v = videos.astype(np.int64)
    code = (255 - v[..., 0]) + 256 * (255 - v[..., 1]) + 65536 * (255 - v[..., 2])
    b, t, h, w = code.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    out = {k: np.zeros((b, t)) for k in ("area", "cx", "cy", "border", "count", "foreign")}
    out["moments"] = np.full((b, t, len(pq)), np.nan)
    cross = ndimage.generate_binary_structure(2, 1)
    for i in range(b):
        for j in range(t):
            wt = table[code[i, j]].astype(np.float64)
            tot = wt.sum()
            out["area"][i, j] = tot / scan.SCALE
            edge = np.zeros((h, w), bool)
            edge[[0, -1]], edge[:, [0, -1]] = True, True
            out["border"][i, j] = wt[edge].sum()
            mask = table[code[i, j]] >= 32768
            lab, n = ndimage.label(mask, np.ones((3, 3)))
            sizes = np.bincount(lab.ravel())[1:]
            keep = (sizes >= 4) & (sizes >= 0.2 * (sizes.max() if n else 0))
            out["count"][i, j] = keep.sum()
            fg = foreign[code[i, j]]
            out["foreign"][i, j] = ndimage.binary_erosion(fg, cross, border_value=0).sum()
            if tot < scan.SCALE:  # less than 1 px: missing
                continue
            cx, cy = (wt * cols).sum() / tot, (wt * rows).sum() / tot
            out["cx"][i, j], out["cy"][i, j] = cx, cy
            reach = scan.WINDOW * np.sqrt(tot / scan.SCALE / np.pi) + 2
            a = cols // 8 * 8 - cx  # offset of the pixel's group's first column
            near = np.maximum(np.maximum(a, -(a + 7)), 0)
            solid = np.where(
                (wt >= np.ceil(scan.SOLID * scan.SCALE)) & (near**2 + (rows - cy) ** 2 <= reach**2),
                wt / scan.SCALE,
                0.0,
            )
            m = solid.sum()
            if m == 0:
                continue
            x = cols - (solid * cols).sum() / m
            y = rows - (solid * rows).sum() / m
            out["moments"][i, j] = [(solid * x**p * y**q).sum() for p, q in pq]
    return out


def test_the_compiled_scan_matches_a_dense_reference():
    """Every per-frame quantity of the group scan equals the whole-frame computation, on frames
    with anti-aliased balls (touching the border, overlapping, duplicated, broken, squares
    touching at a corner: one 8-neighbour blob), two colours,
    codec-like noise, a foreign colour and a width that is not a multiple of 8."""
    from phylaw.eval.flags.balls import foreign_table

    rng = np.random.default_rng(7)
    grid = PixelGrid(45, 40)
    b, t = 3, 6
    r = rng.uniform(0.4, 2.0, (b, 2))
    pos = rng.uniform(-0.5, 10.5, (b, t, 2, 2))  # some cut by the border or out of view
    videos = render(pos, discs(r, (RED, BLUE)), grid)
    videos[0, 1] = np.minimum(videos[0, 0], videos[0, 2])  # two red balls in one frame
    videos[1, 2, 10:30, 20:22] = 255  # a white cut through the balls: break-ups
    videos[1, 3, 5:15, 30:45] = (0, 160, 0)  # a foreign (green) patch on the border
    shapes = np.full((1, t, 40, 45, 3), 255, dtype=np.uint8)  # squares touching at a corner
    shapes[0, 0, 2:7, 2:7] = shapes[0, 0, 7:12, 7:12] = PALETTE[RED]
    shapes[0, 1, 2:7, 20:25] = shapes[0, 1, 7:12, 15:20] = PALETTE[RED]  # the other diagonal
    shapes[0, 2, 2:7, 2:7] = shapes[0, 2, 8:12, 7:12] = PALETTE[RED]  # a row apart: two
    videos = np.concatenate([videos, shapes])
    noisy = rng.integers(-40, 41, videos[2].shape)
    videos[2] = np.clip(videos[2].astype(int) + noisy, 0, 255).astype(np.uint8)
    foreign = foreign_table((RED, BLUE), 48.0, 48.0, 0.5)
    parsed = parse_videos(videos, (RED, BLUE), grid, foreign=foreign, moments_order=4)
    assert parsed.count.max() >= 2 and parsed.foreign_px.max() > 20  # the cases are there
    assert parsed.count[3, :3, 0].tolist() == [1, 1, 2]  # 8-neighbour blobs
    for k, colour in enumerate((RED, BLUE)):
        table = membership_tables((RED, BLUE))[k]
        ref = _dense_reference(videos, table, foreign, parsed.moment_orders)
        assert np.array_equal(parsed.area_px[..., k], ref["area"])
        assert np.array_equal(parsed.in_view[..., k], parsed.visible[..., k] & (ref["border"] == 0))
        assert np.array_equal(parsed.count[..., k], ref["count"])
        seen = parsed.visible[..., k]
        colrow = np.stack([ref["cx"], ref["cy"]], -1)
        assert np.allclose(parsed.pos[..., k, :][seen], grid.px_to_world(colrow)[seen], atol=1e-12)
        assert np.allclose(
            parsed.moments[..., k, :], ref["moments"], rtol=1e-9, atol=1e-9, equal_nan=True
        ), colour
    assert np.array_equal(parsed.foreign_px, ref["foreign"])


def test_the_scan_compiles_where_no_cache_folder_can_be_written(monkeypatch):
    """Where numba finds no folder to keep compiled code in, a kernel compiles for the process
    instead of failing (numba raises 'no locator available' then)."""
    import numba
    from numba.core import caching

    from phylaw.eval import scan

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])

    @scan._kernel(numba.types.int64(scan._array(numba.types.int64)))
    def total(x):
        s = 0
        for v in x:
            s += v
        return s

    assert total(np.arange(5)) == 10

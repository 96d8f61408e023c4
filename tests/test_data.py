"""Splits, determinism, storage integrity and resumable builds."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.data.build import (
    build_shards,
    build_split,
    finalize_split,
    prepare_split,
    shard_ranges,
)
from phylaw.data.spaces import (
    ID_MIN_GRID_DISTANCE,
    LEVELS,
    OOD_LEVELS,
    RANGES,
    candidate_params,
    grid_axes,
    grid_distance,
    resolve_split,
)
from phylaw.data.store import open_store

SCENARIOS = ("uniform", "collision", "parabola")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_eval_id_points_keep_a_quarter_spacing_from_every_training_grid(scenario):
    """No ID evaluation video is (nearly) a training video of any size level: in grid spacings
    (max over parameters), every point is >= ID_MIN_GRID_DISTANCE = 0.25 from the nearest
    training point; a training point itself is at 0 and a cell centre at 0.5."""
    spec = resolve_split(scenario, "eval-id", None, 0)
    params, _ = candidate_params(spec, 0, spec.count)
    ranges = RANGES["code"][scenario]
    assert ID_MIN_GRID_DISTANCE == 0.25
    for level in LEVELS[scenario]:
        axes = grid_axes(scenario, level, ranges)
        assert grid_distance(axes, params).min() >= ID_MIN_GRID_DISTANCE
        on = np.stack([a[[0, len(a) // 2, -1]] for a in axes], -1)  # three training points
        assert np.allclose(grid_distance(axes, on), 0)
        if scenario != "parabola":  # linspace grids: halfway between neighbours is 0.5 away
            mid = np.stack([(a[:1] + a[1:2]) / 2 for a in axes], -1)
            assert np.allclose(grid_distance(axes, mid), 0.5)
    for p, name in enumerate(spec.param_names):
        lo, hi = ranges.id_interval(name)
        assert params[:, p].min() >= lo and params[:, p].max() <= hi


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("ranges", ["code", "paper"])
def test_every_ood_level_inside_its_ranges(scenario, ranges):
    spec = resolve_split(scenario, "eval-ood", None, 0, ranges)
    params, code = candidate_params(spec, 0, spec.count)
    table = RANGES[ranges][scenario]
    levels = list(OOD_LEVELS[scenario])
    counts = np.bincount(code)
    assert len(counts) == len(levels) and counts.max() - counts.min() <= 1
    for lv, name in enumerate(levels):
        rows = params[code == lv]
        for p, pname in enumerate(spec.param_names):
            x = rows[:, p]
            if pname in OOD_LEVELS[scenario][name]:
                (a, b), (c, d) = table.ood_intervals(pname)
                assert np.all(((x >= a) & (x <= b)) | ((x >= c) & (x <= d)))
                assert (x <= b).any() and (x >= c).any()  # both sides sampled
            else:
                lo, hi = table.id_interval(pname)
                assert np.all((x >= lo) & (x <= hi))


def test_training_levels_have_the_paper_sizes():
    counts = {
        sc: [resolve_split(sc, "train", lv.name, 0).count for lv in LEVELS[sc]] for sc in SCENARIOS
    }
    assert counts["uniform"] == counts["parabola"] == [30_000, 300_000, 3_000_000]
    assert counts["collision"] == [28_224, 329_476, 3_407_716]
    assert resolve_split("collision", "train", "3M", 0).level == "3.41M"


def test_subsample_is_seeded_and_inside_the_grid():
    a = resolve_split("uniform", "train", "5K", 1)
    b = resolve_split("uniform", "train", "5000", 1)
    assert a == b and a.subsample and a.level == "30K"
    from phylaw.data.spaces import train_selection

    sel1, sel2 = train_selection(a), train_selection(resolve_split("uniform", "train", "5K", 2))
    assert len(np.unique(sel1)) == 5000 and not np.array_equal(sel1, sel2)


@pytest.mark.parametrize("bad", ["0", "-5", "nan", "abc", "1.5", "", "inf", "99M"])
def test_bad_sizes_are_rejected_with_a_clear_error(bad):
    with pytest.raises(PhylawError, match="size"):
        resolve_split("uniform", "train", bad, 0)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(PhylawError, match="uniform, collision, parabola"):
        resolve_split("pendulum", "train", "30K", 0)
    with pytest.raises(PhylawError, match="train, eval-id, eval-ood"):
        resolve_split("uniform", "test", "30K", 0)


def _files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


def test_same_seed_same_bytes_with_one_and_two_workers(tmp_path):
    spec = resolve_split("collision", "train", "12000", 7)
    build_split(spec, tmp_path / "w1", workers=1, shard_size=2500, progress=False)
    build_split(spec, tmp_path / "w2", workers=2, shard_size=2500, progress=False)
    a, b = _files(tmp_path / "w1"), _files(tmp_path / "w2")
    assert len([k for k in a if k.endswith("pos.npy")]) == 5
    assert a == b


def test_a_build_spread_over_jobs_writes_the_same_bytes(tmp_path):
    """Shard ranges built apart (in any order) and finalized = one build, byte for byte."""
    spec = resolve_split("collision", "train", "12000", 7)
    build_split(spec, tmp_path / "one", shard_size=2500, progress=False)
    root = prepare_split(spec, tmp_path / "jobs")
    assert len(shard_ranges(spec, 2500)) == 5
    assert build_shards(spec, root, 3, 5, shard_size=2500, progress=False) > 0
    with pytest.raises(PhylawError, match="3 of 5 shards are missing"):
        finalize_split(spec, root, shard_size=2500)
    build_shards(spec, root, 0, 3, shard_size=2500, progress=False)
    store = finalize_split(spec, root, shard_size=2500)
    assert _files(tmp_path / "one") == _files(root) and len(store) > 0


def test_shard_size_does_not_change_the_videos(tmp_path):
    spec = resolve_split("parabola", "eval-ood", "3000", 3)
    s1 = build_split(spec, tmp_path / "a", shard_size=700, progress=False)
    s2 = build_split(spec, tmp_path / "b", shard_size=3000, progress=False)
    for key in ("index", "params", "pos0", "pos", "level"):
        assert np.array_equal(s1.column(key), s2.column(key))


def test_collision_data_conserves_momentum_and_energy(tmp_path):
    store = build_split(resolve_split("collision", "eval-ood", "600", 0), tmp_path, progress=False)
    traj = store.trajectory(np.arange(len(store)))
    m = traj.bodies.mass
    mom = (traj.vel[..., 0] * m[:, None]).sum(-1)
    energy = (0.5 * traj.vel[..., 0] ** 2 * m[:, None]).sum(-1)
    assert np.allclose(mom, mom[:, :1], rtol=0, atol=1e-12)
    assert np.allclose(energy, energy[:, :1], rtol=1e-12, atol=1e-14)
    # the stored float32 positions agree with the exact law (float32 rounding only)
    from phylaw.physics import collision

    batch = store.get(np.arange(len(store)))
    exact_pos, _ = collision.exact(batch.params, batch.pos0, store.times)
    assert np.abs(exact_pos - batch.pos).max() < 1e-5
    # finite differences of stored positions conserve momentum away from the contact frame
    v = np.diff(batch.pos[..., 0].astype(np.float64), axis=1) / 0.1
    p = (v * m[:, None]).sum(-1)
    tc = collision.contact_time(batch.params, batch.pos0)
    pre = store.times[1:] <= tc[:, None]
    post = store.times[:-1] > tc[:, None]
    ref = mom[:, :1]
    assert np.abs(p - ref)[pre | post].max() < 1e-3


def test_rebuilding_a_finished_split_is_a_no_op_and_other_specs_are_refused(tmp_path):
    spec = resolve_split("uniform", "eval-id", "500", 0)
    build_split(spec, tmp_path, progress=False)
    before = os.stat(tmp_path / "manifest.json").st_mtime_ns
    build_split(spec, tmp_path, progress=False)
    assert os.stat(tmp_path / "manifest.json").st_mtime_ns == before
    with pytest.raises(PhylawError, match="different split"):
        build_split(resolve_split("uniform", "eval-id", "500", 1), tmp_path, progress=False)


def test_killed_build_resumes_without_redoing_finished_shards(tmp_path):
    out = tmp_path / "split"
    code = (
        "from phylaw.data.build import build_split; from phylaw.data.spaces import resolve_split;"
        f"build_split(resolve_split('collision','train','1M',0), {str(out)!r}, workers=1,"
        " shard_size=10000, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while time.time() < deadline:
        done = [p for p in (out / "shards").glob("0*")] if (out / "shards").exists() else []
        if len(done) >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists(), "the build finished before it was killed"
    finished = {p.name: p.stat().st_ino for p in (out / "shards").glob("0*")}
    assert len(finished) >= 3
    # every finished shard is complete: no partial file under a final name
    for name in finished:
        assert (out / "shards" / name / "shard.json").exists()
    store = build_split(
        resolve_split("collision", "train", "1M", 0), out, shard_size=10000, progress=False
    )
    for name, ino in finished.items():
        assert (out / "shards" / name).stat().st_ino == ino  # kept, not rewritten
    assert store.verify() == []
    assert not list((out / "shards").glob(".*"))  # temporary directories cleaned up
    assert len(store.manifest["shards"]) == 100


def test_corrupt_manifest_and_truncated_shard_give_clear_errors(tmp_path):
    store = build_split(resolve_split("uniform", "eval-id", "300", 0), tmp_path, progress=False)
    shard = tmp_path / "shards" / store.manifest["shards"][0]["name"]
    data = (shard / "pos.npy").read_bytes()
    (shard / "pos.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(PhylawError, match="truncated"):
        open_store(tmp_path).get([0])
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(PhylawError, match="corrupt"):
        open_store(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(PhylawError, match="not a phylaw split"):
        open_store(tmp_path)


def test_checksum_verification_finds_a_flipped_byte(tmp_path):
    store = build_split(resolve_split("uniform", "eval-id", "300", 0), tmp_path, progress=False)
    path = tmp_path / "shards" / store.manifest["shards"][0]["name"] / "params.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert any("checksum" in p for p in open_store(tmp_path).verify())


def test_unwritable_output_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PhylawError, match="cannot write"):
        build_split(resolve_split("uniform", "eval-id", "10", 0), blocker / "sub", progress=False)

"""Video files and exports: mp4/gif round trips, the authors' HDF5 layout, bad input."""

import io
import json

import av
import h5py
import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.data import export as export_mod
from phylaw.data.build import build_split
from phylaw.data.export import export_store, render_batches
from phylaw.data.io.phyworld import (
    PhyworldWriter,
    import_phyworld,
    inspect_phyworld,
    read_phyworld,
    read_phyworld_videos,
)
from phylaw.data.io.video import decode_video, encode_gif, encode_mp4, write_gif, write_mp4
from phylaw.data.spaces import resolve_split

RES = 32  # small frames keep the tests fast; the layout does not depend on the size


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    specs = {
        "collision": resolve_split("collision", "eval-ood", "40", 0),
        "uniform": resolve_split("uniform", "eval-id", "24", 0),
        "parabola": resolve_split("parabola", "eval-id", "12", 0),
    }
    return {k: build_split(s, root / k, progress=False) for k, s in specs.items()}


def _write_states(path, store, chunk_size=1000):
    """The authors' merged layout of a store's states, with placeholder video bytes."""
    s = store.get(slice(None))
    n, t, nb, _ = s.pos.shape
    with PhyworldWriter(path, n, t, nb, s.params.shape[1], chunk_size) as w:
        w.add(s.params, s.pos.astype(np.float64), [b"\0"] * n)
    return s


# ------------------------------------------------------------------------------ video codecs
def test_mp4_round_trip_of_a_rendered_ball(stores, tmp_path):
    _, frames = next(render_batches(stores["uniform"], 1, 128))
    data = encode_mp4(frames[0])
    with av.open(io.BytesIO(data)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.codec_context.pix_fmt, s.average_rate) == (
            "h264",
            "yuv420p",
            10,
        )
    back = decode_video(data)
    assert back.shape == frames[0].shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames[0]).mean() < 3
    path = write_mp4(tmp_path / "v.mp4", frames[0])
    assert np.array_equal(decode_video(path), back)


def test_mp4_bytes_depend_only_on_the_frames(stores):
    """Same frames, same bytes, however often and in whichever order they are encoded
    (libx264's lookahead and threaded colour conversion once varied between calls)."""
    _, frames = next(render_batches(stores["collision"], 16, 64))
    first = [encode_mp4(v) for v in frames]
    for again in ([encode_mp4(v) for v in frames[::-1]][::-1], [encode_mp4(v) for v in frames]):
        assert [a == b for a, b in zip(first, again, strict=True)] == [True] * len(frames)


def test_gif_round_trip_is_exact_and_keeps_repeated_frames(stores, tmp_path):
    _, frames = next(render_batches(stores["collision"], 1, 64))  # > 256 colours: local tables
    assert np.array_equal(decode_video(encode_gif(frames[0])), frames[0])
    still = np.repeat(frames[0][:1], 5, axis=0)  # repeats must not be merged
    path = write_gif(tmp_path / "still.gif", still)
    assert np.array_equal(decode_video(path), still)


def test_odd_size_mp4_and_bad_arrays_are_refused():
    with pytest.raises(PhylawError, match="even"):
        encode_mp4(np.zeros((2, 15, 16, 3), np.uint8))
    with pytest.raises(PhylawError, match="uint8"):
        encode_mp4(np.zeros((2, 16, 16, 3), np.float32))


def test_corrupt_videos_name_the_file(tmp_path):
    good = encode_mp4(np.zeros((4, 16, 16, 3), np.uint8))
    for name, data in (
        ("cut.mp4", good[: len(good) // 2]),
        ("junk.mp4", b"junk" * 50),
        ("empty.gif", b""),
        ("cut.gif", encode_gif(np.zeros((3, 8, 8, 3), np.uint8))[:40]),
    ):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PhylawError, match=name):
            decode_video(tmp_path / name)
    with pytest.raises(PhylawError, match="not found"):
        decode_video(tmp_path / "missing.mp4")


# ------------------------------------------------------------------------ the authors' layout
@pytest.mark.parametrize("scenario", ["collision", "uniform"])
def test_phyworld_export_import_round_trip(stores, tmp_path, scenario):
    store = stores[scenario]
    out = export_store(store, "phyworld-hdf5", tmp_path / "x.hdf5", resolution=RES, progress=False)
    n, nb = len(store), 2 if scenario == "collision" else 1
    with h5py.File(out) as f:
        assert sorted(f) == ["init_streams", "position_streams", "video_streams"]
        assert list(f["video_streams"]) == ["00000"]
        pos = f["position_streams/00000"]
        assert pos.shape == ((n, 32, 2, 2) if nb == 2 else (n, 32, 2)) and pos.dtype == np.float64
        assert f["init_streams/00000"].dtype == np.float64
        assert h5py.check_vlen_dtype(f["video_streams/00000"].dtype) == np.uint8
    imported = import_phyworld(out, tmp_path / "store", progress=False)
    a, b = store.get(slice(None)), imported.get(slice(None))
    assert imported.scenario == scenario and imported.split == "imported"
    assert np.array_equal(a.params, b.params) and np.array_equal(a.pos, b.pos)
    assert np.array_equal(b.index, np.arange(n))
    assert np.abs(a.pos0 - b.pos0).max() < 1e-5  # estimated from frame 0
    m = imported.manifest
    assert m["source"] == "phyworld-hdf5" and m["levels"] == ["id"]
    assert m["phyworld"]["chunks"] == [{"key": "00000", "offset": 0, "count": n}]
    assert imported.verify() == []
    videos = read_phyworld_videos(out, [0, n - 1])
    _, frames = next(render_batches(store, n, RES))
    assert videos.shape == (2, 32, RES, RES, 3)
    assert np.abs(videos[1].astype(int) - frames[n - 1]).mean() < 3


def test_chunks_keep_a_running_index_and_parabola_is_detected(stores, tmp_path):
    states = _write_states(tmp_path / "p.hdf5", stores["parabola"], chunk_size=5)
    layout = inspect_phyworld(tmp_path / "p.hdf5")
    assert layout.keys == ("00000", "00001", "00002") and layout.counts == (5, 5, 2)
    assert layout.locate(7) == ("00001", 2)
    data = read_phyworld(tmp_path / "p.hdf5")
    assert np.array_equal(data.params, states.params)
    store = import_phyworld(tmp_path / "p.hdf5", tmp_path / "s", shard_size=4, progress=False)
    assert store.scenario == "parabola" and len(store.manifest["shards"]) == 3
    assert [c["offset"] for c in store.manifest["phyworld"]["chunks"]] == [0, 5, 10]
    assert np.array_equal(store.get(slice(None)).pos, states.pos)


def test_single_chunk_file_is_read(stores, tmp_path):
    s = stores["uniform"].get(slice(None))
    with h5py.File(tmp_path / "3.hdf5", "w") as f:
        f["init_streams"] = s.params
        f["position_streams"] = s.pos[:, :, 0].astype(np.float64)
        f.create_dataset("video_streams", (len(s.index),), dtype=h5py.vlen_dtype(np.uint8))
    assert inspect_phyworld(tmp_path / "3.hdf5").keys == ("00003",)
    store = import_phyworld(tmp_path / "3.hdf5", tmp_path / "s", progress=False)
    assert store.scenario == "uniform" and np.array_equal(store.get(slice(None)).pos, s.pos)
    with pytest.raises(PhylawError, match="needs 4"):
        import_phyworld(tmp_path / "3.hdf5", tmp_path / "s2", scenario="collision", progress=False)


def test_wrong_layouts_are_named(stores, tmp_path):
    def make(name, build):
        with h5py.File(tmp_path / name, "w") as f:
            build(f)
        return tmp_path / name

    other = make("other.hdf5", lambda f: f.create_dataset("frames", data=np.zeros(3)))
    with pytest.raises(PhylawError, match="missing video_streams, position_streams"):
        read_phyworld(other)

    def mismatched(f):
        f["init_streams"] = np.zeros((4, 2))
        f["position_streams"] = np.zeros((3, 32, 2))
        f.create_dataset("video_streams", (4,), dtype=h5py.vlen_dtype(np.uint8))

    with pytest.raises(PhylawError, match="mismatched lengths"):
        read_phyworld(make("len.hdf5", mismatched))

    def bad_shape(f):
        f["init_streams"] = np.zeros((4, 2))
        f["position_streams"] = np.zeros((4, 32, 3))
        f.create_dataset("video_streams", (4,), dtype=h5py.vlen_dtype(np.uint8))

    with pytest.raises(PhylawError, match="position_streams must be"):
        read_phyworld(make("shape.hdf5", bad_shape))
    _write_states(tmp_path / "m.hdf5", stores["uniform"], chunk_size=10)
    with h5py.File(tmp_path / "m.hdf5", "a") as f:
        del f["init_streams/00001"]
    with pytest.raises(PhylawError, match="init_streams lacks chunk"):
        read_phyworld(tmp_path / "m.hdf5")


def test_truncated_and_garbage_files_are_refused(stores, tmp_path):
    _write_states(tmp_path / "ok.hdf5", stores["collision"])
    data = (tmp_path / "ok.hdf5").read_bytes()
    (tmp_path / "cut.hdf5").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5" * 100)
    for name in ("cut.hdf5", "junk.hdf5", "missing.hdf5"):
        with pytest.raises(PhylawError, match=name):
            import_phyworld(tmp_path / name, tmp_path / f"s-{name}", progress=False)
    with pytest.raises(PhylawError, match=r"video_streams/00000\[0\]"):
        read_phyworld_videos(tmp_path / "ok.hdf5", [0])  # placeholder bytes, not an mp4


# ------------------------------------------------------------------------------- file exports
def test_npz_export_contents(stores, tmp_path):
    store = stores["collision"]
    out = export_store(store, "npz", tmp_path / "v.npz", resolution=RES, limit=5, progress=False)
    s = store.get(slice(0, 5))
    _, frames = next(render_batches(store, 5, RES))
    with np.load(out, allow_pickle=False) as z:
        assert np.array_equal(z["videos"], frames)
        assert np.array_equal(z["index"], s.index) and np.array_equal(z["params"], s.params)
        assert np.array_equal(z["pos"], s.pos) and np.array_equal(z["level"], s.level)
        assert np.array_equal(z["times"], store.times)
        assert list(z["param_names"]) == ["r1", "r2", "v1", "v2"]


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_folder_export_names_files_by_video_id(stores, tmp_path, fmt):
    store = stores["collision"]
    ids = store.get(slice(0, 3)).index
    assert ids[-1] != 2  # placement drops make ids differ from positions
    out = export_store(store, fmt, tmp_path / "vids", resolution=RES, limit=3, progress=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{i:07d}.{fmt}" for i in ids] + ["videos.json"])
    listing = json.loads((out / "videos.json").read_text())
    assert [v["id"] for v in listing["videos"]] == ids.tolist()
    assert decode_video(out / f"{ids[2]:07d}.{fmt}").shape == (32, RES, RES, 3)


def test_export_validates_input_and_leaves_nothing_when_interrupted(stores, tmp_path, monkeypatch):
    store = stores["uniform"]
    for kwargs, match in (
        ({"fmt": "avi"}, "mp4, gif, npz, phyworld-hdf5"),
        ({"fmt": "mp4", "resolution": 31}, "even"),
        ({"fmt": "npz", "resolution": 0}, "resolution"),
        ({"fmt": "npz", "limit": 0}, "limit"),
    ):
        with pytest.raises(PhylawError, match=match):
            export_store(store, out=tmp_path / "x", progress=False, **kwargs)
    (tmp_path / "exists.npz").write_bytes(b"")
    with pytest.raises(PhylawError, match="already exists"):
        export_store(store, "npz", tmp_path / "exists.npz", progress=False)

    calls = []

    def failing(frames, fps=10, crf=25):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return b"\0"

    monkeypatch.setattr(export_mod, "encode_mp4", failing)
    (tmp_path / "out").mkdir()
    for fmt, name in (("mp4", "folder"), ("phyworld-hdf5", "f.hdf5")):
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            export_store(store, fmt, tmp_path / "out" / name, resolution=RES, progress=False)
        assert list((tmp_path / "out").iterdir()) == []

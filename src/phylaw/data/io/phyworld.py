"""The authors' HDF5 layout (reference section 1.1): read it, write it, import it into a store.

Two layouts hold the same three keys, ``video_streams`` (one vlen-uint8 mp4 per video),
``position_streams`` (float64 centres in world units, [n, 32, 2] for one ball and
[n, 32, 2 balls, 2] for two) and ``init_streams`` (float64 scene parameters, [n, P]):

* a **chunk file** (``<chunk_id>.hdf5``) has the three datasets at its root;
* a **merged file** (``<dir>.hdf5``) has one group per key and, in each group, one dataset per
  chunk named ``"{chunk_id:05d}"``, so ``f["video_streams"]["00003"][k]`` is video k of chunk 3.

The authors address a video by (chunk key, local index). phylaw numbers the videos of a file
with one running index over the chunks in sorted key order; ``PhyworldLayout.locate`` maps it
back. A single chunk file gets the key of its file name when that is a number, else "00000".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from phylaw import PhylawError, __version__
from phylaw.data.io.video import decode_video
from phylaw.data.spaces import bodies_table
from phylaw.data.store import FORMAT, FORMAT_VERSION, MANIFEST, Store, write_json, write_shard
from phylaw.physics.scenarios import get_scenario
from phylaw.physics.state import FRAME_DT_S, WORLD_SIZE, frame_times

KEYS = ("video_streams", "position_streams", "init_streams")
CHUNK_SIZE = 1000  # the authors' HDF5_SIZE default
IMPORT_SHARD_SIZE = 100_000  # videos per store shard (as data.build.SHARD_SIZE)
CONSTANT_Y_TOL = 1e-6  # world units: a one-ball file whose y moves less is uniform motion


@dataclass(frozen=True)
class PhyworldLayout:
    """What a validated file holds: chunk keys in sorted order and their video counts."""

    path: Path
    merged: bool
    keys: tuple[str, ...]
    counts: tuple[int, ...]
    num_frames: int
    num_bodies: int
    num_params: int

    @property
    def offsets(self) -> np.ndarray:
        """Running index of each chunk's first video, [C + 1] (last entry: total count)."""
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    def __len__(self) -> int:
        return int(sum(self.counts))

    def locate(self, index: int) -> tuple[str, int]:
        """The authors' id (chunk key, local index) of running index ``index``."""
        if not 0 <= index < len(self):
            raise PhylawError(f"video {index} is out of range for {self.path} ({len(self)} videos)")
        c = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.keys[c], int(index - self.offsets[c])


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise PhylawError(f"HDF5 file not found: {path}") from None
    except OSError as e:
        raise PhylawError(
            f"cannot read {path}: not an HDF5 file, or corrupt/truncated ({str(e).split(';')[0]})"
        ) from None


def _chunk(f: h5py.File, merged: bool, key: str, chunk: str) -> h5py.Dataset:
    """Dataset ``key`` of ``chunk``: ``f[key][chunk]`` (merged file) or ``f[key]`` (chunk file)."""
    ds = f[key][chunk] if merged else f[key]
    if not isinstance(ds, h5py.Dataset):
        raise PhylawError(f"{f.filename}: {ds.name} must be a dataset, not a group")
    return ds


def _chunk_key(path: Path) -> str:
    return f"{int(path.stem):05d}" if path.stem.isdigit() else "00000"


def _inspect(f: h5py.File, path: Path) -> PhyworldLayout:
    missing = [k for k in KEYS if k not in f]
    if missing:
        raise PhylawError(
            f"{path} is not in the authors' HDF5 layout: missing "
            f"{', '.join(missing)} (it holds: {', '.join(f.keys()) or 'nothing'})"
        )
    kinds = {type(f[k]) for k in KEYS}
    if kinds == {h5py.Group}:
        chunk_sets = {k: set(f[k].keys()) for k in KEYS}
        keys = sorted(set.union(*chunk_sets.values()))
        for k, have in chunk_sets.items():
            if have != set(keys):
                raise PhylawError(
                    f"{path}: group {k} lacks chunk(s) {', '.join(sorted(set(keys) - have))}"
                )
        if not keys:
            raise PhylawError(f"{path}: the groups {', '.join(KEYS)} hold no chunk")
        merged = True
    elif kinds == {h5py.Dataset}:
        keys, merged = [_chunk_key(path)], False
    else:
        raise PhylawError(
            f"{path}: {', '.join(KEYS)} must be all groups (merged file) or all "
            "datasets (chunk file)"
        )
    counts, shapes = [], set()
    for key in keys:
        video, pos, init = (_chunk(f, merged, name, key) for name in KEYS)
        where = f"{path}: chunk {key}" if merged else str(path)
        lens = {
            "video_streams": video.shape[0] if video.ndim else None,
            "position_streams": pos.shape[0] if pos.ndim else None,
            "init_streams": init.shape[0] if init.ndim else None,
        }
        if len(set(lens.values())) != 1 or None in lens.values():
            raise PhylawError(
                f"{where}: mismatched lengths " + ", ".join(f"{k} {n}" for k, n in lens.items())
            )
        if video.ndim != 1:
            raise PhylawError(
                f"{where}: video_streams must be 1-D (one mp4 per video); got shape {video.shape}"
            )
        if not (pos.ndim == 3 and pos.shape[2] == 2) and not (pos.ndim == 4 and pos.shape[3] == 2):
            raise PhylawError(
                f"{where}: position_streams must be [n, T, 2] or [n, T, N, 2]; "
                f"got shape {pos.shape}"
            )
        if init.ndim != 2:
            raise PhylawError(f"{where}: init_streams must be [n, P]; got shape {init.shape}")
        shapes.add((pos.shape[1], 1 if pos.ndim == 3 else pos.shape[2], init.shape[1]))
        counts.append(int(pos.shape[0]))
    if len(shapes) != 1:
        raise PhylawError(f"{path}: chunks disagree on (frames, bodies, params): {sorted(shapes)}")
    t, n, p = shapes.pop()
    return PhyworldLayout(path, merged, tuple(keys), tuple(counts), t, n, p)


def inspect_phyworld(path: str | Path) -> PhyworldLayout:
    """Validate a merged or chunk file and describe it (reads shapes only, not the data)."""
    path = Path(path)
    with _open(path) as f:
        return _inspect(f, path)


@dataclass
class PhyworldData:
    """States of a whole file: ``params`` [n, P] float64, ``pos`` [n, T, N, 2] float64."""

    layout: PhyworldLayout
    params: np.ndarray
    pos: np.ndarray


def _read_chunk(f: h5py.File, layout: PhyworldLayout, chunk: str) -> tuple[np.ndarray, ...]:
    try:
        params = np.asarray(_chunk(f, layout.merged, "init_streams", chunk)[()], dtype=np.float64)
        pos = np.asarray(_chunk(f, layout.merged, "position_streams", chunk)[()], dtype=np.float64)
    except (OSError, ValueError, TypeError) as e:
        raise PhylawError(f"{layout.path}: cannot read chunk {chunk} ({e})") from None
    return params, pos.reshape(len(pos), layout.num_frames, layout.num_bodies, 2)


def read_phyworld(path: str | Path) -> PhyworldData:
    """Read the states (``init_streams``, ``position_streams``) of a merged or chunk file.

    Videos are not decoded (see ``read_phyworld_videos``). One-ball positions [n, T, 2] come back
    as [n, T, 1, 2]. Raises ``PhylawError`` naming what is missing or malformed.
    """
    path = Path(path)
    with _open(path) as f:
        layout = _inspect(f, path)
        parts = [_read_chunk(f, layout, key) for key in layout.keys]
    return PhyworldData(
        layout, np.concatenate([p for p, _ in parts]), np.concatenate([q for _, q in parts])
    )


def read_phyworld_videos(path: str | Path, indices) -> np.ndarray:
    """Decode the stored mp4s of running indices ``indices`` -> uint8 [K, T, H, W, 3].

    Frames come as stored: row 0 is the top of the image (world y = 10).
    """
    path = Path(path)
    indices = np.atleast_1d(np.asarray(indices))
    if not np.issubdtype(indices.dtype, np.integer):
        raise PhylawError(f"video indices must be integers; got {indices.dtype}")
    with _open(path) as f:
        layout = _inspect(f, path)
        videos = []
        for index in indices.tolist():
            chunk, local = layout.locate(index)
            name = f"{path}: video_streams/{chunk}[{local}]"
            try:
                data = _chunk(f, layout.merged, "video_streams", chunk)[local]
            except (OSError, ValueError, TypeError) as e:
                raise PhylawError(f"cannot read {name} ({e})") from None
            videos.append(decode_video(np.asarray(data, dtype=np.uint8), name=name))
    if len({v.shape for v in videos}) > 1:
        raise PhylawError(
            f"{path}: the requested videos differ in shape {sorted({v.shape for v in videos})}"
        )
    return np.stack(videos) if videos else np.zeros((0, 0, 0, 0, 3), np.uint8)


# ------------------------------------------------------------------------------------ write
class PhyworldWriter:
    """Streams states and mp4 bytes into a merged file; renamed into place on ``close``.

    ``total`` videos are cut into chunks of ``chunk_size`` named "00000", "00001", ...; call
    ``add`` with consecutive batches. An exception inside ``with`` deletes the temporary file,
    so an interrupted export never leaves a partial file under ``path``.
    """

    def __init__(
        self,
        path: str | Path,
        total: int,
        num_frames: int,
        num_bodies: int,
        num_params: int,
        chunk_size: int = CHUNK_SIZE,
        attrs: dict | None = None,
    ):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.total, self.chunk_size, self.done = total, chunk_size, 0
        self.file = h5py.File(self.tmp, "w")
        self.file.attrs.update(attrs or {})
        groups = {k: self.file.create_group(k) for k in KEYS}
        pos_shape = (num_frames, 2) if num_bodies == 1 else (num_frames, num_bodies, 2)
        self.chunks = []
        for c, start in enumerate(range(0, total, chunk_size)):
            n, key = min(chunk_size, total - start), f"{c:05d}"
            self.chunks.append(
                (
                    start,
                    {
                        "video_streams": groups["video_streams"].create_dataset(
                            key, (n,), dtype=h5py.vlen_dtype(np.uint8)
                        ),
                        "position_streams": groups["position_streams"].create_dataset(
                            key, (n, *pos_shape), dtype=np.float64
                        ),
                        "init_streams": groups["init_streams"].create_dataset(
                            key, (n, num_params), dtype=np.float64
                        ),
                    },
                )
            )

    def add(self, params: np.ndarray, pos: np.ndarray, videos: list[bytes]) -> None:
        """Append a batch: ``params`` [B, P], ``pos`` [B, T, N, 2], ``videos`` B mp4 bytes."""
        for b in range(len(params)):
            start, ds = self.chunks[self.done // self.chunk_size]
            k = self.done - start
            ds["init_streams"][k] = params[b]
            ds["position_streams"][k] = pos[b].reshape(ds["position_streams"].shape[1:])
            ds["video_streams"][k] = np.frombuffer(videos[b], dtype=np.uint8)
            self.done += 1

    def close(self) -> Path:
        """Finish the file and rename it to ``path`` (fails if fewer than ``total`` were added)."""
        self.file.close()
        if self.done != self.total:
            self.tmp.unlink(missing_ok=True)
            raise PhylawError(f"{self.path}: {self.done} of {self.total} videos were written")
        os.replace(self.tmp, self.path)
        return self.path

    def __enter__(self) -> PhyworldWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.file.close()
            self.tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------- import
def detect_scenario(layout: PhyworldLayout, pos: np.ndarray) -> str:
    """Scenario of a file: 4 params -> collision; 2 -> uniform if y is constant else parabola.

    ``pos``: [n, T, N, 2] positions of (a sample of) the file's videos.
    """
    if layout.num_params == 4 and layout.num_bodies == 2:
        return "collision"
    if layout.num_params == 2 and layout.num_bodies == 1:
        y = pos[..., 1]
        return "uniform" if np.all(np.ptp(y, axis=1) <= CONSTANT_Y_TOL) else "parabola"
    raise PhylawError(
        f"{layout.path}: cannot tell the scenario of a file with {layout.num_params} init "
        f"columns and {layout.num_bodies} bodies; phylaw imports uniform and parabola "
        "([r, v], one ball) and collision ([r1, r2, v1, v2], two balls)"
    )


def estimate_pos0(scenario: str, params: np.ndarray, pos: np.ndarray, t0_s: float) -> np.ndarray:
    """Positions at t = 0 [n, N, 2] from the first frame ``pos[:, 0]`` taken at ``t0_s``.

    Subtracts the scenario's exact displacement over ``t0_s`` (0.01 s): exact for phylaw's own
    data, and within 0.5 g dt^2 = 1.25e-4 world units of the authors' Box2D integration.
    """
    first = pos[:, 0].astype(np.float64)
    moved, _ = get_scenario(scenario).exact(params, first, np.array([t0_s]))
    return first - (moved[:, 0] - first)


def _prepare_out(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PhylawError(f"cannot write to {root}: {e.strerror}; choose another --out") from None
    if any(p.name != "shards" for p in root.iterdir()):
        raise PhylawError(f"{root} is not empty; choose another --out or delete it")


def import_phyworld(
    path: str | Path,
    out_dir: str | Path,
    scenario: str | None = None,
    shard_size: int = IMPORT_SHARD_SIZE,
    progress: bool = True,
) -> Store:
    """Import the states of a merged or chunk file into a phylaw store at ``out_dir``.

    ``scenario``: uniform, parabola or collision; detected when None (``detect_scenario``).
    The store's ``index`` is the running index over chunks in sorted key order; the manifest's
    ``phyworld.chunks`` records each chunk's key and offset. Positions are stored as float32
    (the store's dtype); ``pos0`` is estimated by ``estimate_pos0``. Videos are not imported.
    """
    path, root = Path(path), Path(out_dir)
    with _open(path) as f:
        layout = _inspect(f, path)
        first_params, first_pos = _read_chunk(f, layout, layout.keys[0])
        scenario = scenario or detect_scenario(layout, first_pos)
        scen = get_scenario(scenario)
        if (len(scen.PARAM_NAMES), scen.NUM_BODIES) != (layout.num_params, layout.num_bodies):
            raise PhylawError(
                f"{path} holds {layout.num_params} init columns and {layout.num_bodies} bodies; "
                f"{scenario} needs {len(scen.PARAM_NAMES)} and {scen.NUM_BODIES}"
            )
        if len(layout) == 0:
            raise PhylawError(f"{path} holds no video to import")
        _prepare_out(root)
        times = frame_times(layout.num_frames)
        shards, pending, written = [], [], 0
        bar = tqdm(
            total=len(layout), unit="video", desc=f"import {path.name}", disable=not progress
        )

        def flush(upto: int) -> None:
            nonlocal pending, written
            params = np.concatenate([p for p, _ in pending])
            pos = np.concatenate([q for _, q in pending])
            while len(params) >= upto and len(params):
                n = min(shard_size, len(params))
                arrays = {
                    "index": np.arange(written, written + n, dtype=np.int64),
                    "params": params[:n],
                    "pos0": estimate_pos0(scenario, params[:n], pos[:n], float(times[0])),
                    "pos": pos[:n].astype(np.float32),
                    "level": np.zeros(n, np.int8),
                }
                meta = {"start": written, "stop": written + n, "level_counts": [n]}
                shards.append(write_shard(root, f"{len(shards):05d}", arrays, meta))
                params, pos, written = params[n:], pos[n:], written + n
            pending = [(params, pos)]

        with bar:
            for c, key in enumerate(layout.keys):
                part = (first_params, first_pos) if c == 0 else _read_chunk(f, layout, key)
                pending.append(part)
                if sum(len(p) for p, _ in pending) >= shard_size:
                    flush(shard_size)
                bar.update(len(part[0]))
            flush(1)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": "phyworld-hdf5",
        "phylaw_version": __version__,
        "spec": None,
        "scenario": scenario,
        "split": "imported",
        "size": str(len(layout)),
        "seed": None,
        "ranges": None,
        "candidates": len(layout),
        "count": len(layout),
        "param_names": list(scen.PARAM_NAMES),
        "levels": ["id"],
        "level_counts": {"id": len(layout)},
        "num_frames": layout.num_frames,
        "frame_dt_s": FRAME_DT_S,
        "frame_times_s": times.tolist(),
        "world_size": WORLD_SIZE,
        "bodies": bodies_table(scenario),
        "shard_size": shard_size,
        "shards": shards,
        "phyworld": {
            "path": str(path.resolve()),
            "layout": "merged" if layout.merged else "chunk",
            "chunks": [
                {"key": k, "offset": int(o), "count": n}
                for k, o, n in zip(layout.keys, layout.offsets, layout.counts, strict=False)
            ],
            "pos0": "estimated from frame 0 minus the exact displacement over frame_times_s[0]",
        },
    }
    write_json(root / MANIFEST, manifest)
    return Store(root)

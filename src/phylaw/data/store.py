"""Sharded storage of states (parameters and trajectories), never pixels.

Layout of a split directory::

    manifest.json          what the split is (scenario, split, seed, sizes, timing, levels,
                           format version) and each shard's counts and SHA-256 checksums
    shards/00000/*.npy     one .npy per array, memory-mapped on read

Arrays per video: ``index`` int64 (the candidate index, the video's id), ``params`` float64
[P] (the authors' ``init_streams``), ``pos0`` float64 [N, 2] (initial positions, t = 0),
``pos`` float32 [T, N, 2] (positions at the frame times, the ``position_streams``) and
``level`` int8 (index into ``manifest["levels"]``). Splits whose bodies vary per video store
their colour and shape codes as further ``params`` columns (``data.regionsplit``; the manifest's
body table names them). A 3M uniform split is ~0.9 GB. A split may
store more arrays per video (the combinatorial scenes store angles and body geometry); the
manifest then lists them all under ``"arrays"`` and ``StateBatch.extra`` holds the additional ones.

A shard directory is written under a temporary name and renamed when complete, and the manifest
is replaced atomically, so an interrupted build never leaves a corrupt file under a final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from phylaw import PhylawError
from phylaw.physics.state import Bodies, SceneTrajectory, Shape, Trajectory

FORMAT = "phylaw-states"
FORMAT_VERSION = 1
ARRAYS = ("index", "params", "pos0", "pos", "level")
MANIFEST = "manifest.json"
ATTRS = ("shape", "colour")  # body attributes a split may vary per video


def sha256(array: np.ndarray) -> str:
    """Hex SHA-256 of an array's bytes (C order)."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj: dict) -> None:
    """Atomically write ``obj`` as indented JSON (sorted keys: same content, same bytes)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def write_shard(root: Path, name: str, arrays: dict[str, np.ndarray], meta: dict) -> dict:
    """Write one shard atomically under ``root/shards/name``; returns its manifest entry."""
    shards = root / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    tmp = shards / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    entry = dict(meta, name=name, count=int(len(arrays["index"])), sha256={})
    for key in arrays:
        np.save(tmp / f"{key}.npy", arrays[key], allow_pickle=False)
        entry["sha256"][key] = sha256(arrays[key])
    write_json(tmp / "shard.json", entry)
    final = shards / name
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    return entry


def read_json(path: Path, what: str) -> dict:
    """Parse a JSON file or fail with one line saying which file is broken."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PhylawError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PhylawError(
            f"{what} {path} is corrupt ({e.msg if hasattr(e, 'msg') else e}); rebuild the split"
        ) from None


@dataclass
class StateBatch:
    """States of a batch of videos read from a store (arrays indexed like the request)."""

    index: np.ndarray  # [B] int64 video ids
    params: np.ndarray  # [B, P] float64
    pos0: np.ndarray  # [B, N, 2] float64
    pos: np.ndarray  # [B, T, N, 2] float32
    level: np.ndarray  # [B] int8
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # arrays beyond ``ARRAYS``


class Store:
    """Read access to a split directory: memory-mapped, random access, safe across fork.

    Arrays are opened lazily in each process, so a ``Store`` can be handed to DataLoader
    workers. ``len(store)`` is the number of stored videos (after placement drops).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise PhylawError(
                f"no split directory at {self.root}; build one with 'phylaw data build'"
            )
        self.manifest = read_json(self.root / MANIFEST, "manifest")
        m = self.manifest
        if m.get("format") != FORMAT or not isinstance(m.get("shards"), list):
            raise PhylawError(f"{self.root / MANIFEST} is not a phylaw split manifest")
        if m.get("format_version") != FORMAT_VERSION:
            raise PhylawError(
                f"{self.root} has format version {m.get('format_version')}, this phylaw reads "
                f"{FORMAT_VERSION}; rebuild the split with this version"
            )
        self.array_names = tuple(m.get("arrays", ARRAYS))
        counts = [s["count"] for s in m["shards"]]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._arrays: dict[tuple[int, str], np.ndarray] = {}
        self._pid = None
        self.times = np.asarray(m["frame_times_s"], dtype=np.float64)

    # ---------------------------------------------------------------- metadata
    @property
    def scenario(self) -> str:
        return self.manifest["scenario"]

    @property
    def split(self) -> str:
        return self.manifest["split"]

    @property
    def levels(self) -> list[str]:
        return self.manifest["levels"]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    # ---------------------------------------------------------------- arrays
    def _array(self, shard: int, key: str) -> np.ndarray:
        if self._pid != os.getpid():  # re-open after fork
            self._arrays, self._pid = {}, os.getpid()
        arr = self._arrays.get((shard, key))
        if arr is None:
            entry = self.manifest["shards"][shard]
            path = self.root / "shards" / entry["name"] / f"{key}.npy"
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except FileNotFoundError:
                raise PhylawError(f"missing shard file {path}; rebuild the split") from None
            except (ValueError, OSError) as e:
                raise PhylawError(
                    f"corrupt or truncated shard file {path} ({e}); rebuild the split"
                ) from None
            if len(arr) != entry["count"]:
                raise PhylawError(
                    f"shard file {path} holds {len(arr)} rows, the manifest says "
                    f"{entry['count']}; rebuild the split"
                )
            self._arrays[(shard, key)] = arr
        return arr

    def column(self, key: str) -> np.ndarray:
        """One array over the whole split, concatenated (fine for index/params/level)."""
        return np.concatenate([self._array(s, key) for s in range(len(self.offsets) - 1)])

    def get(self, rows) -> StateBatch:
        """States of the videos at positions ``rows`` (int array or slice) of the split."""
        rows = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row out of range for a split of {len(self)} videos")
        shard = np.searchsorted(self.offsets, rows, side="right") - 1
        local = rows - self.offsets[shard]
        out = {}
        for key in self.array_names:
            first = self._array(0, key)
            buf = np.empty((len(rows), *first.shape[1:]), dtype=first.dtype)
            for s in np.unique(shard):
                sel = shard == s
                buf[sel] = self._array(int(s), key)[local[sel]]
            out[key] = buf
        extra = {key: out.pop(key) for key in self.array_names if key not in ARRAYS}
        return StateBatch(**out, extra=extra)

    def bodies(self, batch: StateBatch) -> Bodies:
        """The bodies of a batch (sizes, shapes, colours, ring inner radii), per video: from the
        attribute columns of ``params`` the manifest's body table names, else its per-slot
        values."""
        spec = self.manifest["bodies"]
        if "size_columns" not in spec:
            raise PhylawError(
                f"{self.root} holds {self.scenario} scenes, whose bodies are not discs and "
                "squares; use phylaw.data.combinatorial to read them"
            )
        size = batch.params[:, spec["size_columns"]]
        b = len(batch.index)
        shape, colour = (_attribute(spec, kind, batch.params, size.shape) for kind in ATTRS)
        inner = None
        if (shape == Shape.RING).any():
            inner = np.where(shape == Shape.RING, spec["ring_inner_ratio"] * size, 0.0)
        return Bodies(size.reshape(b, -1), shape, colour, inner)

    def trajectory(self, rows) -> Trajectory | SceneTrajectory:
        """The trajectory record of ``rows``: positions (and exact velocities for phylaw-built
        splits) of discs and squares, or a ``SceneTrajectory`` for a combinatorial split."""
        batch = self.get(rows)
        if "size_columns" not in self.manifest["bodies"]:
            from phylaw.data.combinatorial import batch_trajectory, is_scene_store

            if is_scene_store(self):
                return batch_trajectory(self, batch)
        bodies = self.bodies(batch)
        vel = None
        if self.manifest.get("source") == "phylaw":
            from phylaw.physics.scenarios import get_scenario

            _, vel = get_scenario(self.scenario).exact(batch.params, batch.pos0, self.times)
        return Trajectory(self.times, batch.pos.astype(np.float64), vel, bodies)

    def verify(self) -> list[str]:
        """Recompute every checksum; returns the list of problems (empty when intact)."""
        problems = []
        for s, entry in enumerate(self.manifest["shards"]):
            for key in self.array_names:
                try:
                    if sha256(self._array(s, key)) != entry["sha256"][key]:
                        problems.append(f"shard {entry['name']}/{key}.npy: checksum mismatch")
                except PhylawError as e:
                    problems.append(str(e))
        return problems


def _attribute(table: dict, kind: str, params: np.ndarray, shape: tuple) -> np.ndarray:
    """Per-video codes int8 ``shape`` [B, N] of ``kind`` (shape or colour): from the params
    columns ``table[kind + "_columns"]`` when the split varies it, else the slot's value."""
    columns = table.get(f"{kind}_columns")
    if columns is not None:
        return np.rint(params[:, columns]).astype(np.int8).reshape(shape)
    return np.broadcast_to(np.asarray(table[kind], np.int8), shape).copy()


def open_store(root: str | Path) -> Store:
    """Open a split directory for reading (validates the manifest and shard headers lazily)."""
    return Store(root)

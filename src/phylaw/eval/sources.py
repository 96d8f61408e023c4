"""Where generated videos come from: any model's output, read by video id.

A *source* maps video ids (the ``index`` of a split's videos) to uint8 videos ``[T, H, W, 3]``
(row 0 = top of the image = world y 10, as phylaw renders). Sources:

* a folder of ``{id}.mp4`` / ``{id}.gif`` / ``{id}.npz`` files (any zero padding of the id);
* one ``.npz`` with ``videos`` [N, T, H, W, 3] and optionally ``index`` [N] (else split order),
  the form ``phylaw sample`` and ``phylaw baseline`` write;
* one ``.hdf5``: datasets ``videos`` (+ ``index``), or the authors' layout (``video_streams``);
* in Python, a callable ``predict(condition_frames [B, c, H, W, 3]) -> [B, T(-c), H, W, 3]``.

Reading never stops at a bad video: each problem becomes a ``Failure`` (id, source, reason) and
the rest is evaluated.

Records. A source says what its videos are, as the producer wrote it: ``frame_indices`` (the
split's frames they hold) and ``cond_frames`` (how many leading frames were given), from an
npz's arrays, a folder's ``videos.json`` or a ``run.json`` beside the file (``phylaw sample``,
``phylaw baseline``, ``phylaw data export``); None where no record says.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phylaw import PhylawError
from phylaw.data.io.npz import load_npz_array, npz_keys
from phylaw.data.io.video import decode_video

EXTENSIONS = (".mp4", ".gif", ".npz")
Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Failure:
    """A video that could not be evaluated, and why."""

    video_id: int | None
    source: str
    reason: str


class BatchFailure(PhylawError):
    """A batch a scorer cannot score: each of its videos becomes a failure."""


def check_video(video: np.ndarray, num_frames: int, name: str) -> np.ndarray:
    """Validate one video [T, H, W, 3] uint8; raise ``PhylawError`` saying what is wrong."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise PhylawError(f"{name}: expected a video [T, H, W, 3], got shape {video.shape}")
    if video.shape[0] != num_frames:
        raise PhylawError(f"{name}: has {video.shape[0]} frames, the split has {num_frames}")
    if min(video.shape[1:3]) < 8:
        raise PhylawError(f"{name}: frames of {video.shape[1]}x{video.shape[2]} px are too small")
    if video.dtype != np.uint8:
        if not np.issubdtype(video.dtype, np.floating) or not np.isfinite(video).all():
            raise PhylawError(
                f"{name}: expected uint8 pixels (or finite floats in [0, 1]), "
                f"got {video.dtype}{' with NaN/inf' if video.dtype.kind == 'f' else ''}"
            )
        if video.min() < 0 or video.max() > 1:
            raise PhylawError(f"{name}: float pixels must lie in [0, 1]")
        video = np.round(video * 255).astype(np.uint8)
    return video


def _record(path: Path) -> dict:
    """A JSON record (videos.json / run.json), {} when absent."""
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PhylawError(f"cannot read {path} ({e})") from None
    if not isinstance(record, dict):
        raise PhylawError(f"{path} is not a JSON object")
    return record


class VideoSource:
    """Base class: ``ids()`` available, ``read(ids, num_frames)`` -> (ids, videos, failures)."""

    name = "videos"
    frame_indices: tuple[int, ...] | None = None  # the split's frames the videos hold (None: all)
    cond_frames: int | None = None  # leading frames given to the producer (None: not recorded)
    parallel = True  # reads may run in several threads

    def _take_record(self, record: dict) -> None:
        if record.get("frame_indices") is not None:
            self.frame_indices = tuple(int(f) for f in record["frame_indices"])
        if record.get("cond_frames") is not None:
            self.cond_frames = int(record["cond_frames"])

    def ids(self) -> np.ndarray:
        raise NotImplementedError

    def load(self, video_id: int) -> np.ndarray:
        raise NotImplementedError

    def read(self, ids, num_frames: int) -> tuple[np.ndarray, list[np.ndarray], list[Failure]]:
        """Read ``ids``; returns the ids read, their videos, and a failure per other id."""
        available = set(self.ids().tolist())
        got_ids, videos, failures = [], [], []
        for vid in np.asarray(ids).tolist():
            if vid not in available:
                failures.append(Failure(vid, self.name, "no video with this id"))
                continue
            try:
                videos.append(check_video(self.load(vid), num_frames, f"video {vid}"))
                got_ids.append(vid)
            except PhylawError as e:
                failures.append(Failure(vid, self.name, str(e)))
        return np.asarray(got_ids, dtype=np.int64), videos, failures


class FolderSource(VideoSource):
    """A folder of ``{id}.mp4|gif|npz`` files."""

    def __init__(self, root: Path):
        self.root, self.name = root, str(root)
        self.files: dict[int, Path] = {}
        self.duplicates: list[Failure] = []
        for path in sorted(root.iterdir()):
            if path.suffix.lower() not in EXTENSIONS or not path.stem.isdigit():
                continue
            vid = int(path.stem)
            if vid in self.files:
                self.duplicates.append(Failure(vid, str(path), f"duplicate of {self.files[vid]}"))
            self.files[vid] = path
        if not self.files:
            raise PhylawError(
                f"{root} holds no video files named by id ({', '.join(EXTENSIONS)});"
                " name them like 0000042.mp4"
            )
        # written by phylaw sample / baseline / data export: which frames, how many given
        self._take_record({**_record(root / "run.json"), **_record(root / "videos.json")})

    def ids(self) -> np.ndarray:
        return np.array(sorted(self.files), dtype=np.int64)

    def load(self, video_id: int) -> np.ndarray:
        path = self.files[video_id]
        if path.suffix.lower() != ".npz":
            return decode_video(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                key = "video" if "video" in z else "videos"
                arr = z[key]
        except (OSError, ValueError, KeyError) as e:
            raise PhylawError(f"cannot read {path} ({e})") from None
        return arr[0] if arr.ndim == 5 and len(arr) == 1 else arr


class ArraySource(VideoSource):
    """Videos held in one array file (npz, memory-mapped when stored uncompressed, or HDF5),
    with ids from ``index`` or split order."""

    def __init__(self, path: Path, split_ids: np.ndarray):
        self.name = str(path)
        self.path = path
        self._decode = None
        self._record = _record(path.parent / "run.json")
        try:
            if path.suffix.lower() == ".npz":
                self.videos, index = self._npz(path)
            else:
                self.videos, index = self._hdf5(path)
        except (OSError, ValueError) as e:
            raise PhylawError(f"cannot read {path} ({e})") from None
        self._take_record(self._record)
        if index is None:
            if len(self.videos) != len(split_ids):
                raise PhylawError(
                    f"{path} holds {len(self.videos)} videos and no 'index' array, the split has "
                    f"{len(split_ids)}: add an 'index' array of video ids"
                )
            index = split_ids
        self.index = {int(v): k for k, v in enumerate(np.asarray(index).tolist())}

    def _npz(self, path: Path):
        keys = npz_keys(path)
        if "videos" not in keys:
            raise PhylawError(f"{path} has no 'videos' array (found: {', '.join(keys)})")
        for key in ("frame_indices", "cond_frames"):  # written by phylaw sample
            if key in keys:
                value = load_npz_array(path, key)
                self._record[key] = value.tolist()
        index = load_npz_array(path, "index") if "index" in keys else None
        return load_npz_array(path, "videos"), index

    def _hdf5(self, path: Path):
        import h5py

        f = h5py.File(path, "r")  # kept open: videos are read on demand
        if "videos" in f:
            self.parallel = False  # one h5py file handle
            return f["videos"], (f["index"][()] if "index" in f else None)
        f.close()
        from phylaw.data.io.phyworld import inspect_phyworld, read_phyworld_videos

        layout = inspect_phyworld(path)
        self._decode = lambda k: read_phyworld_videos(path, [k])[0]
        return np.arange(len(layout)), None

    def ids(self) -> np.ndarray:
        return np.array(sorted(self.index), dtype=np.int64)

    def load(self, video_id: int) -> np.ndarray:
        k = self.index[video_id]
        return self._decode(k) if self._decode else self.videos[k]

    def read(self, ids, num_frames: int):
        """Like ``VideoSource.read``; for a uint8 array of the right shape, the videos as one
        array (a view of the memory map when the ids are consecutive) instead of a list."""
        ids = np.asarray(ids)
        if self._decode is None and all(int(i) in self.index for i in ids.tolist()):
            k = np.array([self.index[int(i)] for i in ids.tolist()], dtype=np.int64)
            v = self.videos
            if (
                v.dtype == np.uint8
                and v.ndim == 5
                and v.shape[1] == num_frames
                and v.shape[-1] == 3
            ):
                if len(k) and (np.diff(k) == 1).all():  # a view of the memory map
                    batch = v[k[0] : k[-1] + 1]
                else:
                    batch = v[np.sort(k)][np.argsort(np.argsort(k))]
                return ids.astype(np.int64), batch, []
        return super().read(ids, num_frames)


def open_source(path: str | Path, split_ids: np.ndarray) -> VideoSource:
    """The source for ``--videos PATH``: a folder, an ``.npz`` or an ``.hdf5``/``.h5`` file."""
    path = Path(path)
    if path.is_dir() and (path / "videos.npz").is_file() and not any(path.glob("[0-9]*.*")):
        return ArraySource(path / "videos.npz", split_ids)  # the folder of 'phylaw sample'
    if path.is_dir():
        return FolderSource(path)
    if not path.exists():
        raise PhylawError(
            f"no videos at {path}: give a folder of {{id}}.mp4 files, an .npz or an .hdf5 file"
        )
    if path.suffix.lower() in (".npz", ".hdf5", ".h5"):
        return ArraySource(path, split_ids)
    raise PhylawError(f"{path}: unsupported file type {path.suffix!r}; use a folder, .npz or .hdf5")


def predict_videos(predict: Predict, condition: np.ndarray, num_frames: int) -> np.ndarray:
    """Call a model's ``predict`` on condition frames [B, c, H, W, 3] and return [B, T, H, W, 3].

    ``predict`` may return the whole video or only its continuation (T - c frames), in which case
    the condition frames are put in front.
    """
    out = np.asarray(predict(condition))
    if out.ndim != 5 or out.shape[0] != len(condition) or out.shape[2:] != condition.shape[2:]:
        raise PhylawError(
            f"predict returned shape {out.shape} for condition frames of shape "
            f"{condition.shape}; expected [B, T, H, W, 3]"
        )
    if out.shape[1] == num_frames - condition.shape[1]:
        out = np.concatenate([condition, out.astype(condition.dtype)], axis=1)
    return out

"""Export a store's videos as files: a folder of mp4 or gif, one npz, or the authors' HDF5 layout.

States are the data and pixels a view (design.md), so this is the one place where a split is
rendered in full. Videos are rendered in batches and written as they come, so memory stays
bounded whatever the split size. Every output is assembled under a temporary name and renamed
into place when complete: an interrupted export leaves nothing under the final name.

Formats (``FORMATS``):

* ``mp4`` / ``gif``: a folder with one file per video, named by its id (``0000042.mp4``: the
  store's ``index``), and ``videos.json`` listing ids, files, parameters and levels.
* ``npz``: one uncompressed file with ``videos`` uint8 [N, T, H, W, 3] (streamed to disk batch
  by batch), ``index``, ``params``, ``pos0``, ``pos``, ``level``, ``times``, ``param_names``
  and ``levels``; splits whose bodies vary per video add ``colour`` and ``shape`` int8 [N, bodies]
  (``Colour`` and ``Shape`` codes) and ``inner`` float64 [N, bodies] (ring inner radii, 0 else).
* ``phyworld-hdf5``: the authors' merged layout (``phylaw.data.io.phyworld``), chunks of 1000; the
  ``init_streams`` are the stored parameters, ``[r, v, colour, shape]`` for such splits, as the
  authors' Sec. 5.3 variants store them.

In mp4 and gif folders, ``videos.json`` gives each video's body colours and shapes by name when
the split varies them.

Frames have row 0 at the top of the image (world y = 10), as the authors' files.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from phylaw import PhylawError, __version__
from phylaw.data.io.phyworld import CHUNK_SIZE, PhyworldWriter
from phylaw.data.io.video import FPS, encode_gif, encode_mp4
from phylaw.data.store import StateBatch, Store, open_store, write_json
from phylaw.data.views import render_batch
from phylaw.physics.state import Colour, Shape
from phylaw.render.geometry import PixelGrid

RENDER_BATCH = 64  # videos per render call (fewer at high resolution, see render_batches)
RENDER_BYTES = 128 << 20  # cap on one batch of frames
EVEN_FORMATS = ("mp4", "phyworld-hdf5")  # yuv420p needs even frame sizes


def render_batches(
    store: Store, count: int, resolution: int, batch: int = RENDER_BATCH
) -> Iterator[tuple[StateBatch, np.ndarray]]:
    """Yield ``(states, frames uint8 [B, T, H, W, 3])`` for the first ``count`` videos in order.

    The batch shrinks so one batch of frames stays under ``RENDER_BYTES``. One buffer is reused:
    a batch's frames are overwritten by the next one (copy them to keep them).
    """
    grid = PixelGrid(resolution, resolution)
    per_video = len(store.times) * resolution * resolution * 3
    batch = max(1, min(batch, RENDER_BYTES // per_video))
    buf = None
    for start in range(0, count, batch):
        states = store.get(slice(start, min(start + batch, count)))
        b = len(states.index)
        if buf is None or len(buf) < b:
            buf = np.empty((b, len(store.times), resolution, resolution, 3), np.uint8)
        frames = render_batch(store, states, grid, out=buf[:b])
        yield states, frames


def video_name(index: int, ext: str) -> str:
    """File name of video ``index``: ``f"{index:07d}.{ext}"``."""
    return f"{int(index):07d}.{ext}"


def _tmp_name(out: Path) -> Path:
    return out.with_name(f".{out.name}.tmp-{os.getpid()}")


def _place(tmp: Path, out: Path) -> None:
    """Move a finished ``tmp`` file or folder to ``out`` (replacing an old export)."""
    if out.is_dir() and tmp.is_dir():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)


def varies_bodies(store: Store) -> bool:
    """True when the split's bodies (colour or shape) vary per video (attribute columns)."""
    table = store.manifest.get("bodies", {})
    return "colour_columns" in table or "shape_columns" in table


def _body_names(store: Store, states: StateBatch) -> list[dict]:
    """Per video: its bodies' colour and shape names, in slot order."""
    bodies = store.bodies(states)
    return [
        {
            "colour": [Colour(int(c)).name.lower() for c in bodies.colour[b]],
            "shape": [Shape(int(s)).name.lower() for s in bodies.shape[b]],
        }
        for b in range(len(states.index))
    ]


def _export_files(store: Store, tmp: Path, count: int, resolution: int, bar, fmt: str) -> None:
    tmp.mkdir()
    encode = encode_mp4 if fmt == "mp4" else encode_gif
    records = []
    for states, frames in render_batches(store, count, resolution):
        names = _body_names(store, states) if varies_bodies(store) else None
        for b, index in enumerate(states.index.tolist()):
            name = video_name(index, fmt)
            (tmp / name).write_bytes(encode(frames[b], FPS))  # the folder is renamed at the end
            records.append(
                {
                    "id": index,
                    "file": name,
                    "params": states.params[b].tolist(),
                    "level": store.levels[int(states.level[b])],
                    **(names[b] if names else {}),
                }
            )
        bar.update(len(states.index))
    write_json(
        tmp / "videos.json",
        {
            "format": f"phylaw-videos-{fmt}",
            "phylaw_version": __version__,
            "store": str(store.root.resolve()),
            "scenario": store.scenario,
            "split": store.split,
            "resolution_px": resolution,
            "fps": FPS,
            "frame_times_s": store.times.tolist(),
            "param_names": store.manifest["param_names"],
            "orientation": "row 0 is the top of the image (world y = 10)",
            "videos": records,
        },
    )


def _npz_member(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)


def _export_npz(store: Store, tmp: Path, count: int, resolution: int, bar) -> None:
    shape = (count, len(store.times), resolution, resolution, 3)
    needed = int(np.prod(shape, dtype=np.int64))
    free = shutil.disk_usage(tmp.parent).free
    if needed > free:
        raise PhylawError(
            f"the npz would need {needed / 2**30:.1f} GiB but {tmp.parent} has "
            f"{free / 2**30:.1f} GiB free; export fewer videos with --limit"
        )
    states = store.get(slice(0, count))
    members = [
        ("index", states.index),
        ("params", states.params),
        ("pos0", states.pos0),
        ("pos", states.pos),
        ("level", states.level),
        ("times", store.times),
        ("param_names", np.array(store.manifest["param_names"])),
        ("levels", np.array(store.levels)),
    ]
    if varies_bodies(store):
        bodies = store.bodies(states)
        members += [("colour", bodies.colour), ("shape", bodies.shape)]
        members.append(("inner", bodies.inner_radius()))
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in members:
            _npz_member(zf, name, array)
        with zf.open("videos.npy", "w", force_zip64=True) as f:
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                "fortran_order": False,
                "shape": shape,
            }
            np.lib.format.write_array_header_1_0(f, header)
            for batch, frames in render_batches(store, count, resolution):
                f.write(np.ascontiguousarray(frames).data)
                bar.update(len(batch.index))


def _export_phyworld(store: Store, tmp: Path, count: int, resolution: int, bar) -> None:
    nb = len(store.manifest["bodies"]["shape"])
    attrs = {
        "creator": f"phylaw {__version__}",
        "scenario": store.scenario,
        "split": store.split,
        "resolution_px": resolution,
        "fps": FPS,
        "param_names": list(store.manifest["param_names"]),
    }
    if varies_bodies(store):
        attrs["ring_inner_ratio"] = store.manifest["bodies"]["ring_inner_ratio"]
    with PhyworldWriter(
        tmp, count, len(store.times), nb, len(store.manifest["param_names"]), CHUNK_SIZE, attrs
    ) as writer:
        for states, frames in render_batches(store, count, resolution):
            videos = [encode_mp4(v, FPS) for v in frames]
            writer.add(states.params.astype(np.float64), states.pos.astype(np.float64), videos)
            bar.update(len(states.index))


# format name -> writer(store, tmp path, count, resolution, progress bar)
FORMATS: dict[str, Callable[..., None]] = {
    "mp4": partial(_export_files, fmt="mp4"),
    "gif": partial(_export_files, fmt="gif"),
    "npz": _export_npz,
    "phyworld-hdf5": _export_phyworld,
}


def export_store(
    store: Store | str | Path,
    fmt: str,
    out: str | Path,
    resolution: int = 128,
    limit: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Render the first ``limit`` videos (all when None) of ``store`` to ``out`` in ``fmt``.

    ``fmt``: one of ``FORMATS``; ``resolution``: frame side in pixels (even for mp4 and
    phyworld-hdf5); ``overwrite``: replace an existing ``out``. Returns ``out``.
    """
    if fmt not in FORMATS:
        raise PhylawError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | np.integer)
        or resolution < 1
    ):
        raise PhylawError(
            f"invalid resolution {resolution!r}: give a positive pixel count such as 128 or 256"
        )
    if fmt in EVEN_FORMATS and resolution % 2:
        raise PhylawError(
            f"invalid resolution {resolution} for {fmt}: H.264 (yuv420p) needs "
            "an even size such as 128 or 256"
        )
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1
    ):
        raise PhylawError(f"invalid limit {limit!r}: give a positive number of videos")
    store = store if isinstance(store, Store) else open_store(store)
    if fmt == "phyworld-hdf5" and "size_columns" not in store.manifest.get("bodies", {}):
        raise PhylawError(
            f"{store.scenario} splits cannot be written in the authors' ID/OOD HDF5 layout; "
            "choose --format mp4, gif or npz"
        )
    count = len(store) if limit is None else min(int(limit), len(store))
    if count == 0:
        raise PhylawError(f"{store.root} holds no video to export")
    out = Path(out)
    if out.exists() and not overwrite:
        raise PhylawError(f"{out} already exists; choose another --out or delete it")
    if not out.parent.is_dir():
        raise PhylawError(f"cannot write {out}: folder {out.parent} does not exist")
    tmp = _tmp_name(out)
    bar = tqdm(total=count, unit="video", desc=f"export {fmt}", disable=not progress)
    try:
        with bar:
            FORMATS[fmt](store, tmp, count, resolution, bar)
        _place(tmp, out)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    return out

"""Build a split: candidates -> exact trajectories -> shards of states, in parallel, resumable.

The candidate range is cut into fixed shards (``SHARD_SIZE`` candidates each, independent of
the worker count); each shard is generated from its index range alone and written atomically.
Re-running a build keeps every finished shard whose checksums still match and generates only
the missing ones, so a killed build resumes without redoing work or leaving a corrupt file.

A build too big for one machine is spread over jobs by shard index range: `prepare_split`
once, `build_shards` for each range (at once, on any machines sharing the file system), then
`finalize_split` writes the manifest, byte for byte the one `build_split` writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from phylaw import PhylawError, __version__
from phylaw.data import combinatorial, regionsplit
from phylaw.data.regionsplit import RegionSplitSpec, region_params
from phylaw.data.rng import uniforms
from phylaw.data.spaces import (
    SplitSpec,
    bodies_table,
    candidate_params,
    level_shares,
    oversample_selection,
    train_selection,
)
from phylaw.data.store import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    Store,
    read_json,
    sha256,
    write_json,
    write_shard,
)
from phylaw.physics.scenarios import get_scenario
from phylaw.physics.state import FRAME_DT_S, NUM_FRAMES, WORLD_SIZE, frame_times

SHARD_SIZE = 100_000  # candidates per shard
BLOCK = 8192  # candidates simulated at once (small temporaries are much faster here)
BUILD_SPEC = "build-spec.json"


AnySpec = SplitSpec | RegionSplitSpec | combinatorial.SceneSplitSpec


def spec_record(spec: AnySpec) -> dict:
    """The JSON-able identity of a split (what a resumed build must match), as JSON reads it."""
    return json.loads(json.dumps(dict(dataclasses.asdict(spec), format_version=FORMAT_VERSION)))


def candidates(
    spec: SplitSpec | RegionSplitSpec, start: int, stop: int, selection: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parameters [n, P] and level codes [n] of candidates ``start..stop-1`` of either kind of
    split of the fundamental scenarios."""
    if isinstance(spec, RegionSplitSpec):
        return region_params(spec, start, stop)
    return candidate_params(spec, start, stop, selection)


def simulate_range(
    spec: SplitSpec | RegionSplitSpec, start: int, stop: int, selection: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """States of the valid candidates in ``start..stop-1`` (arrays of ``store.ARRAYS``)."""
    scen = get_scenario(spec.scenario)
    times = frame_times()
    n, nb, p = stop - start, scen.NUM_BODIES, len(spec.param_names)
    out = {
        "index": np.empty(n, np.int64),
        "params": np.empty((n, p), np.float64),
        "pos0": np.empty((n, nb, 2), np.float64),
        "pos": np.empty((n, NUM_FRAMES, nb, 2), np.float32),
        "level": np.empty(n, np.int8),
    }
    k = 0
    for b0 in range(start, stop, BLOCK):
        b1 = min(b0 + BLOCK, stop)
        index = np.arange(b0, b1, dtype=np.int64)
        params, level = candidates(spec, b0, b1, selection)
        draws = index if selection is None or spec.split == "train" else selection[index]
        u = uniforms(spec.key("placement"), draws, scen.NUM_UNIFORMS)
        pos0, pos, _, valid = scen.simulate(params, u, times)
        m = int(valid.sum())
        for key, value in zip(out, (index, params, pos0, pos, level), strict=True):
            out[key][k : k + m] = value[valid]
        k += m
    return {key: value[:k] for key, value in out.items()}


def _shard_size(spec, shard_size: int | None) -> int:
    if shard_size is None:
        scenes = isinstance(spec, combinatorial.SceneSplitSpec)
        shard_size = combinatorial.SHARD_SIZE if scenes else SHARD_SIZE
    if shard_size < 1:
        raise PhylawError(f"invalid shard size {shard_size}: give 1 or more")
    return shard_size


def shard_ranges(spec: AnySpec, shard_size: int | None = None) -> list[tuple[str, int, int]]:
    """(name, first candidate, stop) of every shard of ``spec``: the unit of resuming, and of
    spreading one build over many jobs (`build_shards`, then `finalize_split`).

    ``shard_size``: candidates per shard (default ``SHARD_SIZE``, ``combinatorial.SHARD_SIZE``
    for the slower multi-object scenes).
    """
    shard_size = _shard_size(spec, shard_size)
    return [
        (f"{i:05d}", s, min(s + shard_size, spec.count))
        for i, s in enumerate(range(0, spec.count, shard_size))
    ]


def _build_shard(job) -> dict:
    spec, root, name, start, stop, selection = job
    if isinstance(spec, combinatorial.SceneSplitSpec):
        arrays = combinatorial.simulate_scene_range(spec, start, stop)
    else:
        arrays = simulate_range(spec, start, stop, selection)
    level_counts = np.bincount(arrays["level"], minlength=len(spec.level_names)).tolist()
    meta = {"start": start, "stop": stop, "spec": spec_record(spec), "level_counts": level_counts}
    return write_shard(Path(root), name, arrays, meta)


def _finished_shard(root: Path, name: str, start: int, stop: int, record: dict) -> dict | None:
    """The entry of an intact finished shard matching this build, else None."""
    path = root / "shards" / name / "shard.json"
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
        if (entry.get("spec"), entry.get("start"), entry.get("stop")) != (record, start, stop):
            return None
        for key, digest in entry["sha256"].items():
            if sha256(np.load(path.parent / f"{key}.npy", allow_pickle=False)) != digest:
                return None
        return entry
    except (OSError, ValueError, KeyError):
        return None


def _prepare_dir(root: Path, record: dict) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise PhylawError(f"cannot write to {root}: {e.strerror}; choose another --out") from None
    spec_path = root / BUILD_SPEC
    if spec_path.exists():
        previous = read_json(spec_path, "build spec")
        if previous != record:
            raise PhylawError(
                f"{root} already holds a different split ({previous.get('scenario')} "
                f"{previous.get('split')} size {previous.get('size')} seed "
                f"{previous.get('seed')}); choose another --out or delete it"
            )
    elif any(p.name not in ("shards",) for p in root.iterdir()):
        raise PhylawError(f"{root} is not empty and holds no phylaw split; choose another --out")
    write_json(spec_path, record)


def prepare_split(spec: AnySpec, out: str | Path) -> Path:
    """Create the directory of ``spec`` (or check that it holds the same split); returns it.

    One call before many `build_shards` jobs share a build: they then only read it.
    """
    root = Path(out)
    _prepare_dir(root, spec_record(spec))
    return root


def _holds(root: Path, record: dict) -> bool:
    path = root / BUILD_SPEC
    return path.exists() and read_json(path, "build spec") == record


def _clean_stale(root: Path, names: list[str] | None = None) -> None:
    """Remove temporaries of interrupted shard writes (of ``names`` only, if given)."""
    if not (root / "shards").exists():
        return
    patterns = [".*.tmp-*"] if names is None else [f".{n}.tmp-*" for n in names]
    for pattern in patterns:
        for stale in (root / "shards").glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)


def _build_missing(spec, root: Path, ranges: list, workers: int, progress: bool) -> dict:
    """Shard name -> entry for ``ranges``: intact finished shards kept, the others built."""
    record = spec_record(spec)
    entries: dict[str, dict] = {}
    for name, start, stop in ranges:
        entry = _finished_shard(root, name, start, stop, record)
        if entry is not None:
            entries[name] = entry
    todo = [(n, s, e) for n, s, e in ranges if n not in entries]
    grid_split = isinstance(spec, SplitSpec)  # the others draw every candidate from its index
    selection = None
    if grid_split and todo and spec.split == "train":
        selection = train_selection(spec)
    elif grid_split and todo and spec.oversample:
        selection = oversample_selection(spec)[0]
    jobs = [(spec, str(root), n, s, e, selection) for n, s, e in todo]
    total = sum(e - s for _, s, e in ranges)
    bar = tqdm(
        total=total,
        initial=total - sum(e - s for _, s, e in todo),
        unit="video",
        desc=f"{spec.scenario} {spec.split}",
        disable=not progress,
    )
    with bar:
        if workers == 1 or len(jobs) <= 1:
            results = map(_build_shard, jobs)
        else:
            pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)))
            results = pool.map(_build_shard, jobs)
        for entry in results:
            entries[entry["name"]] = entry
            bar.update(entry["stop"] - entry["start"])
        if workers > 1 and len(jobs) > 1:
            pool.shutdown()
    return entries


def build_split(
    spec: AnySpec,
    out: str | Path,
    workers: int = 1,
    shard_size: int | None = None,
    progress: bool = True,
) -> Store:
    """Generate ``spec`` into ``out`` (resuming a previous partial build) and open it.

    ``shard_size``: candidates per shard (default ``SHARD_SIZE``, ``combinatorial.SHARD_SIZE``
    for the slower multi-object scenes).
    """
    if workers < 1:
        raise PhylawError(f"invalid --workers {workers}: give 1 or more")
    ranges = shard_ranges(spec, shard_size)
    root = Path(out)
    record = spec_record(spec)
    _prepare_dir(root, record)
    if (root / MANIFEST).exists():
        try:
            store = Store(root)
            if store.manifest.get("spec") == record:
                return store
        except PhylawError:
            pass  # an unreadable manifest is rebuilt from the shards below
    _clean_stale(root)
    entries = _build_missing(spec, root, ranges, workers, progress)
    shards = [entries[name] for name, _, _ in ranges]
    write_json(root / MANIFEST, manifest(spec, shards, _shard_size(spec, shard_size)))
    return Store(root)


def build_shards(
    spec: AnySpec,
    out: str | Path,
    first: int,
    stop: int,
    workers: int = 1,
    shard_size: int | None = None,
    progress: bool = True,
) -> int:
    """Build shards ``first..stop-1`` of `shard_ranges` into ``out``, keeping intact finished
    ones, and write no manifest: one job's share of a build spread over many jobs.

    Jobs on disjoint ranges may run at once once `prepare_split` has run; `finalize_split`
    then writes the manifest. Returns the number of videos in these shards.
    """
    if workers < 1:
        raise PhylawError(f"invalid workers {workers}: give 1 or more")
    ranges = shard_ranges(spec, shard_size)[first:stop]
    root = Path(out)
    if not _holds(root, spec_record(spec)):
        _prepare_dir(root, spec_record(spec))
    _clean_stale(root, [name for name, _, _ in ranges])
    entries = _build_missing(spec, root, ranges, workers, progress)
    return sum(e["count"] for e in entries.values())


def finalize_split(spec: AnySpec, out: str | Path, shard_size: int | None = None) -> Store:
    """Write the manifest of a split whose shards `build_shards` built, and open it.

    The manifest has the bytes `build_split` writes. Every shard is checked against its
    checksums; a missing or broken one fails with their names (build them again).
    """
    root = Path(out)
    record = spec_record(spec)
    if not _holds(root, record):
        raise PhylawError(f"{root} holds no build of this split; run build_shards first")
    ranges = shard_ranges(spec, shard_size)
    entries = [_finished_shard(root, name, start, stop, record) for name, start, stop in ranges]
    missing = [name for (name, _, _), e in zip(ranges, entries, strict=True) if e is None]
    if missing:
        raise PhylawError(
            f"{root}: {len(missing)} of {len(ranges)} shards are missing or broken "
            f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); build them again"
        )
    _clean_stale(root)
    write_json(root / MANIFEST, manifest(spec, entries, _shard_size(spec, shard_size)))
    return Store(root)


def manifest(spec, shards: list[dict], shard_size: int) -> dict:
    """The manifest of a finished split (no timestamps: same split, same bytes)."""
    level_counts = np.sum([s["level_counts"] for s in shards], axis=0).tolist()
    for s in shards:
        s.pop("spec", None)
    if isinstance(spec, combinatorial.SceneSplitSpec):
        common = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "source": "phylaw",
            "phylaw_version": __version__,
            "spec": spec_record(spec),
            "scenario": spec.scenario,
            "split": spec.split,
            "size": spec.size,
            "seed": spec.seed,
            "candidates": spec.count,
            "count": int(sum(s["count"] for s in shards)),
            "levels": list(spec.level_names),
            "level_counts": dict(zip(spec.level_names, level_counts, strict=True)),
            "shard_size": shard_size,
            "shards": shards,
        }
        return dict(common, **combinatorial.manifest_fields(spec))
    region = isinstance(spec, RegionSplitSpec)
    if region:
        drawn = regionsplit.level_candidates(spec)
    else:
        drawn = oversample_selection(spec)[1] if spec.oversample else level_shares(spec)
    out = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": "phylaw",
        "phylaw_version": __version__,
        "spec": spec_record(spec),
        "scenario": spec.scenario,
        "split": spec.split,
        "size": spec.size,
        "seed": spec.seed,
        "ranges": None if region else spec.ranges,
        "candidates": spec.count,
        "count": int(sum(s["count"] for s in shards)),
        "param_names": list(spec.param_names),
        "levels": list(spec.level_names),
        "level_counts": dict(zip(spec.level_names, level_counts, strict=True)),
        "level_candidates": dict(zip(spec.level_names, drawn.tolist(), strict=True)),
        "num_frames": NUM_FRAMES,
        "frame_dt_s": FRAME_DT_S,
        "frame_times_s": frame_times().tolist(),
        "world_size": WORLD_SIZE,
        "bodies": regionsplit.bodies_table(spec) if region else bodies_table(spec.scenario),
        "shard_size": shard_size,
        "shards": shards,
    }
    return dict(out, **regionsplit.manifest_fields(spec)) if region else out

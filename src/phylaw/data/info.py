"""Human-facing summaries of a split: ``phylaw data info`` and ``phylaw data preview``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from phylaw import PhylawError
from phylaw.data.store import Store, open_store


def describe(root: str | Path, verify: bool = False) -> str:
    """A multi-line summary of the split at ``root`` (optionally verifying checksums)."""
    store = open_store(root)
    m = store.manifest
    params = store.column("params") if len(store) else np.zeros((0, len(m["param_names"])))
    size_bytes = sum(p.stat().st_size for p in Path(root).rglob("*.npy"))
    lines = [
        f"split      {m['scenario']} / {m['split']}  (size {m['size']}, seed {m.get('seed')}, "
        + (f"ranges {m['ranges']}, " if m.get("ranges") else "")
        + f"source {m.get('source')})",
        f"videos     {m['count']} of {m.get('candidates', m['count'])} candidates, "
        f"{len(m['shards'])} shards, {size_bytes / 2**20:.1f} MiB",
        f"frames     {m['num_frames']} at {m['frame_dt_s']:.4g} s "
        f"(t0 = {m['frame_times_s'][0]:.4g} s), world {m['world_size']} x {m['world_size']}",
        "levels     " + ", ".join(f"{k}: {v}" for k, v in m["level_counts"].items()),
    ]
    lines += _level_lines(store)
    lines += _region_lines(m)
    attributes = _attribute_columns(m)
    for p, name in enumerate(m["param_names"]):
        col = params[:, p]
        if len(col) and name in attributes:
            codes, counts = np.unique(np.rint(col).astype(int), return_counts=True)
            named = (
                f"{attributes[name](c).name.lower()}: {n}"
                for c, n in zip(codes, counts, strict=True)
            )
            lines.append(f"  {name:<8} " + ", ".join(named))
        elif len(col):
            fmt = "d" if np.array_equal(col, np.round(col)) else ".4g"  # ids: print as integers
            lo, hi = (int(v) if fmt == "d" else v for v in (col.min(), col.max()))
            lines.append(
                f"  {name:<8} [{lo:{fmt}}, {hi:{fmt}}]  {len(np.unique(col))} distinct values"
            )
    if verify:
        problems = store.verify()
        lines.append(
            "integrity  ok: every checksum matches"
            if not problems
            else "integrity  FAILED:\n  " + "\n  ".join(problems)
        )
        if problems:
            raise PhylawError(
                f"{root} is corrupt: {problems[0]} (and {len(problems) - 1} more);"
                " rebuild the split"
            )
    return "\n".join(lines)


def _attribute_columns(m: dict) -> dict:
    """Attribute column name -> its code enum (Colour or Shape), for splits that vary bodies."""
    from phylaw.data.regions import ATTRIBUTES

    table = m.get("bodies", {})
    return {
        m["param_names"][c]: enum
        for kind, enum in ATTRIBUTES.items()
        for c in table.get(f"{kind}_columns", [])
    }


def _region_lines(m: dict) -> list[str]:
    """The study, training support, evaluation space, blocks and labels of a region split."""
    regions = m.get("regions")
    if not regions:
        return []
    lines = []
    if m.get("study"):
        from phylaw.data.studies import STUDIES

        study = STUDIES.get(m["study"])
        lines.append(f"study      {m['study']}" + (f"  ({study.paper})" if study else ""))
    lines.append(f"support    {regions['support']}")
    if m["split"] != "train":
        lines.append(f"space      {regions['space']}")
        lines += [f"  block    {b}" for b in regions["blocks"]]
        lines.append(f"labels     {regions['labels']}: " + ", ".join(m["levels"]))
    return lines


def _drawn(m: dict) -> tuple[np.ndarray, np.ndarray]:
    """Parameters and level codes of every candidate drawn for a phylaw-built split."""
    from phylaw.data.build import candidates
    from phylaw.data.regionsplit import is_region_record, spec_from_record
    from phylaw.data.spaces import LEVEL_SHIFT, SplitSpec, candidate_params

    record = {k: v for k, v in m["spec"].items() if k != "format_version"}
    if is_region_record(record):
        spec = spec_from_record(record)
        return candidates(spec, 0, spec.count)
    spec = SplitSpec(**record)
    drawn = m["level_candidates"]
    if spec.oversample:
        levels = m["levels"]
        draws = [(k << LEVEL_SHIFT) + np.arange(drawn[name]) for k, name in enumerate(levels)]
        draws = np.concatenate(draws)
        return candidate_params(spec, 0, len(draws), draws)
    return candidate_params(spec, 0, spec.count)


def _level_lines(store: Store) -> list[str]:
    """Per level: videos kept of the candidates drawn and, where placement dropped candidates,
    the parameters whose mean moved by more than 5 % (mean kept / mean drawn): which cases the
    placement rule favours."""
    m = store.manifest
    drawn = m.get("level_candidates")
    if not drawn or m.get("source") != "phylaw" or "spec" not in m:
        return []
    levels = m["levels"]  # in code order (the JSON dicts are sorted by name)
    params, code = _drawn(m)
    kept_params, kept_code = store.column("params"), store.column("level")
    lines = []
    for k, name in enumerate(levels):
        n, kept = drawn[name], m["level_counts"][name]
        width = max(8, *(len(x) for x in levels))
        line = f"  {name:<{width}} {kept} kept of {n} drawn ({100 * kept / max(n, 1):.0f} %)"
        if 0 < kept < n:
            shift = kept_params[kept_code == k].mean(0) / params[code == k].mean(0)
            moved = [
                f"{p} x{r:.2f}"
                for p, r in zip(m["param_names"], shift, strict=True)
                if abs(r - 1) > 0.05
            ]
            if moved:
                line += "; mean kept / drawn: " + ", ".join(moved)
        lines.append(line)
    return lines


def tile(videos: np.ndarray, columns: int, gap_px: int = 2) -> np.ndarray:
    """Tile videos [B, T, H, W, 3] into one video [T, rows*(H+gap), cols*(W+gap), 3] (gray gaps)."""
    b, t, h, w, c = videos.shape
    rows = -(-b // columns)
    out = np.full(
        (t, rows * (h + gap_px) - gap_px, columns * (w + gap_px) - gap_px, c), 128, dtype=np.uint8
    )
    for k in range(b):
        r, q = divmod(k, columns)
        out[:, r * (h + gap_px) : r * (h + gap_px) + h, q * (w + gap_px) : q * (w + gap_px) + w] = (
            videos[k]
        )
    return out


def side_by_side(truth: np.ndarray, generated: np.ndarray, min_px: int = 64) -> np.ndarray:
    """[N, T, H, W, 3] ground truth and generated -> one [T, N*(H+2)-2, 2W+2, 3] panel video
    (ground truth left, generated right, grey separators), nearest-upscaled to >= `min_px`."""
    k = max(1, math.ceil(min_px / truth.shape[2]))
    rows = []
    for a, b in zip(truth, generated, strict=True):
        a, b = (np.repeat(np.repeat(v, k, axis=1), k, axis=2) for v in (a, b))
        sep = np.full((a.shape[0], a.shape[1], 2, 3), 128, np.uint8)
        rows.append(np.concatenate([a, sep, b], axis=2))
        rows.append(np.full((a.shape[0], 2, rows[-1].shape[2], 3), 128, np.uint8))
    return np.concatenate(rows[:-1], axis=1)


def render_rows(store: Store, rows: np.ndarray, resolution: int) -> np.ndarray:
    """Render the videos at positions ``rows`` of a split, uint8 [B, T, R, R, 3]."""
    from phylaw.data.views import render_batch
    from phylaw.render.geometry import PixelGrid

    return render_batch(store, store.get(rows), PixelGrid(resolution, resolution))


def preview(
    root: str | Path,
    out: str | Path,
    count: int = 8,
    resolution: int = 128,
    fps: int = 10,
    seed: int = 0,
) -> Path:
    """Write a gif of ``count`` videos of the split, picked evenly across its levels."""
    from phylaw.data.io.video import write_gif

    if count < 1 or resolution < 8:
        raise PhylawError("--count must be >= 1 and --resolution >= 8")
    store = open_store(root)
    if len(store) == 0:
        raise PhylawError(f"{root} holds no videos")
    level = store.column("level")
    rng = np.random.default_rng(seed)
    picks = []
    for lv in np.unique(level):  # round-robin over levels so every level is shown
        rows = np.flatnonzero(level == lv)
        picks.append(rng.permutation(rows)[: -(-count // len(np.unique(level)))])
    rows = np.sort(np.concatenate(picks)[:count]) if len(picks) > 1 else np.sort(picks[0])
    videos = render_rows(store, rows, resolution)
    columns = min(len(rows), 4)
    out = Path(out)
    write_gif(out, tile(videos, columns), fps=fps)
    return out

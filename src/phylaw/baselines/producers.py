"""Baseline video producers, scored exactly like a model (paper Sec. 3.1 "Baseline", Sec. 5.2).

Every baseline sees the first ``c`` frames of a ground-truth video and returns the whole video
(condition frames first), uint8 [B, T, H, W, 3]:

* ``oracle``: the ground truth itself (its score is the parse floor);
* ``copy-last``: the last condition frame repeated (nothing moves; its velocity error is |v|);
* ``constant-velocity``: each object parsed from the condition frames and moved on at the
  least-squares velocity of those frames, drawn with its parsed radius and colour (right for
  uniform motion, wrong after a collision and under gravity);
* ``nearest-case``: the training video whose condition frames are closest in pixels (L2 over
  the c frames, at ``feature_px`` resolution), its continuation pasted after the given condition
  frames. This makes the paper's case-based hypothesis an explicit, scoreable model. With
  ``mirror`` the search also holds every training video mirrored left-right, the cases a model
  trained with ``data.hflip`` sees (Sec. 5.2 Set-2), and a mirrored winner's continuation is
  pasted mirrored (the pixel grid is symmetric: column j mirrors to W - 1 - j exactly).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from phylaw import PhylawError
from phylaw.data.io.video import encode_mp4
from phylaw.data.store import Store, atomic_write_bytes, write_json
from phylaw.eval.parse import parse_videos
from phylaw.physics.state import Bodies
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render


@dataclass
class BaselineContext:
    """What a baseline may use: the evaluation split, the resolution, c, and a training split."""

    store: Store
    resolution: int = 128
    num_cond_frames: int = 3
    train: Store | None = None
    feature_px: int = 32  # nearest-case: resolution of the condition-frame features
    train_chunk: int = 4096  # nearest-case: training videos compared at once
    frames: tuple[int, ...] | None = None  # the split's frames to produce (None: all)
    mirror: bool = False  # nearest-case: also match the training videos mirrored left-right
    matches: dict = field(default_factory=dict, repr=False)  # nearest-case: row -> (training
    # row, distance, mirrored) found so far (one search serves every batch)

    @property
    def clip(self) -> np.ndarray:
        """Indices of the split's frames a produced video holds."""
        if self.frames is None:
            return np.arange(self.store.manifest["num_frames"])
        return np.asarray(self.frames, dtype=np.int64)

    @property
    def grid(self) -> PixelGrid:
        return PixelGrid(self.resolution, self.resolution)


def render_rows(store: Store, rows: np.ndarray, grid: PixelGrid, frames=slice(None)):
    """Ground-truth videos of ``rows`` (the frames ``frames``: slice or indices), uint8
    [B, T', H, W, 3]."""
    batch = store.get(rows)
    return render(batch.pos[:, frames], store.bodies(batch), grid)


def oracle(ctx: BaselineContext, rows: np.ndarray) -> np.ndarray:
    """The ground-truth videos."""
    return render_rows(ctx.store, rows, ctx.grid, ctx.clip)


def copy_last(ctx: BaselineContext, rows: np.ndarray) -> np.ndarray:
    """The condition frames, then the last one repeated."""
    video = oracle(ctx, rows)
    c = ctx.num_cond_frames
    video[:, c:] = video[:, c - 1 : c]
    return video


def constant_velocity(ctx: BaselineContext, rows: np.ndarray) -> np.ndarray:
    """Objects parsed from the condition frames, extrapolated at their least-squares velocity."""
    c = ctx.num_cond_frames
    video = oracle(ctx, rows)
    given = ctx.store.bodies(ctx.store.get(rows))  # colours, shapes (and rings) per video
    palette = tuple(dict.fromkeys(int(k) for k in np.asarray(given.colour).reshape(-1)))
    parsed = parse_videos(video[:, :c], palette, ctx.grid).for_bodies(given.colour)
    t = ctx.store.times[ctx.clip]
    tc = t[:c] - t[:c].mean()
    with np.errstate(invalid="ignore"):
        centre = np.nanmean(parsed.pos, axis=1)  # [B, K, 2]
        slope = np.einsum("t,btkd->bkd", tc, parsed.pos - centre[:, None]) / (tc**2).sum()
        radius = np.nanmean(parsed.size, axis=1)  # [B, K]
    if c < 2:
        slope = np.zeros_like(slope)
    pos = centre[:, None] + slope[:, None] * (t - t[:c].mean())[None, :, None, None]
    seen = np.isfinite(radius) & np.isfinite(pos).all(axis=(1, 3))
    pos = np.where(seen[:, None, :, None], pos, np.nan)  # unseen objects are not drawn
    # drawn as the condition frames show them: their colour, shape and size
    shown = Bodies(np.where(seen, given.size, 0.0), given.shape, given.colour, given.inner)
    video[:, c:] = render(pos[:, c:], shown, ctx.grid)
    return video


def _features(store: Store, rows: np.ndarray, frames: np.ndarray, px: int) -> np.ndarray:
    """Frames ``frames`` of ``rows`` at ``px`` resolution as float32 vectors [B, c*px*px*3]."""
    frames = render_rows(store, rows, PixelGrid(px, px), frames)
    return frames.reshape(len(rows), -1).astype(np.float32) / 255.0


def _mirrored(features: np.ndarray, frames: int, px: int) -> np.ndarray:
    """Features [B, D] of the same frames mirrored left-right."""
    return features.reshape(-1, frames, px, px, 3)[:, :, :, ::-1].reshape(len(features), -1)


class Cases(NamedTuple):
    """The nearest training case of each evaluation video (arrays [B]): its training ``row``,
    the L2 ``distance`` of the condition frames, and whether it is ``mirrored``."""

    row: np.ndarray
    distance: np.ndarray
    mirrored: np.ndarray


def nearest_cases(ctx: BaselineContext, rows: np.ndarray) -> Cases:
    """For each evaluation row, the training case (row, and with ``ctx.mirror`` possibly its
    mirror image) with the closest condition frames. Exact search, chunked over the training
    split; rows already searched are read from ``ctx.matches``."""
    if ctx.train is None:
        raise PhylawError("the nearest-case baseline needs a training split: pass --train DIR")
    rows = np.asarray(rows, dtype=np.int64)
    todo = np.unique([r for r in rows.tolist() if r not in ctx.matches]).astype(np.int64)
    if len(todo):
        found = _search(ctx, todo)
        for r, a, d, m in zip(todo.tolist(), *(x.tolist() for x in found), strict=True):
            ctx.matches[r] = (a, d, m)
    got = np.array([ctx.matches[r] for r in rows.tolist()], dtype=object).reshape(len(rows), 3)
    return Cases(got[:, 0].astype(np.int64), got[:, 1].astype(float), got[:, 2].astype(bool))


def _search(ctx: BaselineContext, rows: np.ndarray) -> Cases:
    """The exact nearest-case search of ``nearest_cases`` for ``rows``."""
    c, px = ctx.clip[: ctx.num_cond_frames], ctx.feature_px
    query = _features(ctx.store, rows, c, px)  # [B, D]
    q2 = (query**2).sum(1)
    best = np.full(len(rows), np.inf)
    arg = np.zeros(len(rows), dtype=np.int64)
    flip = np.zeros(len(rows), dtype=bool)
    idx = np.arange(len(rows))
    for start in range(0, len(ctx.train), ctx.train_chunk):
        cand = np.arange(start, min(start + ctx.train_chunk, len(ctx.train)))
        keys = _features(ctx.train, cand, c, px)  # [M, D]
        for mirrored in (False, True) if ctx.mirror else (False,):
            k = _mirrored(keys, len(c), px) if mirrored else keys
            d2 = q2[:, None] - 2 * query @ k.T + (k**2).sum(1)[None]
            j = d2.argmin(1)
            better = d2[idx, j] < best
            best[better] = d2[idx, j][better]
            arg[better], flip[better] = cand[j[better]], mirrored
    # the expansion above cancels in float32; the winners' distances are recomputed exactly
    keys = _features(ctx.train, arg, c, px)
    if flip.any():
        keys[flip] = _mirrored(keys[flip], len(c), px)
    return Cases(arg, np.linalg.norm(query - keys, axis=1), flip)


def nearest_rows(ctx: BaselineContext, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each evaluation row, the training row with the closest condition frames and the L2
    distance between them (both [B]; ``nearest_cases`` also says which are mirrored)."""
    cases = nearest_cases(ctx, rows)
    return cases.row, cases.distance


def nearest_case(ctx: BaselineContext, rows: np.ndarray) -> np.ndarray:
    """Given condition frames, then the nearest training video's continuation (mirrored
    where the case is)."""
    c = ctx.num_cond_frames
    video = oracle(ctx, rows)
    cases = nearest_cases(ctx, rows)
    cont = render_rows(ctx.train, cases.row, ctx.grid, ctx.clip[c:])
    cont[cases.mirrored] = cont[cases.mirrored][:, :, :, ::-1]
    video[:, c:] = cont
    return video


BASELINES: dict[str, Callable[[BaselineContext, np.ndarray], np.ndarray]] = {
    "oracle": oracle,
    "copy-last": copy_last,
    "constant-velocity": constant_velocity,
    "nearest-case": nearest_case,
}


def get_baseline(name: str) -> Callable[[BaselineContext, np.ndarray], np.ndarray]:
    """The baseline called ``name``; a clear error lists the valid names."""
    try:
        return BASELINES[name]
    except KeyError:
        raise PhylawError(
            f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)}"
        ) from None


def write_videos(out: Path, ids: np.ndarray, videos: np.ndarray, fmt: str = "npz") -> None:
    """Write videos [B, T, H, W, 3] as ``{id:07d}.npz`` (compressed, exact) or ``.mp4`` files."""
    for vid, video in zip(ids.tolist(), videos, strict=True):
        if fmt == "mp4":
            atomic_write_bytes(out / f"{vid:07d}.mp4", encode_mp4(video))
        else:
            buf = io.BytesIO()
            np.savez_compressed(buf, video=video)
            atomic_write_bytes(out / f"{vid:07d}.npz", buf.getvalue())


CASES = "cases.npz"  # nearest-case: the matches, beside the videos


def split_key(store: Store) -> str:
    """A digest of a split's identity (its manifest's spec record)."""
    text = json.dumps(store.manifest.get("spec"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_cases(path: Path, ctx: BaselineContext, ids: np.ndarray, cases: Cases) -> None:
    """Save the nearest cases of videos ``ids`` with what they were searched with."""
    buf = io.BytesIO()
    np.savez(
        buf, index=ids[: len(cases.row)], train_index=ctx.train.column("index")[cases.row],
        distance=cases.distance, mirrored=cases.mirrored, cond=ctx.clip[: ctx.num_cond_frames],
        feature_px=ctx.feature_px, mirror=ctx.mirror, data=split_key(ctx.store),
        train=split_key(ctx.train),
    )  # fmt: skip
    atomic_write_bytes(path, buf.getvalue())


def read_cases(path: Path, ctx: BaselineContext, rows: np.ndarray) -> Cases | None:
    """The saved nearest cases of ``rows`` when ``path`` holds them for the same splits,
    condition frames, feature resolution and mirroring; else None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            same = (
                str(z["data"]) == split_key(ctx.store) and str(z["train"]) == split_key(ctx.train)
                and np.array_equal(z["cond"], ctx.clip[: ctx.num_cond_frames])
                and int(z["feature_px"]) == ctx.feature_px and bool(z["mirror"]) == ctx.mirror
            )  # fmt: skip
            if not same:
                return None
            where = {int(v): k for k, v in enumerate(z["index"].tolist())}
            ids = ctx.store.column("index")[rows]
            if not all(int(i) in where for i in ids):
                return None
            k = np.array([where[int(i)] for i in ids], dtype=np.int64)
            train_rows = {int(v): r for r, v in enumerate(ctx.train.column("index").tolist())}
            row = np.array([train_rows[int(i)] for i in z["train_index"][k]], dtype=np.int64)
            return Cases(row, z["distance"][k], z["mirrored"][k])
    except (OSError, KeyError, ValueError):
        return None


def write_baseline(
    name: str,
    ctx: BaselineContext,
    out: str | Path,
    limit: int | None = None,
    fmt: str = "npz",
    batch: int = 64,
    progress: bool = True,
) -> int:
    """Write baseline ``name``'s videos of the first ``limit`` videos of ``ctx.store`` into
    ``out`` as ``{id}.npz|mp4`` (what ``phylaw eval`` reads); videos already there are kept, so
    an interrupted call resumes. Returns the number of videos."""
    produce = get_baseline(name)
    if ctx.resolution < 8 or (fmt == "mp4" and ctx.resolution % 2):
        raise PhylawError("the resolution must be >= 8 px (and even for mp4)")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PhylawError(f"cannot write to {out}: {e.strerror}; choose another --out") from None
    # tells phylaw eval which of the split's frames these are and how many were given
    frames = None if ctx.frames is None else list(ctx.frames)
    write_json(
        out / "videos.json",
        {
            "baseline": name,
            "frame_indices": frames,
            "cond_frames": ctx.num_cond_frames,
            "resolution_px": ctx.resolution,
            "mirror": ctx.mirror,
        },
    )
    ids = ctx.store.column("index")
    n = len(ctx.store) if limit is None else min(limit, len(ctx.store))
    ext = "mp4" if fmt == "mp4" else "npz"
    done = {int(p.stem) for p in out.glob(f"*.{ext}") if p.stem.isdigit()}
    todo = np.array([r for r in range(n) if int(ids[r]) not in done], dtype=np.int64)
    if name == "nearest-case":  # one search for every batch; the matches kept beside
        write_cases(out / CASES, ctx, ids, nearest_cases(ctx, np.arange(n)))
    with tqdm(total=n, initial=n - len(todo), unit="video", desc=name, disable=not progress) as bar:
        for b0 in range(0, len(todo), batch):
            rows = todo[b0 : b0 + batch]
            write_videos(out, ids[rows], produce(ctx, rows), fmt)
            bar.update(len(rows))
    return n

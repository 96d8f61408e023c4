"""Checkpoint + split -> generated continuations beside their ground-truth records.

    phylaw sample --run runs/u --data data/u-eval-ood --out samples/u-ood

For every video of the split (or the first `limit`), the model is given the first
`cond_frames` frames of the ground truth, rendered as in training (`data.resolution_px`, then
area-averaged by `data.downsample`), and generates the rest. The result is converted to uint8
at `resolution` px (default: the run's `data.resolution_px`): integer-factor upsampling is
nearest (a pixel becomes a block around the same centre, so a coverage-weighted centroid does
not move), other factors bilinear. The condition frames of the output are the ground truth
rendered at `resolution`.

Output (`out_dir`), in the layouts of `phylaw data export`, so evaluation reads generated and
ground-truth videos alike:

* ``npz`` (default; exact, no codec noise): ``videos.npz`` with ``videos`` uint8 [N, T, H, W, 3],
  ``index``, ``params``, ``pos0``, ``pos`` [N, T, nb, 2] (ground truth at the generated frames),
  ``level``, ``times`` [T], ``frame_indices`` [T] (into the split's frames), ``param_names``,
  ``levels``;
* ``mp4``: ``{index:07d}.mp4`` per video (H.264, lossy) and ``videos.json``;
* both with ``run.json``: which run, checkpoint and step, EMA or not, sampler, steps, seed.

Resumable: finished batches are kept (``.parts/`` for npz, the mp4 files themselves) and
skipped when the same command runs again. Noise is drawn per video from (seed, video id), so
with the deterministic samplers (ddim, dpmpp-2m) a video's sample does not depend on the batch
size or on interruptions.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from phylaw import PhylawError, __version__
from phylaw.data.dataset import VideoDataset
from phylaw.data.io.video import FPS, write_mp4
from phylaw.data.store import Store, open_store, read_json, write_json
from phylaw.models.dit import DiT
from phylaw.train.checkpoint import load_module, read_state, resolve_checkpoint
from phylaw.train.config import SAMPLERS, TrainConfig, frame_indices, network_config
from phylaw.train.config import json_ready as _json_ready
from phylaw.train.generate import Codec, Continuation, codec_for

__all__ = ["FORMATS", "load_run", "sample_split"]

FORMATS = ("npz", "mp4")


def load_run(
    run: str | Path, *, ema: bool = True, device: str | torch.device = "cpu"
) -> tuple[TrainConfig, DiT, Path, int]:
    """(config, network in eval mode, checkpoint folder, step) of a run's latest checkpoint
    (or of a checkpoint folder), with the EMA weights unless `ema=False`."""
    ckpt = resolve_checkpoint(run)
    state = read_state(ckpt, kind="dit")
    cfg: TrainConfig = state["config"]
    network = network_config(cfg)
    if _json_ready(asdict(network)) != state["network"]:
        raise PhylawError(
            f"{ckpt}: the stored network shape differs from what its config builds in this "
            "version of phylaw"
        )
    model = DiT(network)
    load_module(model, ckpt / ("ema.safetensors" if ema else "model.safetensors"))
    return cfg, model.to(device).eval().requires_grad_(False), ckpt, int(state["step"])


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _npz_member(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)


def _assemble_npz(out: Path, parts: list[Path], arrays: dict[str, np.ndarray], shape) -> None:
    """Stream the parts' videos (in row order) and the records into out/videos.npz."""
    tmp = out / f".videos.npz.tmp-{os.getpid()}"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            _npz_member(zf, name, array)
        with zf.open("videos.npy", "w", force_zip64=True) as f:
            header = {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)}
            np.lib.format.write_array_header_1_0(f, header)
            for part in parts:
                with np.load(part, allow_pickle=False) as z:
                    f.write(np.ascontiguousarray(z["videos"]).data)
    os.replace(tmp, out / "videos.npz")


def _part_rows(parts_dir: Path) -> dict[int, Path]:
    """{first row: part file} of the finished npz parts."""
    found = {}
    if parts_dir.is_dir():
        for p in parts_dir.glob("rows_*.npz"):
            found[int(p.stem.split("_")[1])] = p
    return found


@dataclass(frozen=True)
class _Job:
    """A resolved ``sample_split`` call: the run, the split and what the samples will be."""

    cfg: TrainConfig
    model: torch.nn.Module
    codec: Codec
    device: torch.device
    sampler: str
    steps: int
    res: int
    store: Store
    idx: list[int]
    count: int
    record: dict


def _resolve(run_dir, data_dir, opts: dict) -> _Job:
    """Load the run, check every setting of ``opts`` (sample_split's keywords), and write down
    what these samples are (the record kept in run.json)."""
    fmt = opts["fmt"]
    if fmt not in FORMATS:
        raise PhylawError(f"unknown sample format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    dev = _device(opts["device"])
    cfg, model, ckpt, step = load_run(run_dir, ema=opts["ema"], device=dev)
    codec = opts["codec"] or codec_for(cfg, dev)
    sampler = opts["sampler"] or cfg.diffusion.sampler
    if sampler not in SAMPLERS:
        raise PhylawError(f"unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}")
    steps = opts["steps"] or cfg.diffusion.sample_steps
    if not 1 <= steps <= cfg.diffusion.num_steps:
        raise PhylawError(f"invalid --steps {steps}: must be in [1, {cfg.diffusion.num_steps}]")
    limit = opts["limit"]
    if opts["batch_size"] < 1 or (limit is not None and limit < 1):
        raise PhylawError("batch size and limit must be positive")
    res = opts["resolution"] or cfg.data.resolution_px
    if res < 1 or (fmt == "mp4" and res % 2):
        raise PhylawError(f"invalid resolution {res}: mp4 needs an even size such as 32 or 128")
    store = data_dir if isinstance(data_dir, Store) else open_store(data_dir)
    idx = frame_indices(cfg)
    if store.manifest["num_frames"] <= idx[-1]:
        raise PhylawError(f"{store.root} has too few frames for this model ({idx[-1] + 1} needed)")
    count = len(store) if limit is None else min(limit, len(store))
    record = {
        "format": "phylaw-samples",
        "phylaw_version": __version__,
        "run": str(Path(run_dir).resolve()),
        "checkpoint": ckpt.name,
        "step": step,
        "ema": opts["ema"],
        "sampler": sampler,
        "steps": steps,
        "seed": opts["seed"],
        "resolution_px": res,
        "video_format": fmt,
        "count": count,
        "split": str(store.root.resolve()),
        "scenario": store.scenario,
        "split_name": store.split,
        "frame_indices": idx,
        "cond_frames": cfg.diffusion.cond_frames,
        "frame_times_s": store.times[idx].tolist(),
        "fps": FPS / cfg.data.frame_stride,
    }
    return _Job(cfg, model, codec, dev, sampler, steps, res, store, idx, count, record)


def _open_out(out: Path, record: dict) -> bool:
    """Create ``out`` or check that it holds samples of the same settings; True when they are
    complete already."""
    if (out / "run.json").exists():
        old = read_json(out / "run.json", "sample record")
        differ = [k for k in record if k not in ("phylaw_version",) and old.get(k) != record[k]]
        if differ:
            raise PhylawError(
                f"{out} holds samples made with other settings ({', '.join(differ)}); choose "
                "another --out or delete it"
            )
        if old.get("complete"):
            print(f"{out} is complete ({record['count']} videos)")
            return True
    elif out.exists() and any(out.iterdir()):
        raise PhylawError(f"{out} exists and holds no samples; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "run.json", dict(record, complete=False))
    return False


def _todo(out: Path, job: _Job, ids: np.ndarray, fmt: str) -> np.ndarray:
    """Rows still to generate: those no finished part (npz) or file (mp4) holds."""
    if fmt != "npz":
        return np.asarray([r for r in range(job.count) if not (out / f"{ids[r]:07d}.mp4").exists()])
    covered = np.zeros(job.count, bool)
    for path in _part_rows(out / ".parts").values():
        with np.load(path, allow_pickle=False) as z:
            rows = z["rows"]
        covered[rows[rows < job.count]] = True
    return np.flatnonzero(~covered)


def _generate(job: _Job, out: Path, todo, ids, cont, opts: dict) -> None:
    """Continue the videos ``todo`` batch by batch, the given frames taken from the ground
    truth; each batch is written as it comes (a part file, or mp4 files)."""
    gt = VideoDataset(job.store, job.res)  # ground truth at the output size (condition frames)
    src = VideoDataset(job.store, job.cfg.data.resolution_px)  # the model's input, as trained
    c, parts_dir, n = job.cfg.diffusion.cond_frames, out / ".parts", opts["batch_size"]
    bar = tqdm(
        total=job.count,
        initial=job.count - len(todo),
        unit="video",
        disable=not opts["progress"],
        desc=f"sample {job.store.split}",
    )
    with bar:
        for start in range(0, len(todo), n):
            rows = todo[start : start + n]
            videos = cont(src.render_rows(rows)["video"].numpy(), seeds=ids[rows], size=job.res)
            videos[:, :c] = gt.render_rows(rows)["video"].numpy()[:, job.idx[:c]]
            if opts["fmt"] == "npz":
                parts_dir.mkdir(exist_ok=True)
                tmp = parts_dir / f".tmp-{os.getpid()}.npz"
                np.savez(tmp, rows=rows, videos=videos)
                os.replace(tmp, parts_dir / f"rows_{int(rows[0]):07d}.npz")
            else:
                for r, video in zip(rows, videos, strict=True):
                    write_mp4(out / f"{ids[r]:07d}.mp4", video, fps=job.record["fps"])
            bar.update(len(rows))


def _finish(job: _Job, out: Path, ids: np.ndarray, fmt: str) -> None:
    """Assemble the npz (the videos and their states) or list the mp4 files; mark complete."""
    store, idx, count = job.store, job.idx, job.count
    states = store.get(slice(0, count))
    records = {
        "index": states.index,
        "params": states.params,
        "pos0": states.pos0,
        "pos": states.pos[:, idx],
        "level": states.level,
        "times": store.times[idx],
        "frame_indices": np.asarray(idx),
        "cond_frames": np.asarray(job.cfg.diffusion.cond_frames),
        "param_names": np.array(store.manifest["param_names"]),
        "levels": np.array(store.levels),
    }
    if fmt == "npz":
        _finish_npz(out, out / ".parts", records, (count, len(idx), job.res, job.res, 3))
    else:
        write_json(out / "videos.json", _listing(store, states, ids, job.record))
    write_json(out / "run.json", dict(job.record, complete=True))


def sample_split(
    run_dir: str | Path,
    data_dir: str | Path | Store,
    out_dir: str | Path,
    *,
    steps: int | None = None,
    ema: bool = True,
    sampler: str | None = None,
    batch_size: int = 16,
    limit: int | None = None,
    resolution: int | None = None,
    fmt: str = "npz",
    seed: int = 0,
    device: str = "auto",
    codec: Codec | None = None,
    progress: bool = True,
) -> Path:
    """Generate continuations of a split's videos with a run's checkpoint; see the module doc.

    steps / sampler: default the run's `diffusion.sample_steps` / `diffusion.sampler`;
    resolution: output side in px (default the run's `data.resolution_px`); fmt: 'npz' or
    'mp4'; codec: a latent-space run's codec (default: its `space.autoencoder`, through
    `train.generate.codec_for`). Re-running the same call resumes. Returns `out_dir`.
    """
    opts = dict(
        steps=steps, ema=ema, sampler=sampler, batch_size=batch_size, limit=limit,
        resolution=resolution, fmt=fmt, seed=seed, device=device, codec=codec, progress=progress,
    )  # fmt: skip
    job = _resolve(run_dir, data_dir, opts)
    out = Path(out_dir)
    if _open_out(out, job.record):
        return out
    ids = job.store.column("index")[: job.count]
    cont = Continuation(
        job.model, job.cfg, job.codec, device=job.device, steps=job.steps, sampler=job.sampler,
        batch_size=batch_size, seed=seed,
    )  # fmt: skip
    _generate(job, out, _todo(out, job, ids, fmt), ids, cont, opts)
    _finish(job, out, ids, fmt)
    return out


def _finish_npz(out: Path, parts_dir: Path, records: dict[str, np.ndarray], shape) -> None:
    """Assemble out/videos.npz from the finished parts (in row order) and the records."""
    count = shape[0]
    parts = _part_rows(parts_dir)
    order = []  # part files sorted by first row; each holds consecutive rows when complete
    for first in sorted(parts):
        with np.load(parts[first], allow_pickle=False) as z:
            order.append((z["rows"], parts[first]))
    rows_all = np.concatenate([r for r, _ in order]) if order else np.zeros(0, int)
    if not np.array_equal(rows_all, np.arange(count)):
        _reorder(parts_dir, order, count)
        parts = _part_rows(parts_dir)
        order = [(None, parts[k]) for k in sorted(parts)]
    _assemble_npz(out, [p for _, p in order], records, shape)
    shutil.rmtree(parts_dir, ignore_errors=True)


def _listing(store: Store, states, ids: np.ndarray, record: dict) -> dict:
    """videos.json of an mp4 folder, as `phylaw data export` writes it."""
    return {
        "format": "phylaw-videos-mp4",
        "scenario": store.scenario,
        "split": store.split,
        "resolution_px": record["resolution_px"],
        "fps": record["fps"],
        "frame_times_s": record["frame_times_s"],
        "frame_indices": record["frame_indices"],
        "cond_frames": record["cond_frames"],
        "param_names": store.manifest["param_names"],
        "videos": [
            {
                "id": int(i),
                "file": f"{int(i):07d}.mp4",
                "params": states.params[k].tolist(),
                "level": store.levels[int(states.level[k])],
            }
            for k, i in enumerate(ids)
        ],
    }


def _reorder(parts_dir: Path, order: list, count: int) -> None:
    """Rewrite parts whose rows interleave (a resume with another batch size) in row order."""
    by_row: dict[int, np.ndarray] = {}
    for _, path in order:
        with np.load(path, allow_pickle=False) as z:
            for r, v in zip(z["rows"], z["videos"], strict=True):
                if r < count:
                    by_row[int(r)] = v
        path.unlink()
    for start in range(0, count, 256):
        rows = np.arange(start, min(start + 256, count))
        np.savez(
            parts_dir / f"rows_{start:07d}.npz",
            rows=rows,
            videos=np.stack([by_row[int(r)] for r in rows]),
        )

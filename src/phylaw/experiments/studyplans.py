"""What the Sec. 5 study experiments share: how an arm is trained at each scale, the stages of
an arm and of its case-based reference, and readers of the finished stages.

An *arm* is one training run on one study's training split, its continuations of the study's
evaluation split (every video labelled by its region), their scores (``phylaw eval``, which on
a study split also records what each video did: ``eval.metrics.attributes``) and their case
scores (``experiments.casematch``). Each study also gets the nearest-case baseline (the pure
case-based reference, in the model's clip, mirrored where the model trained with flips),
scored and case-matched the same way.

Scales. ``paper``: 32 frames of 128x128, the first 3 given, on the latents of one autoencoder
(``ae-paper``, trained once on uniform motion of every colour and shape the studies use: the
paper's VAE is one pretrained model), the studies' training sizes (200K, 300K) and the
authors' evaluation grids, each run on 8 GPUs (``torchrun``, or ``--executor slurm``). Sec. 5
names no model size; ``PAPER_MODEL`` says which and why. ``cpu``: ``CPU_TRAINING`` for every arm
(`cpu-uniform` to its 2,000-step target, one place to switch it), pixel space, coarser
evaluation grids; ``tiny``: ``cpu-tiny`` for seconds (tests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phylaw.experiments.kinds import (
    BaselineStage,
    CaseMatchStage,
    DataStage,
    EvaluateStage,
    SampleStage,
    TrainAEStage,
    TrainStage,
)
from phylaw.experiments.plan import Resources, Stage

PAPER_MODEL = (
    "DiT-B (paper-B, 100K steps of batch 256 on VAE latents): Sec. 5 names no model size; Sec. "
    "3 finds that model size changes the OOD error little and without a trend (DiT-B: 0.433, "
    "0.328, 0.358 at 30K, 300K, 3M), so the mechanisms studied here should not depend on it, "
    "and DiT-B is the middle of Table 1 at a third of DiT-L's cost per step"
)


@dataclass(frozen=True)
class Training:
    """How every arm of an experiment is trained: a ``phylaw train`` preset, its ``--set``
    overrides, the steps and an optional time cap; ``minutes`` is the plan's estimate."""

    preset: str
    sets: tuple[str, ...] = ()
    steps: int | None = None  # None: the preset's
    max_minutes: float | None = None  # None: the steps decide
    minutes: float = 10.0  # estimated minutes per run on the plan's machine
    resources: Resources = Resources()

    def describe(self) -> str:
        """For a plan's note: 'cpu-uniform (no overrides; 2000 steps, ~8 min per run)'."""
        steps = f"{self.steps} steps" if self.steps else "the preset's steps"
        sets = ", ".join(self.sets) or "no overrides"
        return f"{self.preset} ({sets}; {steps}, ~{self.minutes:g} min per run)"


PAPER_TRAINING = Training(
    "paper-B",
    minutes=20 * 60,
    resources=Resources(gpus_per_node=8, cpus_per_task=8, mem_gb=256, time_min=24 * 60),
)
# `cpu-uniform` to 2,000 steps: its ID |mean v - v| <= 0.05 point (benchmarks/RESULTS.md,
# "Learning speed"), ~8 minutes on 2 cores
CPU_TRAINING = Training("cpu-uniform", steps=2000, minutes=8.0)
TINY_TRAINING = Training(
    "cpu-tiny", ("run.threads=1", "run.sample_every=0", "run.ckpt_every=2"), 4, minutes=0.1
)


@dataclass(frozen=True)
class Scale:
    """The settings a study experiment's scale fixes besides its arms."""

    training: Training
    train_size: str | None = None  # training videos per arm; None: the study's (200K, 300K)
    resolution_px: int | None = None  # None: the preset's
    frames: int | None = None  # None: the preset's
    cond_frames: int = 3  # the paper's three given frames
    autoencoder: str | None = None  # a `train-ae` preset (one shared run); None: pixel space
    gpu_resources: Resources = Resources()  # sampling and the autoencoder
    seed: int = 0


PAPER_SCALE = Scale(
    PAPER_TRAINING,
    resolution_px=128,
    frames=32,
    autoencoder="ae-paper",
    gpu_resources=Resources(gpus_per_node=1, cpus_per_task=8, mem_gb=64, time_min=24 * 60),
)


def clip(s: Scale) -> tuple[int, int | None, int]:
    """(resolution, frames or None for all 32, stride) of the model's videos at scale ``s``
    (the preset with its overrides), for the baselines to produce the same clip."""
    from phylaw.train.config import override
    from phylaw.train.presets import get_preset

    t = s.training
    typed = [f"data.resolution_px={s.resolution_px}"] if s.resolution_px else []
    typed += [f"data.frames={s.frames}"] if s.frames else []
    cfg = override(get_preset(t.preset), list(t.sets) + typed)
    whole = cfg.data.frames == 32 and cfg.data.frame_stride == 1
    return cfg.data.resolution_px, None if whole else cfg.data.frames, cfg.data.frame_stride


def eval_count(study: str, grid: str | None) -> int:
    """Videos of a study's evaluation split with ``grid`` (None: the study's own)."""
    from phylaw.data.region_args import parse_grid
    from phylaw.data.studies import study_split

    return study_split(study, "eval", grid=parse_grid(grid) if grid else ()).count


# ------------------------------------------------------------------------------ stages
def autoencoder(s: Scale) -> list[Stage]:
    """One autoencoder for every arm (paper scale): uniform motion of both colours and all
    three shapes, so every study's bodies are in its training set."""
    if not s.autoencoder:
        return []
    return [
        DataStage(
            "data autoencoder", scenario="uniform", split="train", size="300K", seed=s.seed,
            colours="red,blue", shapes="disc,square,ring", minutes=1.0,
        ),
        TrainAEStage(
            "autoencoder", preset=s.autoencoder, resolution_px=s.resolution_px,
            train="data autoencoder", minutes=12 * 60, resources=s.gpu_resources,
        ),
    ]  # fmt: skip


def study_data(study: str, s: Scale, grid: str | None) -> list[Stage]:
    """A study's training split (``s.train_size``) and evaluation split (``grid``)."""
    return [
        DataStage(f"data {study} train", scenario="uniform", study=study, split="train",
                  size=s.train_size, seed=s.seed, minutes=0.5),
        DataStage(f"data {study} eval", scenario="uniform", study=study, split="eval",
                  grid=grid, seed=s.seed, minutes=0.2),
    ]  # fmt: skip


def arm(
    label: str, study: str, s: Scale, n: int, *, sets=(), seed: int = 0, mirror: bool = False
) -> list[Stage]:
    """One arm (module docstring): train, continue the ``n`` evaluation videos, score them,
    case-match them (``mirror``: a model trained with flips saw mirrored cases) reusing the
    matches of the study's ``reference`` (which must come first)."""
    t, data, train = s.training, f"data {study} eval", f"data {study} train"
    cases = f"nearest-case {study}" + (" mirrored" if mirror else "")
    return [
        TrainStage(
            f"train {label}", preset=t.preset, seed=seed, steps=t.steps,
            max_minutes=t.max_minutes, resolution_px=s.resolution_px, frames=s.frames,
            cond_frames=s.cond_frames, sets=t.sets + tuple(sets), train=train,
            autoencoder="autoencoder" if s.autoencoder else None, minutes=t.minutes,
            resources=t.resources,
        ),
        SampleStage(f"sample {label}", seed=seed, run=f"train {label}", data=data,
                    minutes=n / 250, resources=s.gpu_resources),
        EvaluateStage(f"eval {label}", videos=f"sample {label}", data=data, minutes=n / 10000),
        CaseMatchStage(f"case-match {label}", mirror=mirror, scores=f"eval {label}", data=data,
                       train=train, cases=cases, minutes=0.2 + n / 2000),
    ]  # fmt: skip


def study_arm(study: str, s: Scale, grid: str | None) -> list[Stage]:
    """A study trained as one arm of its own name: its data, its nearest-case reference and
    the arm (``study_data``, ``reference``, ``arm``), on ``grid``."""
    n = eval_count(study, grid)
    return [
        *study_data(study, s, grid),
        *reference(study, s, n),
        *arm(study, study, s, n, seed=s.seed),
    ]


def reference(study: str, s: Scale, n: int, mirror: bool = False) -> list[Stage]:
    """The nearest-case baseline of a study in the model's clip, scored and case-matched."""
    res, frames, stride = clip(s)
    label = f"nearest-case {study}" + (" mirrored" if mirror else "")
    data, train = f"data {study} eval", f"data {study} train"
    return [
        BaselineStage(label, method="nearest-case", resolution_px=res, cond_frames=s.cond_frames,
                      frames=frames, frame_stride=stride, mirror=mirror, data=data, train=train,
                      minutes=0.5 + n / 500),
        EvaluateStage(f"eval {label}", videos=label, data=data, minutes=n / 10000),
        CaseMatchStage(f"case-match {label}", mirror=mirror, scores=f"eval {label}", data=data,
                       train=train, cases=label, minutes=0.2 + n / 2000),
    ]  # fmt: skip


# ------------------------------------------------------------------------------ readers
def _jsonl(paths: dict, name: str, file: str) -> list[dict]:
    """The records of ``file`` in stage ``name`` (empty when it has not run or is not in the
    plan)."""
    path = Path(paths.get(name, "")) / file
    if name not in paths or not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def records(paths: dict, name: str) -> list[dict]:
    """The per-video records of an evaluate stage (empty when it has not run)."""
    return _jsonl(paths, name, "videos.jsonl")


def case_rows(paths: dict, name: str) -> list[dict]:
    """The per-video records of a case-match stage (empty when it has not run)."""
    return _jsonl(paths, name, "casematch.jsonl")


def closer_to_case(rows: list[dict], kind: str = "px") -> np.ndarray:
    """Per case-match record: 1 closer to the case (score > 1/2), 0 to the law, NaN
    undefined."""
    s = column(rows, f"score_{kind}")
    return np.where(np.isfinite(s), (s > 0.5).astype(np.float64), np.nan)


def summary(paths: dict, name: str, file: str = "summary.json") -> dict:
    """An evaluate stage's summary (or a case-match stage's ``casematch.json``); {} if absent."""
    path = Path(paths.get(name, "")) / file
    return json.loads(path.read_text()) if name in paths and path.exists() else {}


def column(rows: list[dict], key: str) -> np.ndarray:
    """``key`` of every record as float64 (NaN where None)."""
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])


def stat(group: dict, metric: str, digits: int = 3, scale: float = 1.0) -> str:
    """'mean [lo, hi] (n)' of a summary group's metric, or '-'."""
    st = (group or {}).get("metrics", group or {}).get(metric) or {}
    if st.get("mean") is None:
        return "-"
    lo, hi = st.get("ci_low"), st.get("ci_high")
    ci = f" [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]" if lo is not None else ""
    return f"{st['mean'] * scale:.{digits}f}{ci} (n={st.get('count', '?')})"


def bootstrap(fn, n: int, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of ``fn(idx)`` over ``resamples`` draws of ``n`` indices."""
    rng = np.random.default_rng(seed)
    vals = np.array([fn(rng.integers(0, n, n)) for _ in range(resamples)])
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return np.nan, np.nan
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def slope(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[float, float, float, int]:
    """Least-squares slope of ``y`` on ``x`` over the finite pairs, with its 95 % bootstrap
    interval and the count: (slope, low, high, n); NaN with fewer than 3 pairs or one x."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]

    def fit(idx: np.ndarray) -> float:
        xs, ys = x[idx], y[idx]
        dx = xs - xs.mean()
        den = (dx * dx).sum()
        return float((dx * (ys - ys.mean())).sum() / den) if den > 0 else np.nan

    if len(x) < 3 or np.ptp(x) == 0:
        return np.nan, np.nan, np.nan, int(len(x))
    lo, hi = bootstrap(fit, len(x), seed=seed)
    return fit(np.arange(len(x))), lo, hi, int(len(x))


def fmt_slope(s: tuple[float, float, float, int]) -> str:
    """'0.82 [0.70, 0.95] (n=120)' or '-'."""
    if not np.isfinite(s[0]):
        return "-"
    return f"{s[0]:.2f} [{s[1]:.2f}, {s[2]:.2f}] (n={s[3]})"


def mean_ci(values: np.ndarray, seed: int = 0) -> tuple[float, float, float, int]:
    """Mean of ``values`` (NaN: left out; 0/1 flags give a rate) with its 95 % bootstrap
    interval and count."""
    from phylaw.eval.aggregate import summarize

    st = summarize({"x": np.asarray(values, dtype=np.float64)}, seed=seed)["x"]
    if st["mean"] is None:
        return np.nan, np.nan, np.nan, 0
    return st["mean"], st["ci_low"], st["ci_high"], st["count"]


def fmt_mean(r: tuple[float, float, float, int], digits: int = 3, pct: bool = False) -> str:
    """'0.123 [0.100, 0.150] (n=240)', as a percentage with ``pct``, or '-'."""
    if not np.isfinite(r[0]):
        return "-"
    k, unit, d = (100.0, "%", 1) if pct else (1.0, "", digits)
    return f"{k * r[0]:.{d}f}{unit} [{k * r[1]:.{d}f}, {k * r[2]:.{d}f}] (n={r[3]})"


def fmt_stats(st: dict | None, pct: bool = True) -> str:
    """A ``summarize`` entry as 'mean [lo, hi] (n)' (a percentage by default), or '-'."""
    if not st or st.get("mean") is None:
        return "-"
    return fmt_mean((st["mean"], st["ci_low"], st["ci_high"], st["count"]), pct=pct)


def examples(paths: dict, sample: str, data: str, chosen: list[dict], caption: str):
    """(caption, GIF) of the videos ``chosen`` (records with ``id``) of sample stage
    ``sample``: ground truth left, generated right; None when none is there."""
    from phylaw.data.info import side_by_side
    from phylaw.data.io.video import encode_gif
    from phylaw.data.store import open_store
    from phylaw.render.geometry import PixelGrid
    from phylaw.render.raster import render

    path = Path(paths.get(sample, "")) / "videos.npz"
    if sample not in paths or not path.exists() or not chosen:
        return None
    store = open_store(paths[data])
    with np.load(path, allow_pickle=False) as z:
        where = {int(v): k for k, v in enumerate(z["index"].tolist())}
        chosen = [r for r in chosen if r["id"] in where]
        if not chosen:
            return None
        generated = z["videos"][[where[r["id"]] for r in chosen]]
        frames = z["frame_indices"]
    ids = {int(v): k for k, v in enumerate(store.column("index").tolist())}
    truth = store.trajectory(np.array([ids[r["id"]] for r in chosen])).at_frames(frames)
    grid = PixelGrid(generated.shape[3], generated.shape[2])
    videos = render(truth.pos, truth.bodies, grid)
    return caption, encode_gif(side_by_side(videos, generated, min_px=128), fps=4)

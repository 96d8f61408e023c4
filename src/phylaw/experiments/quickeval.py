"""Quick evaluation during training: the EMA model's velocity errors on a few ID and OOD videos.

It lives above `train` (which never imports `eval`): `phylaw train` and the experiments' train
stages build it with `quick_evaluator(cfg)` and hand it to `train.train(..., evaluator=...)`.
Every `run.eval_every` steps the training loop hands a `Continuation` to `QuickEval`, which
continues `run.eval_videos` fixed videos of each evaluation split (`data.eval_id`,
`data.eval_ood`; rows spread evenly over the split, so every OOD level is sampled), parses them
with the evaluation package's public API and returns, per split, the mean of

* ``velocity_error``: e, the paper's Sec. 3.1 per-frame error (a ball not found once in both
  frames of a sample is charged |v| + 10, ``eval.physics``);
* ``velocity_error_mean``: |mean parsed vx - mean true vx|, the authors' code metric;

over the videos the ground truth lets it score (a frame pair with the ball in view), the
``tracked`` share of their ball-samples (the generated ball found once in both frames), and
``ood_over_id`` (e OOD / e ID): the numbers the paper's finding is about, watched while the
model trains. Videos are rendered
and parsed at `data.resolution_px`, on the clip's frames (`data.frames` every
`data.frame_stride`), the first `diffusion.cond_frames` of them given.
"""

from __future__ import annotations

import numpy as np

from phylaw.data.store import open_store
from phylaw.eval.metrics.physics import evaluate_videos
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render
from phylaw.train.config import TrainConfig, frame_indices

__all__ = ["QuickEval", "MEAN_GAP", "PER_FRAME", "quick_evaluator"]

PER_FRAME, MEAN_GAP = "velocity_error", "velocity_error_mean"


def _mean(x: np.ndarray) -> float:
    """Mean of the finite values (NaN when there are none: no video could be scored)."""
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


class QuickEval:
    """``evaluator(continuation, step) -> {"id/velocity_error_mean": ..., ...}`` for `train`."""

    def __init__(self, cfg: TrainConfig, videos: int | None = None) -> None:
        n = videos or cfg.run.eval_videos
        self.cfg, self.frames = cfg, frame_indices(cfg)
        self.grid = PixelGrid.square(cfg.data.resolution_px)
        self.splits = {}
        for name, root in (("id", cfg.data.eval_id), ("ood", cfg.data.eval_ood)):
            if root:
                store = open_store(root)
                rows = np.unique(np.linspace(0, len(store) - 1, min(n, len(store))).astype(int))
                self.splits[name] = (store, rows)

    def __bool__(self) -> bool:
        return bool(self.splits)

    def split_metrics(self, continuation) -> dict:
        """Per split name: the `VideoMetrics` of `continuation`'s videos (`eval.metrics`)."""
        out = {}
        for name, (store, rows) in self.splits.items():
            truth = store.trajectory(rows)
            videos = render(truth.pos, truth.bodies, self.grid)
            generated = continuation(videos, seeds=store.get(rows).index)
            out[name] = evaluate_videos(
                generated,
                truth.at_frames(self.frames),
                store.scenario,
                self.grid,
                self.cfg.diffusion.cond_frames,
            )
        return out

    def __call__(self, continuation, step: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, metrics in self.split_metrics(continuation).items():
            for key in (PER_FRAME, MEAN_GAP):
                out[f"{name}/{key}"] = _mean(metrics[key])
            n = metrics["n_velocity_samples"].astype(np.float64)
            tf = np.nan_to_num(metrics["tracked_fraction"])
            out[f"{name}/tracked"] = float((tf * n).sum() / n.sum()) if n.sum() else float("nan")
        if "id" in self.splits and "ood" in self.splits:
            out["ood_over_id"] = out[f"ood/{PER_FRAME}"] / out[f"id/{PER_FRAME}"]
        return out


def quick_evaluator(cfg: TrainConfig) -> QuickEval | None:
    """The evaluator `train` should be given for `cfg`: a `QuickEval` when `run.eval_every` is
    set and an evaluation split is named (`data.eval_id`, `data.eval_ood`), else None."""
    if not cfg.run.eval_every:
        return None
    return QuickEval(cfg) or None

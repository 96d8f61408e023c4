"""Table 3 of the paper for a trained autoencoder: does reconstruction keep the physics?

The velocity error of reconstructed ground-truth videos beside the parse floor (the error of
the ground-truth videos themselves under the same parser; the paper's "Ground Truth Error").
The paper's ratio recon / floor is 1.06 for its VAE. ``error`` is the headline
``velocity_error_mean`` (|mean parsed v - v|), ``per_frame_error`` the paper's e. The
`autoencoder_recon` experiment runs it per scenario (its ``ae-recon`` stages); it lives above
`train` because it scores with `eval`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from phylaw.data.dataset import VideoDataset
from phylaw.eval.metrics.physics import VideoMetrics, evaluate_videos
from phylaw.render.geometry import PixelGrid
from phylaw.train.ae import load_autoencoder, reconstruct

__all__ = ["measure"]


def measure(run: Path, eval_dir: Path, resolution: int, batch: int = 8) -> dict:
    """The Table-3 numbers of the autoencoder in `run` on the split in `eval_dir`."""
    ae = load_autoencoder(run)
    ds = VideoDataset(eval_dir, resolution)
    grid = PixelGrid.square(resolution)
    metrics: dict[str, list] = {"gt": [], "recon": []}
    for i in range(0, len(ds), batch):
        rows = np.arange(i, min(i + batch, len(ds)))
        video = ds.render_rows(rows)["video"]
        truth = ds.store.trajectory(rows)
        for key, v in (("gt", video), ("recon", reconstruct(ae, video))):
            metrics[key].append(evaluate_videos(v.numpy(), truth, ds.store.scenario, grid))
    out: dict[str, float | int] = {"videos": len(ds)}
    for key, parts in metrics.items():
        m = VideoMetrics.concat(parts)
        out[f"{key}_error"] = float(np.nanmean(m["velocity_error_mean"]))
        out[f"{key}_per_frame_error"] = float(np.nanmean(m["velocity_error"]))
    out["ratio"] = out["recon_error"] / out["gt_error"]
    out["per_frame_ratio"] = out["recon_per_frame_error"] / out["gt_per_frame_error"]
    return out

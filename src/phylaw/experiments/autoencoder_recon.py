"""Table 3 of the paper: does the autoencoder keep the physics? Reconstruction error vs floor.

Per scenario: train an autoencoder (`phylaw train-ae`) on the 30K training split, reconstruct
ID evaluation videos (posterior mean), parse them and the ground truth with the same parser,
and report the error of each (|mean v - v|, the metric of Table 3's numbers, and e) and their
ratio (the paper's VAE: 1.06 for uniform motion, "reconstruction keeps the physics").

* ``--scale paper``: ae-paper (8x spatial, 4x causal temporal) on 32 frames of 128x128.
* ``--scale cpu``: ae-small on 32 px for 15 minutes per scenario (the paper's setting needs a
  GPU to train in reasonable time; `benchmarks/RESULTS.md` has what 2 cores reach).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from phylaw.experiments.kinds import AEReconStage, DataStage, TrainAEStage
from phylaw.experiments.plan import Plan, Resources, Stage, scale_settings
from phylaw.experiments.report.html import Table

__all__ = ["SCALES", "AutoencoderRecon", "build", "cpu", "paper", "plan"]

SCENARIOS = ("uniform", "collision", "parabola")


@dataclass(frozen=True)
class AutoencoderRecon:
    """The settings of Table 3; the defaults are the paper's."""

    preset: str = "ae-paper"  # the autoencoder (8x spatial, 4x causal temporal)
    resolution_px: int = 128  # frame size of training and reconstruction
    max_minutes: float | None = None  # training budget per scenario; None: the preset's steps
    eval_videos: int = 256  # ID evaluation videos reconstructed per scenario
    train_estimate_min: float = 12 * 60  # estimated minutes per autoencoder
    resources: Resources = Resources(gpus_per_node=1, cpus_per_task=8, mem_gb=64, time_min=24 * 60)
    note: str = "Paper scale: ae-paper on 32 frames of 128x128."


def paper() -> AutoencoderRecon:
    """The paper's autoencoder at 128 px, one GPU per scenario."""
    return AutoencoderRecon()


def cpu() -> AutoencoderRecon:
    """ae-small at 32 px for 15 minutes per scenario on a 2-core CPU."""
    s = replace(
        paper(),
        preset="ae-small",
        resolution_px=32,
        max_minutes=15.0,
        eval_videos=64,
        train_estimate_min=16,
        resources=Resources(),
    )
    note = (
        f"CPU scale: ae-small at {s.resolution_px} px, {s.max_minutes:g} minutes per "
        "scenario; the paper's setting needs a GPU to train."
    )
    return replace(s, note=note)


SCALES = {"paper": paper, "cpu": cpu}


def _table(paths: dict) -> list[Table]:
    rows = []
    for scenario in SCENARIOS:
        r = json.loads((paths[f"recon {scenario}"] / "summary.json").read_text())
        rows.append(
            [
                scenario,
                f"{r['gt_error']:.4f}",
                f"{r['recon_error']:.4f}",
                f"{r['ratio']:.2f}",
                f"{r['gt_per_frame_error']:.4f}",
                f"{r['recon_per_frame_error']:.4f}",
                str(r["videos"]),
            ]
        )
    header = ["scenario", "floor |mean v - v|", "reconstructed", "ratio", "floor e", "recon e", "n"]
    note = "World units/s. The paper's Table 3 ratio: 1.06 (uniform), 1.04, 1.03 with its VAE."
    return [Table("Table 3: reconstruction against the parse floor", header, rows, note)]


def build(s: AutoencoderRecon, scale: str, seed: int = 0) -> Plan:
    """The Table 3 plan of settings ``s`` (``scale`` names them in the report)."""
    stages: list[Stage] = []
    for scenario in SCENARIOS:
        data = {"scenario": scenario, "seed": seed}
        stages += [
            DataStage(f"data {scenario} train", split="train", size="30K", **data),
            DataStage(f"data {scenario} eval", split="eval-id", size=str(s.eval_videos), **data),
            TrainAEStage(
                f"autoencoder {scenario}",
                preset=s.preset,
                resolution_px=s.resolution_px,
                max_minutes=s.max_minutes,
                train=f"data {scenario} train",
                minutes=s.train_estimate_min,
                resources=s.resources,
            ),
            AEReconStage(
                f"recon {scenario}",
                resolution_px=s.resolution_px,
                ae=f"autoencoder {scenario}",
                data=f"data {scenario} eval",
                minutes=1,
                resources=s.resources,
            ),
        ]
    return Plan(
        name="autoencoder-recon",
        title="does the autoencoder keep the physics? (Table 3)",
        scale=scale,
        note=s.note,
        stages=tuple(stages),
        tables=_table,
    )


def plan(scale: str = "cpu", seed: int = 0) -> Plan:
    """Table 3 at ``scale`` (a name in `SCALES`)."""
    return build(scale_settings("autoencoder-recon", SCALES, scale), scale, seed)

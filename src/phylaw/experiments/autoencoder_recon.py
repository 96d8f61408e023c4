"""Table 3 of the paper: does the autoencoder keep the physics? Reconstruction error vs floor.

Per scenario: train an autoencoder (`phylaw train-ae`) on the 30K training split, reconstruct
ID evaluation videos (posterior mean), parse them and the ground truth with the same parser,
and report the headline error of each and their ratio (the paper's VAE: 1.06 for uniform
motion, "reconstruction keeps the physics").

* ``--scale paper``: ae-paper (8x spatial, 4x causal temporal) on 32 frames of 128x128.
* ``--scale cpu``: ae-small on 32 px for 15 minutes per scenario (the paper's setting needs a
  GPU to train in reasonable time; `benchmarks/RESULTS.md` has what 2 cores reach).
"""

from __future__ import annotations

import json
from dataclasses import replace

from phylaw.eval.report import Table
from phylaw.experiments.plan import Plan, Stage

__all__ = ["plan"]

SCENARIOS = ("uniform", "collision", "parabola")
SETTINGS = {
    "paper": {"preset": "ae-paper", "resolution": 128, "minutes": 0, "eval": 256, "est": 12 * 60},
    "cpu": {"preset": "ae-small", "resolution": 32, "minutes": 15, "eval": 64, "est": 16},
}


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


def plan(scale: str = "cpu", seed: int = 0) -> Plan:
    """Table 3 at ``scale``."""
    s = SETTINGS[scale]
    stages: list[Stage] = []
    sets = [f"data.resolution_px={s['resolution']}"] if scale == "cpu" else []
    for scenario in SCENARIOS:
        base = {"scenario": scenario, "seed": seed}
        stages += [
            Stage(f"data {scenario} train", "data", {**base, "split": "train", "size": "30K"}),
            Stage(
                f"data {scenario} eval", "data",
                {**base, "split": "eval-id", "size": str(s["eval"])},
            ),
            Stage(
                f"autoencoder {scenario}", "train-ae",
                {"preset": s["preset"], "sets": sets, "minutes": s["minutes"]},
                {"train": f"data {scenario} train"}, minutes=s["est"],
            ),
            Stage(
                f"recon {scenario}", "ae-recon", {"resolution": s["resolution"]},
                {"ae": f"autoencoder {scenario}", "data": f"data {scenario} eval"}, minutes=1,
            ),
        ]  # fmt: skip
    p = Plan(
        name="autoencoder-recon",
        title="does the autoencoder keep the physics? (Table 3)",
        scale=scale,
        note=(
            "Paper scale: ae-paper on 32 frames of 128x128."
            if scale == "paper"
            else f"CPU scale: ae-small at {s['resolution']} px, {s['minutes']} minutes per "
            "scenario; the paper's setting needs a GPU to train."
        ),
        stages=tuple(stages),
    )
    return replace(p, tables=_table)

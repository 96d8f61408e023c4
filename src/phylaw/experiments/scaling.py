"""Figure 3 of the paper: does scaling data and model close the gap, in and out of distribution?

For each scenario (uniform, collision, parabola), training-set size and model size: train,
continue the ID and OOD evaluation videos, score them (|mean v - v| and per-frame
e), with the ground truth's parse floor beside. The figure: error against data size, one line
per model size, ID and OOD panels per scenario.

* ``--scale paper``: DiT-S/B/L on VAE latents of 32 frames of 128x128 (one autoencoder per
  scenario, `phylaw train-ae --preset ae-paper`), 30K/300K/3M videos, batch 256, 100K steps,
  the default evaluation splits; each run on 8 GPUs (``--executor slurm``: one 8-task job;
  ``show``: a ``torchrun`` line).
* ``--scale cpu``: the pixel-space CPU preset (DiT-T, 8 frames of 32 px, 3,000 steps of
  batch 32, i.e. 96K videos seen) on 100 / 1K / 10K training videos, the paper's 30K / 300K /
  3M shrunk 300x so that the smallest set is data-limited at this step count (measured on
  uniform motion: ID |mean v - v| 0.131 with 100 videos, 0.042 with 1K, 0.047 with 30K;
  benchmarks/RESULTS.md). Every run trains its full schedule (no time budget), so the sizes
  differ only in data. One model size: a wider one needs ~3x the time per step, which is the
  paper's GPU scale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from phylaw.experiments.kinds import DataStage, EvaluateStage, SampleStage, TrainAEStage, TrainStage
from phylaw.experiments.plan import Plan, Resources, Stage, scale_settings

__all__ = ["SCALES", "Model", "Scaling", "build", "cpu", "paper", "plan"]

SCENARIOS = ("uniform", "collision", "parabola")


@dataclass(frozen=True)
class Model:
    """One model size of the figure: its label, its training preset and extra overrides."""

    label: str  # the figure's legend, e.g. DiT-S
    preset: str  # a `phylaw train` preset
    sets: tuple[str, ...] = ()  # further `--set` overrides (model.size=DiT-XS)


@dataclass(frozen=True)
class Scaling:
    """The settings of Figure 3; the defaults are the paper's (Sec. 3.1, A.4)."""

    models: tuple[Model, ...] = (
        Model("DiT-S", "paper-S"),
        Model("DiT-B", "paper-B"),
        Model("DiT-L", "paper-L"),
    )
    sizes: tuple[str, ...] = ("30K", "300K", "3M")  # training-set sizes (data levels)
    max_minutes: float | None = None  # time budget per run; None: the preset's 100K steps
    eval_id: int | None = None  # ID evaluation videos per scenario; None: the paper's A.4 size
    eval_ood: int | None = None  # OOD evaluation videos per scenario; None: the paper's
    autoencoder: str | None = "ae-paper"  # one autoencoder per scenario; None: pixel space
    train_estimate_min: float = 24 * 60  # estimated minutes per training run
    train_resources: Resources = Resources(
        gpus_per_node=8, cpus_per_task=8, mem_gb=256, time_min=24 * 60
    )
    gpu_resources: Resources = Resources(gpus_per_node=1, cpus_per_task=8, mem_gb=64)  # sampling
    note: str = (
        "Paper scale: DiT-S/B/L on VAE latents, 30K/300K/3M videos, 100K steps of batch 256."
    )


def paper() -> Scaling:
    """The paper's setting: DiT-S/B/L on latents of 32 frames of 128x128, 8 GPUs per run."""
    return Scaling()


def cpu() -> Scaling:
    """The paper's plan shrunk to 2 cores: one pixel-space model, 3,000 steps per run, on
    100 / 1K / 10K videos (the data axis shrunk 300x; see the module docstring)."""
    base = paper()
    s = replace(
        base,
        models=(Model("DiT-T", "cpu-uniform"),),
        sizes=("100", "1K", "10K"),
        max_minutes=None,
        eval_id=96,
        eval_ood=144,
        autoencoder=None,
        train_estimate_min=12.0,
        train_resources=Resources(cpus_per_task=2, mem_gb=8),
        gpu_resources=Resources(),
    )
    return replace(
        s,
        note=(
            "CPU scale: pixel-space DiT-T on 8 frames (every 4th) of 32 px, 3,000 steps of "
            "batch 32 per run (96K videos seen), on 100, 1K and 10K training videos: the "
            "paper's 30K / 300K / 3M shrunk 300x so that the smallest set limits the model at "
            f"this step count. {s.eval_id} ID and {s.eval_ood} OOD videos per scenario. One "
            "model size (the paper's model axis needs its GPU scale)."
        ),
    )


SCALES = {"paper": paper, "cpu": cpu}


def _figures(s: Scaling):
    def figures(paths: dict) -> list:
        import json

        from phylaw.experiments.report.html import pyplot

        plt = pyplot()
        fig, axes = plt.subplots(
            2, len(SCENARIOS), figsize=(3.4 * len(SCENARIOS), 5.6), squeeze=False
        )
        sizes, counts, tracked = list(s.sizes), set(), []
        for col, scenario in enumerate(SCENARIOS):
            for row, split in enumerate(("id", "ood")):
                ax = axes[row][col]
                for model in (m.label for m in s.models):
                    ys, lo, hi = [], [], []
                    for size in sizes:
                        path = paths[f"eval {scenario} {size} {model} {split}"] / "summary.json"
                        overall = json.loads(path.read_text())["overall"]
                        e = overall["metrics"]["velocity_error"]
                        ys.append(e["mean"] if e["mean"] is not None else np.nan)
                        lo.append(e["ci_low"] if e["ci_low"] is not None else np.nan)
                        hi.append(e["ci_high"] if e["ci_high"] is not None else np.nan)
                        counts.add(e["count"])
                        tracked.append(overall.get("tracked_fraction") or 0.0)
                    ys, lo, hi = np.array(ys), np.array(lo), np.array(hi)
                    ax.errorbar(sizes, ys, yerr=[ys - lo, hi - ys], fmt="o-", capsize=3,
                                label=model)  # fmt: skip
                floor = json.loads(
                    (paths[f"eval {scenario} {sizes[0]} {s.models[0].label} {split}"]
                     / "summary.json").read_text()
                )["floor"]["overall"]["metrics"]["velocity_error"]["mean"]  # fmt: skip
                ax.axhline(floor, color="k", ls="--", label="parse floor")
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_title(f"{scenario} {split.upper()}", fontsize=9)
                ax.set_xlabel("training videos")
                ax.grid(alpha=0.3, which="both")
            axes[0][col].set_ylabel("velocity error e (world units/s)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        caption = (
            "Figure 3 at this scale: velocity error e against data size, per model size, with "
            f"95 % intervals; each point stands on {min(counts)}-{max(counts)} videos, its "
            f"generated balls tracked in at least {100 * min(tracked):.1f} % of ball-samples "
            "(the rest charged |v| + 10)"
        )
        return [(caption, fig)]

    return figures


def _train_data(s: Scaling, scenario: str, seed: int) -> list[Stage]:
    """The training splits of a scenario, and its autoencoder (trained on the first split)."""
    stages: list[Stage] = [
        DataStage(
            f"data {scenario} {size}",
            scenario=scenario,
            split="train",
            size=size,
            seed=seed,
            minutes=0.5,
        )
        for size in s.sizes
    ]
    if s.autoencoder:
        stages.append(
            TrainAEStage(
                f"autoencoder {scenario}",
                preset=s.autoencoder,
                train=f"data {scenario} {s.sizes[0]}",
                minutes=12 * 60,
                resources=s.gpu_resources,
            )
        )
    return stages


def _runs(s: Scaling, scenario: str, size: str, model: Model, seed: int) -> list[Stage]:
    """One training run, its ID and OOD continuations and their scores."""
    run = f"train {scenario} {size} {model.label}"
    stages: list[Stage] = [
        TrainStage(
            run,
            preset=model.preset,
            seed=seed,
            max_minutes=s.max_minutes,
            sets=model.sets,
            train=f"data {scenario} {size}",
            autoencoder=f"autoencoder {scenario}" if s.autoencoder else None,
            minutes=s.train_estimate_min,
            resources=s.train_resources,
        )
    ]
    for split, key, count in (("eval-id", "id", s.eval_id), ("eval-ood", "ood", s.eval_ood)):
        n = count or 2000
        name = f"{scenario} {size} {model.label} {key}"
        data = f"data {scenario} {split}"
        stages += [
            SampleStage(
                f"sample {name}",
                seed=seed,
                run=run,
                data=data,
                minutes=n / 250,
                resources=s.gpu_resources,
            ),
            EvaluateStage(f"eval {name}", videos=f"sample {name}", data=data, minutes=n / 10000),
        ]
    return stages


def build(s: Scaling, scale: str, seed: int = 0) -> Plan:
    """The scaling plan of settings ``s`` (``scale`` names them in the report)."""
    stages: list[Stage] = []
    methods: dict[str, dict[str, str]] = {}
    for scenario in SCENARIOS:
        for split, count in (("eval-id", s.eval_id), ("eval-ood", s.eval_ood)):
            size = None if count is None else str(count)
            stages.append(
                DataStage(
                    f"data {scenario} {split}",
                    scenario=scenario,
                    split=split,
                    size=size,
                    seed=seed,
                    minutes=0.2,
                )
            )
        stages += _train_data(s, scenario, seed)
        for size in s.sizes:
            for model in s.models:
                stages += _runs(s, scenario, size, model, seed)
                label = f"{scenario} {size} {model.label}"
                methods[label] = {key: f"eval {label} {key}" for key in ("id", "ood")}
    return Plan(
        name="scaling",
        title="scaling data and model size, in and out of distribution (Figure 3)",
        scale=scale,
        note=s.note,
        stages=tuple(stages),
        methods=methods,
        figures=_figures(s),
    )


def plan(scale: str = "cpu", seed: int = 0) -> Plan:
    """The scaling study at ``scale`` (a name in `SCALES`)."""
    return build(scale_settings("scaling", SCALES, scale), scale, seed)

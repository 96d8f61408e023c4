"""Figure 3 of the paper: does scaling data and model close the gap, in and out of distribution?

For each scenario (uniform, collision, parabola), training-set size and model size: train,
continue the ID and OOD evaluation videos, score them (headline |mean v - v| and per-frame
e), with the ground truth's parse floor beside. The figure: error against data size, one line
per model size, ID and OOD panels per scenario.

* ``--scale paper``: DiT-S/B/L on VAE latents of 32 frames of 128x128 (one autoencoder per
  scenario, `phylaw train-ae --preset ae-paper`), 30K/300K/3M videos, batch 256, 100K steps,
  the default evaluation splits; training lines are ``torchrun`` on 8 GPUs.
* ``--scale cpu``: the pixel-space CPU preset at two widths (DiT-T 4x128 and DiT-XS 6x192),
  two training-set sizes (30K and 3M: states are cheap) and a fixed time budget per run, so
  the whole plan fits in about 2.5 hours on 2 cores. At this scale a run sees fewer videos
  than the smallest training set holds, so data size cannot matter yet: the CPU plot shows the
  ID/OOD gap, not the paper's data-scaling trend.
"""

from __future__ import annotations

from dataclasses import replace

from phylaw.experiments.plan import Plan, Stage

__all__ = ["plan"]

SCENARIOS = ("uniform", "collision", "parabola")
SCALES = {
    "paper": {
        "models": {"DiT-S": "paper-S", "DiT-B": "paper-B", "DiT-L": "paper-L"},
        "sizes": ("30K", "300K", "3M"),
        "minutes": 0,  # no budget: 100K steps
        "eval": {"eval-id": None, "eval-ood": None},  # the default split sizes
        "gpus": 8,
        "train_minutes": 24 * 60,
    },
    "cpu": {
        "models": {"DiT-T": "cpu-uniform", "DiT-XS": "cpu-uniform"},
        "sizes": ("30K", "3M"),
        "minutes": 8,
        "eval": {"eval-id": 96, "eval-ood": 144},
        "gpus": 0,
        "train_minutes": 8,
    },
}
CPU_MODEL_SETS = {"DiT-T": [], "DiT-XS": ["model.size=DiT-XS"]}


def _figures(p: Plan, scale: dict):
    def figures(paths: dict) -> list:
        import json

        from phylaw.eval.report import pyplot

        plt = pyplot()
        fig, axes = plt.subplots(
            2, len(SCENARIOS), figsize=(3.4 * len(SCENARIOS), 5.6), squeeze=False
        )
        sizes = list(scale["sizes"])
        for col, scenario in enumerate(SCENARIOS):
            for row, split in enumerate(("id", "ood")):
                ax = axes[row][col]
                for model in scale["models"]:
                    ys = []
                    for size in sizes:
                        path = paths[f"eval {scenario} {size} {model} {split}"] / "summary.json"
                        stats = json.loads(path.read_text())["overall"]["metrics"]
                        ys.append(stats["velocity_error_mean"]["mean"])
                    ax.plot(sizes, ys, "o-", label=model)
                floor = json.loads(
                    (paths[f"eval {scenario} {sizes[0]} {next(iter(scale['models']))} {split}"]
                     / "summary.json").read_text()
                )["floor"]["overall"]["metrics"]["velocity_error_mean"]["mean"]  # fmt: skip
                ax.axhline(floor, color="k", ls="--", label="parse floor")
                ax.set_yscale("log")
                ax.set_title(f"{scenario} {split.upper()}", fontsize=9)
                ax.set_xlabel("training videos")
                ax.grid(alpha=0.3, which="both")
            axes[0][col].set_ylabel("|mean v - v| (world units/s)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        return [("Figure 3 at this scale: error against data size, per model size", fig)]

    return figures


def plan(scale: str = "cpu", seed: int = 0) -> Plan:
    """The scaling study at ``scale`` ('cpu' or 'paper')."""
    s = SCALES[scale]
    stages: list[Stage] = []
    methods: dict[str, dict[str, str]] = {}
    for scenario in SCENARIOS:
        for split, size in s["eval"].items():
            cfg = {"scenario": scenario, "split": split, "size": size and str(size), "seed": seed}
            stages.append(Stage(f"data {scenario} {split}", "data", cfg, minutes=0.2))
        if scale == "paper":
            stages.append(
                Stage(
                    f"data {scenario} ae-train", "data",
                    {"scenario": scenario, "split": "train", "size": "30K", "seed": seed},
                    minutes=0.5,
                )
            )  # fmt: skip
            stages.append(
                Stage(
                    f"autoencoder {scenario}", "train-ae", {"preset": "ae-paper", "sets": []},
                    {"train": f"data {scenario} ae-train"}, minutes=12 * 60,
                )
            )  # fmt: skip
        for size in s["sizes"]:
            train_cfg = {"scenario": scenario, "split": "train", "size": size, "seed": seed}
            stages.append(Stage(f"data {scenario} {size}", "data", train_cfg, minutes=0.5))
            for model, preset in s["models"].items():
                run = f"train {scenario} {size} {model}"
                sets = [f"run.seed={seed}"] + (CPU_MODEL_SETS[model] if scale == "cpu" else [])
                needs = {"train": f"data {scenario} {size}"}
                if scale == "paper":
                    needs["autoencoder"] = f"autoencoder {scenario}"
                stages.append(
                    Stage(
                        run, "train",
                        {"preset": preset, "sets": sets,
                         "minutes": s["minutes"], "gpus": s["gpus"]},
                        needs, minutes=s["train_minutes"],
                    )
                )  # fmt: skip
                for split, key in (("eval-id", "id"), ("eval-ood", "ood")):
                    n = s["eval"][split] or 2000
                    name = f"{scenario} {size} {model} {key}"
                    data = f"data {scenario} {split}"
                    stages.append(
                        Stage(f"sample {name}", "sample", {"seed": seed},
                              {"run": run, "data": data}, minutes=n / 250)
                    )  # fmt: skip
                    stages.append(
                        Stage(f"eval {name}", "evaluate", {},
                              {"videos": f"sample {name}", "data": data}, minutes=n / 400)
                    )  # fmt: skip
                methods[f"{scenario} {size} {model}"] = {
                    "id": f"eval {scenario} {size} {model} id",
                    "ood": f"eval {scenario} {size} {model} ood",
                }
    p = Plan(
        name="scaling",
        title="scaling data and model size, in and out of distribution (Figure 3)",
        scale=scale,
        note=(
            "Paper scale: DiT-S/B/L on VAE latents, 30K/300K/3M videos, 100K steps of batch 256."
            if scale == "paper"
            else "CPU scale: pixel-space DiT-T and DiT-XS on 8 frames (every 4th) of 32 px, "
            f"{s['minutes']} minutes per run, 30K and 3M training videos, "
            f"{s['eval']['eval-id']} ID and {s['eval']['eval-ood']} OOD videos per scenario. "
            "Each run sees fewer videos than the smallest training set: data size cannot "
            "matter at this budget, so this shows the ID/OOD gap, not the data-scaling trend."
        ),
        stages=tuple(stages),
        methods=methods,
    )
    return replace(p, figures=_figures(p, s))

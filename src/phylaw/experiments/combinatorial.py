"""``combinatorial``: Table 2, combinatorial generalization on PHYRE-style scenes (Sec. 4).

Models are trained on the scenes of 6, 30 or 60 of the 70 templates (four of the eight object
kinds each) and continue videos from their first frame: in-template videos (held-out trials of
the training templates) and out-of-template videos (the 10 held-out templates 10060-10069, new
combinations of kinds every model has seen). Each set is scored by PSNR, SSIM, LPIPS and FVD
against the simulator's ground truth and by the abnormal rate of the automatic flags
(``eval.scene_flags``), which replaces the paper's human label; the flags' rate on the ground
truth is the floor. The paper's finding: out-of-template error falls as templates grow
(abnormal 67 % -> 10 % for DiT-XL from 6 to 60 templates).

* paper scale: DiT-B and DiT-XL on VAE latents, 32 frames of 256x256 with the first given,
  100K videos per template, 1M steps of batch 256 (the paper: 64 A100s); evaluation sets as
  the authors' script: 600 in-template videos, 500 out-of-template.
* cpu scale: `train.presets.cpu_scenes` (DiT-T in pixels, 12 frames of 64 px) for a few
  minutes per template count, a few dozen scenes per template. It shows the pipeline and the
  metrics, not the trend: at this budget every model is far from the ground truth.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from phylaw.eval.report import Table
from phylaw.experiments.plan import Plan, Stage

__all__ = ["SCALES", "plan"]

TEMPLATE_SETS = ("6", "30", "60")
SPLITS = {"in": "eval-in-template", "out": "eval-out-of-template"}
SCALES = {
    "paper": {
        "models": {
            "DiT-B": ("paper-B", []),
            "DiT-XL": ("paper-XL", []),
        },
        "sets": [
            "data.resolution_px=256",
            "data.frames=32",
            "diffusion.cond_frames=1",
            "run.steps=1000000",
        ],
        "train_per_template": "100K",
        # videos per template: the authors' 600 in-template (of 6, 30 or 60 templates), 500 out
        "eval_in": {"6": 100, "30": 20, "60": 10},
        "eval_out": 50,
        "minutes": 0,
        "train_minutes": 7 * 24 * 60,
        "gpus": 8,
    },
    "cpu": {
        "models": {"DiT-T": ("cpu-scenes", [])},
        "sets": [],
        "train_per_template": "40",
        "eval_in": {"6": 16, "30": 3, "60": 2},
        "eval_out": 10,
        "minutes": 6,
        "train_minutes": 6,
        "gpus": 0,
    },
}
METRICS = (  # (summary key, column, scale, digits)
    ("abnormal", "abnormal %", 100, 1),
    ("psnr", "PSNR", 1, 2),
    ("ssim", "SSIM", 1, 3),
    ("lpips", "LPIPS", 1, 3),
)


def _summary(paths: dict, name: str) -> dict | None:
    path = paths[name] / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def _cell(summary: dict | None, key: str, scale: float, digits: int) -> str:
    stats = (summary or {}).get("overall", {}).get("metrics", {}).get(key)
    if not stats or stats.get("mean") is None:
        return "-"
    lo, hi = stats.get("ci_low"), stats.get("ci_high")
    ci = f" [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]" if lo is not None else ""
    return f"{stats['mean'] * scale:.{digits}f}{ci}"


def _tables(s: dict):
    def tables(paths: dict) -> list[Table]:
        rows, flags = [], []
        for model in s["models"]:
            for templates in TEMPLATE_SETS:
                for key, split in SPLITS.items():
                    sm = _summary(paths, f"eval {model} {templates} {key}")
                    floor = (sm or {}).get("floor") or {}
                    rows.append(
                        [model, templates, split, str((sm or {}).get("videos", "-"))]
                        + [_cell(sm, k, sc, d) for k, _, sc, d in METRICS]
                        + [
                            "-" if sm is None or sm.get("fvd") is None else f"{sm['fvd']:.1f}",
                            "-" if not floor else f"{100 * floor['abnormal']:.1f}",
                        ]
                    )
                    if sm is not None:
                        flags.append(
                            [model, templates, split]
                            + [_cell(sm, f"flag_{f}", 100, 1).split(" ")[0] for f in sm["flags"]]
                        )
        from phylaw.eval.scene_flags import SCENE_FLAGS

        return [
            Table(
                "Table 2 at this scale: in-template and out-of-template continuations",
                ["model", "templates", "set", "videos"]
                + [c for _, c, _, _ in METRICS]
                + ["FVD", "abnormal % of the ground truth"],
                rows,
                note=(
                    "Means over videos [95% bootstrap interval]; metrics over the generated "
                    "frames (the first is given). Abnormal: any automatic flag in a run of "
                    "frames (eval.scene_flags), the paper's human label's stand-in; the last "
                    "column is the flags' rate on the ground truth at the same size. LPIPS and "
                    "FVD need weights (PHYLAW_LPIPS_WEIGHTS, PHYLAW_I3D_WEIGHTS), FVD 9+ frames."
                ),
            ),
            Table(
                "Which flags fire (% of videos)",
                ["model", "templates", "set"] + list(SCENE_FLAGS),
                flags,
            ),
        ]

    return tables


def _figures(s: dict):
    def figures(paths: dict) -> list:
        from phylaw.eval.report import pyplot

        plt = pyplot()
        fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.0))
        for ax, (key, label, scale, _) in zip(axes, METRICS[:2], strict=True):
            for model in s["models"]:
                for split_key, split in SPLITS.items():
                    ys = []
                    for templates in TEMPLATE_SETS:
                        sm = _summary(paths, f"eval {model} {templates} {split_key}")
                        stats = (sm or {}).get("overall", {}).get("metrics", {}).get(key) or {}
                        mean = stats.get("mean")
                        ys.append(np.nan if mean is None else mean * scale)
                    ax.plot(TEMPLATE_SETS, ys, "o-", label=f"{model} {split}")
            ax.set_xlabel("training templates")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        return [("Abnormal rate and PSNR against the number of training templates", fig)]

    return figures


def _animations(s: dict):
    def animations(paths: dict) -> list[tuple[str, bytes]]:
        from phylaw.data.info import side_by_side
        from phylaw.data.store import open_store
        from phylaw.data.video import encode_gif
        from phylaw.data.views import render_batch
        from phylaw.render.geometry import PixelGrid

        out = []
        model = list(s["models"])[-1]
        for key in SPLITS:
            name = f"{model} {TEMPLATE_SETS[-1]} {key}"
            eval_dir, sample_dir = paths[f"eval {name}"], paths[f"sample {name}"]
            if not (eval_dir / "videos.jsonl").exists():
                continue
            records = [json.loads(x) for x in (eval_dir / "videos.jsonl").read_text().splitlines()]
            data = f"data in {TEMPLATE_SETS[-1]}" if key == "in" else "data out"
            normal = [r for r in records if not r["abnormal"]][:2]
            abnormal = [r for r in records if r["abnormal"]][:2]
            store = open_store(paths[data])
            with np.load(sample_dir / "videos.npz", allow_pickle=False) as z:
                where = {int(v): k for k, v in enumerate(z["index"].tolist())}
                frames = z["frame_indices"]
                for label, chosen in (("no flag", normal), ("flagged", abnormal)):
                    if not chosen:
                        continue
                    generated = z["videos"][[where[r["id"]] for r in chosen]]
                    ids = store.column("index")
                    rows = np.array([int(np.flatnonzero(ids == r["id"])[0]) for r in chosen])
                    grid = PixelGrid(generated.shape[3], generated.shape[2])
                    truth = render_batch(store, store.get(rows), grid)[:, frames]
                    what = "; ".join(
                        f"id {r['id']} (template {r['template']}"
                        + (f": {', '.join(r['flags'])})" if r["flags"] else ")")
                        for r in chosen
                    )
                    out.append(
                        (
                            f"{model}, {TEMPLATE_SETS[-1]} templates, {SPLITS[key]}, {label}: "
                            f"ground truth | generated; {what}",
                            encode_gif(side_by_side(truth, generated, min_px=128), fps=4),
                        )
                    )
        return out

    return animations


def plan(scale: str = "cpu", seed: int = 0) -> Plan:
    """Table 2 at ``scale`` ('cpu' or 'paper')."""
    s = SCALES[scale]
    stages: list[Stage] = []

    def data(name: str, split: str, size, templates: str | None, minutes: float) -> None:
        cfg = {"scenario": "combinatorial", "split": split, "size": str(size), "seed": seed}
        if templates:
            cfg["templates"] = templates
        stages.append(Stage(name, "data", cfg, minutes=minutes))

    scene_s = 0.04 / 60  # minutes per scene to simulate on 2 cores
    data("data out", SPLITS["out"], s["eval_out"], None, 10 * s["eval_out"] * scene_s)
    for templates in TEMPLATE_SETS:
        k = int(templates)
        per = s["train_per_template"]
        count = k * (int(per.rstrip("K")) * (1000 if per.endswith("K") else 1))
        data(f"data train {templates}", "train", per, templates, count * scene_s)
        data(f"data in {templates}", SPLITS["in"], s["eval_in"][templates], templates,
             k * s["eval_in"][templates] * scene_s)  # fmt: skip
    needs_ae = {}
    if scale == "paper":  # a latent model needs an autoencoder trained on scenes first
        stages.append(
            Stage(
                "autoencoder", "train-ae",
                {"preset": "ae-paper", "sets": ["data.resolution_px=256"]},
                {"train": "data train 60"}, minutes=12 * 60,
            )
        )  # fmt: skip
        needs_ae = {"autoencoder": "autoencoder"}
    for model, (preset, sets) in s["models"].items():
        for templates in TEMPLATE_SETS:
            run = f"train {model} {templates}"
            stages.append(
                Stage(
                    run, "train",
                    {"preset": preset, "sets": [f"run.seed={seed}", *s["sets"], *sets],
                     "minutes": s["minutes"], "gpus": s["gpus"]},
                    {"train": f"data train {templates}", **needs_ae}, minutes=s["train_minutes"],
                )
            )  # fmt: skip
            for key in SPLITS:
                n = int(templates) * s["eval_in"][templates] if key == "in" else 10 * s["eval_out"]
                data_name = f"data {key} {templates}" if key == "in" else "data out"
                name = f"{model} {templates} {key}"
                stages.append(
                    Stage(f"sample {name}", "sample", {}, {"run": run, "data": data_name},
                          minutes=n / 150)
                )  # fmt: skip
                stages.append(
                    Stage(f"eval {name}", "evaluate", {"cond_frames": 1},
                          {"videos": f"sample {name}", "data": data_name}, minutes=n / 300)
                )  # fmt: skip
    if scale == "cpu":
        note = (
            f"CPU scale: {', '.join(s['models'])} (preset cpu-scenes: pixel space, 12 frames "
            f"every 2nd of 64x64 px, the first given) for {s['minutes']} minutes per template "
            f"count, {s['train_per_template']} training scenes per template, "
            f"{s['eval_out']} out-of-template scenes per held-out template. This shows the "
            "pipeline and the metrics, not the paper's trend: at this budget no model is close "
            "to the ground truth. The paper: DiT-B/XL, 256 px, 32 frames, 100K scenes per "
            "template, 1M steps on 64 GPUs."
        )
    else:
        note = (
            "Paper scale: DiT-B and DiT-XL on the latents of an autoencoder trained on the "
            "60-template scenes (phylaw train-ae, ae-paper), 32 frames of 256x256 with "
            "the first given, 100K scenes per template, 1M steps of batch 256 (the paper used 64 "
            "A100s; the printed commands use 8 GPUs per node)."
        )
    p = Plan(
        name="combinatorial",
        title="combinatorial generalization on PHYRE-style scenes (Table 2)",
        scale=scale,
        note=note,
        stages=tuple(stages),
    )
    return replace(p, tables=_tables(s), figures=_figures(s), animations=_animations(s))

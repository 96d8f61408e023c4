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
  99K videos per template (the paper's 100K less the in-template trials), 1M steps of batch
  256 on 8 nodes of 8 GPUs (the paper: 64 A100s); the 6M training scenes are built by arrays
  of cluster jobs; evaluation sets as the authors' script: 600 in-template videos, 500
  out-of-template.
* cpu scale: `train.presets.cpu_scenes` (DiT-T in pixels, 12 frames of 64 px) for a few
  minutes per template count, a few dozen scenes per template. It shows the pipeline and the
  metrics, not the trend: at this budget every model is far from the ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np

from phylaw.experiments.kinds import DataStage, EvaluateStage, SampleStage, TrainAEStage, TrainStage
from phylaw.experiments.plan import Plan, Resources, Stage, scale_settings
from phylaw.experiments.report.html import Table

__all__ = ["SCALES", "Combinatorial", "Model", "build", "cpu", "paper", "plan"]

TEMPLATE_SETS = ("6", "30", "60")
SPLITS = {"in": "eval-in-template", "out": "eval-out-of-template"}
SCENE_MIN = 0.03 / 60  # minutes to simulate one scene in one process (29 s per 1000 measured)


@dataclass(frozen=True)
class Model:
    """One model of the table: its label, its training preset and extra overrides."""

    label: str  # the table's name, e.g. DiT-XL
    preset: str  # a `phylaw train` preset
    sets: tuple[str, ...] = ()  # further `--set` overrides


@dataclass(frozen=True)
class Combinatorial:
    """The settings of Table 2; the defaults are the paper's (Sec. 4, the authors' script)."""

    models: tuple[Model, ...] = (Model("DiT-B", "paper-B"), Model("DiT-XL", "paper-XL"))
    resolution_px: int | None = 256  # frame size; None: the preset's
    frames: int | None = 32  # frames per video; None: the preset's
    cond_frames: int = 1  # given frames (training and scoring)
    steps: int | None = 1_000_000  # training steps; None: the preset's
    max_minutes: float | None = None  # training budget per run; None: the steps decide
    train_per_template: str = "99K"  # training scenes per template (the paper's 100K less the
    # 10 in-template trials of each of its 100 tasks, which the evaluation keeps)
    eval_in: tuple[int, int, int] = (100, 20, 10)  # in-template videos per template, 6/30/60
    eval_out: int = 50  # out-of-template videos per held-out template (10 templates)
    autoencoder: str | None = "ae-paper"  # one autoencoder on the 60-template scenes; None: pixels
    train_estimate_min: float = 21 * 60  # estimated minutes per training run
    train_resources: Resources = Resources(
        nodes=8, gpus_per_node=8, cpus_per_task=8, mem_gb=512, time_min=24 * 60
    )
    gpu_resources: Resources = Resources(
        gpus_per_node=1, cpus_per_task=8, mem_gb=64, time_min=24 * 60
    )
    data_resources: Resources = Resources(cpus_per_task=8, mem_gb=32, time_min=60)  # train splits
    scenes_per_job: int = 100_000  # training scenes per array task on a cluster
    note: str = (
        "Paper scale: DiT-B and DiT-XL on the latents of an autoencoder trained on the "
        "60-template scenes (phylaw train-ae, ae-paper), 32 frames of 256x256 with the first "
        "given, 99K scenes per template (the paper's 100K less the in-template trials), 1M "
        "steps of batch 256 on 8 nodes of 8 GPUs (the paper's 64 A100s)."
    )


def paper() -> Combinatorial:
    """The paper's Table 2: DiT-B/XL, 256 px, 32 frames, 6M training scenes, 64 GPUs a run."""
    return Combinatorial()


def cpu() -> Combinatorial:
    """Table 2 in about 25 minutes on 2 cores: pixel-space DiT-T, a few dozen scenes each."""
    s = replace(
        paper(),
        models=(Model("DiT-T", "cpu-scenes"),),
        resolution_px=None,
        frames=None,
        steps=None,
        max_minutes=6.0,
        train_per_template="40",
        eval_in=(16, 3, 2),
        eval_out=10,
        autoencoder=None,
        train_estimate_min=6,
        train_resources=Resources(),
        gpu_resources=Resources(),
        data_resources=Resources(),
    )
    note = (
        f"CPU scale: {', '.join(m.label for m in s.models)} (preset cpu-scenes: pixel space, "
        f"12 frames every 2nd of 64x64 px, the first given) for {s.max_minutes:g} minutes per "
        f"template count, {s.train_per_template} training scenes per template, "
        f"{s.eval_out} out-of-template scenes per held-out template. This shows the "
        "pipeline and the metrics, not the paper's trend: at this budget no model is close "
        "to the ground truth. The paper: DiT-B/XL, 256 px, 32 frames, 100K scenes per "
        "template, 1M steps on 64 GPUs."
    )
    return replace(s, note=note)


SCALES = {"paper": paper, "cpu": cpu}

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


def _tables(s: Combinatorial):
    def tables(paths: dict) -> list[Table]:
        rows, flags = [], []
        for model in (m.label for m in s.models):
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
        from phylaw.eval.flags.scenes import SCENE_FLAGS

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


def _figures(s: Combinatorial):
    def figures(paths: dict) -> list:
        from phylaw.experiments.report.html import pyplot

        plt = pyplot()
        fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.0))
        for ax, (key, label, scale, _) in zip(axes, METRICS[:2], strict=True):
            for model in (m.label for m in s.models):
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


def _animations(s: Combinatorial):
    def animations(paths: dict) -> list[tuple[str, bytes]]:
        from phylaw.data.info import side_by_side
        from phylaw.data.io.video import encode_gif
        from phylaw.data.store import open_store
        from phylaw.data.views import render_batch
        from phylaw.render.geometry import PixelGrid

        out = []
        model = s.models[-1].label
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


def _data(s: Combinatorial, seed: int) -> list[Stage]:
    """The out-of-template split, and per template set its training and in-template splits."""
    out = DataStage(
        "data out",
        scenario="combinatorial",
        split=SPLITS["out"],
        size=str(s.eval_out),
        seed=seed,
        minutes=10 * s.eval_out * SCENE_MIN,
    )
    stages: list[Stage] = [out]
    per = s.train_per_template
    per_count = int(per.rstrip("K")) * (1000 if per.endswith("K") else 1)
    for templates, eval_in in zip(TEMPLATE_SETS, s.eval_in, strict=True):
        count = int(templates) * per_count
        stages += [
            DataStage(
                f"data train {templates}",
                scenario="combinatorial",
                split="train",
                size=per,
                seed=seed,
                templates=templates,
                minutes=count * SCENE_MIN,
                jobs=max(1, count // s.scenes_per_job),
                resources=s.data_resources,
            ),
            replace(
                out,
                name=f"data in {templates}",
                split=SPLITS["in"],
                size=str(eval_in),
                templates=templates,
                minutes=int(templates) * eval_in * SCENE_MIN,
            ),
        ]
    return stages


def _runs(s: Combinatorial, model: Model, templates: str, seed: int) -> list[Stage]:
    """One training run, its in- and out-of-template continuations and their scores."""
    run = f"train {model.label} {templates}"
    stages: list[Stage] = [
        TrainStage(
            run,
            preset=model.preset,
            seed=seed,
            steps=s.steps,
            max_minutes=s.max_minutes,
            resolution_px=s.resolution_px,
            frames=s.frames,
            cond_frames=s.cond_frames,
            sets=model.sets,
            train=f"data train {templates}",
            autoencoder="autoencoder" if s.autoencoder else None,
            minutes=s.train_estimate_min,
            resources=s.train_resources,
        )
    ]
    eval_in = dict(zip(TEMPLATE_SETS, s.eval_in, strict=True))[templates]
    for key in SPLITS:
        n = int(templates) * eval_in if key == "in" else 10 * s.eval_out
        data = f"data {key} {templates}" if key == "in" else "data out"
        name = f"{model.label} {templates} {key}"
        stages += [
            SampleStage(
                f"sample {name}",
                seed=seed,
                run=run,
                data=data,
                minutes=n / 150,
                resources=s.gpu_resources,
            ),
            EvaluateStage(
                f"eval {name}",
                cond_frames=s.cond_frames,
                videos=f"sample {name}",
                data=data,
                minutes=n / 300,
            ),
        ]
    return stages


def build(s: Combinatorial, scale: str, seed: int = 0) -> Plan:
    """The Table 2 plan of settings ``s`` (``scale`` names them in the report)."""
    stages = _data(s, seed)
    if s.autoencoder:  # a latent model needs an autoencoder trained on scenes first
        stages.append(
            TrainAEStage(
                "autoencoder",
                preset=s.autoencoder,
                resolution_px=s.resolution_px,
                train=f"data train {TEMPLATE_SETS[-1]}",
                minutes=12 * 60,
                resources=s.gpu_resources,
            )
        )
    for model in s.models:
        for templates in TEMPLATE_SETS:
            stages += _runs(s, model, templates, seed)
    return Plan(
        name="combinatorial",
        title="combinatorial generalization on PHYRE-style scenes (Table 2)",
        scale=scale,
        note=s.note,
        stages=tuple(stages),
        tables=_tables(s),
        figures=_figures(s),
        animations=_animations(s),
    )


def plan(scale: str = "cpu", seed: int = 0) -> Plan:
    """Table 2 at ``scale`` (a name in `SCALES`)."""
    return build(scale_settings("combinatorial", SCALES, scale), scale, seed)

"""An experiment's report from its finished stages (the HTML itself: `eval.report`).

Content: the plan's verdict; tables of the per-frame velocity error e (the paper's Sec. 3.1
definition, monotone in failure: the verdicts' metric), of |mean parsed v - v| (the authors'
code metric, which the paper's Figure 3 numbers match) and of the abnormal rate, for each
method (parse floor, model, baselines) and group (ID, each OOD level), every cell with the
videos it stands on and, where some were not found, the tracked fraction; the plan's own
figures and an error plot per metric; for each showcase sample, side-by-side animations of the
best and worst ID/OOD cases by e and their parsed velocities over time (samples the metric does
not score drawn hollow); the stages with their times and commands; the training config; the
machine and library versions.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from phylaw.data.info import side_by_side
from phylaw.data.io.video import encode_gif
from phylaw.data.store import open_store
from phylaw.eval.metrics.physics import scored_samples
from phylaw.eval.parse import parse_videos
from phylaw.experiments.plan import Plan
from phylaw.experiments.report.html import (
    Report,
    error_figure,
    figure_png,
    headline_table,
    velocity_figure,
    write_report,
)
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render

__all__ = ["environment", "load_summaries", "showcase", "write_plan_report"]

PER_FRAME, MEAN_GAP = "velocity_error", "velocity_error_mean"
METRIC_TITLES = (
    (
        PER_FRAME,
        "velocity error e (paper Sec. 3.1: per frame pair over the generated frames; a ball "
        "not found once in both frames is charged |v| + 10), world units/s",
    ),
    (
        MEAN_GAP,
        "|mean parsed vx - true vx| (the authors' code metric vel_error, which the paper's "
        "Figure 3 numbers match), world units/s",
    ),
    ("abnormal", "abnormal rate (automatic plausibility flags)"),
)
TABLE_NOTE = (
    "Mean over videos [95% bootstrap interval] (n = videos the mean stands on, of the group's "
    "videos; 'tracked' = the share of ball-samples where the generated ball was found once, "
    "shown where below 99.5 %). The verdict uses e: it is the paper's definition and a model "
    "cannot lower it by losing a ball. The parse floor is the same metric on the ground-truth "
    "videos at the same resolution, frames and condition frames."
)


def load_summaries(plan: Plan, paths: dict[str, Path]) -> dict[str, dict[str, dict]]:
    """{method: {split: summary.json}} for the plan's `methods`."""
    return {
        label: {
            split: json.loads((paths[stage] / "summary.json").read_text())
            for split, stage in splits.items()
        }
        for label, splits in plan.methods.items()
    }


def _records(eval_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (eval_dir / "videos.jsonl").read_text().splitlines()]


def showcase(label: str, sample_dir: Path, eval_dir: Path, data_dir: Path, count: int = 2):
    """(animations [(caption, GIF)], velocity figure) of the ``count`` best and worst videos
    of a sample stage by e (among the videos e can score: the ground truth leaves a pair of
    frames in view)."""
    records = [r for r in _records(eval_dir) if r.get(PER_FRAME) is not None]
    if not records:
        return [], None
    records.sort(key=lambda r: r[PER_FRAME])
    count = min(count, len(records) // 2) or 1
    chosen = {"best": records[:count], "worst": records[-count:][::-1]}
    store = open_store(data_dir)
    with np.load(sample_dir / "videos.npz", allow_pickle=False) as z:
        index = z["index"]
        frames = z["frame_indices"]
        cond = int(z["cond_frames"]) if "cond_frames" in z else 3
        where = {int(v): k for k, v in enumerate(index.tolist())}
        wanted = [where[r["id"]] for rs in chosen.values() for r in rs]
        generated = z["videos"][wanted]
    ids = store.column("index")
    rows = np.array([int(np.flatnonzero(ids == index[k])[0]) for k in wanted])
    truth = store.trajectory(rows).at_frames(frames)
    grid = PixelGrid(generated.shape[3], generated.shape[2])
    truth_videos = render(truth.pos, truth.bodies, grid)
    colours = tuple(int(c) for c in np.asarray(truth.bodies.colour)[0])
    parsed = parse_videos(generated, colours, grid)
    valid, tracked, v = scored_samples(parsed, truth, store.scenario, cond)
    v_true = np.diff(truth.pos, axis=1) / np.diff(truth.times)[None, :, None, None]
    animations, cases, k = [], [], 0
    for which, rs in chosen.items():
        sl = slice(k, k + len(rs))
        errors = ", ".join(f"{r[PER_FRAME]:.3f}" for r in rs)
        animations.append(
            (
                f"{label}: {which} {len(rs)} by e ({errors} world units/s), "
                f"ids {', '.join(str(r['id']) for r in rs)}",
                encode_gif(side_by_side(truth_videos[sl], generated[sl], min_px=128), fps=5),
            )
        )
        for j, r in zip(range(sl.start, sl.stop), rs, strict=True):
            v_gen = np.diff(parsed.pos[j, :, 0, 0]) / np.diff(truth.times)
            title = f"{label} {which}: id {r['id']} ({r['level']}), e {r[PER_FRAME]:.3f}"
            cases.append(
                (title, truth.times, v_true[j, :, 0, 0], np.where(tracked[j, :, 0], v[j, :, 0, 0],
                 v_gen), valid[j], tracked[j, :, 0])
            )  # fmt: skip
        k = sl.stop
    return animations, velocity_figure(cases[:4], cond=cond)


def _placement_note(methods: dict[str, dict[str, dict]]) -> str:
    """' Placement kept ...' when the evaluation splits lost candidates to the placement rule
    (collision): the OOD levels then differ in size and in which cases they hold."""
    notes = []
    for split, summary in next(iter(methods.values())).items():
        drawn, kept = summary.get("level_candidates") or {}, summary.get("level_kept") or {}
        if any(kept.get(k, n) < n for k, n in drawn.items()):
            counts = ", ".join(f"{k} {kept[k]} of {n}" for k, n in drawn.items())
            notes.append(f"{split.upper()}: {counts}")
    if not notes:
        return ""
    return (
        " The placement rule kept, per level, " + "; ".join(notes) + " drawn candidates (most "
        "drops at high speed and radius; build with --oversample for equal levels, and see "
        "'phylaw data info' for which cases each level then favours)."
    )


def environment() -> str:
    """Machine and library versions, for the report's last section."""
    import torch

    import phylaw

    return "\n".join(
        [
            f"phylaw {getattr(phylaw, '__version__', '?')}, Python {sys.version.split()[0]}, "
            f"torch {torch.__version__}, numpy {np.__version__}",
            f"{platform.platform()}; {platform.processor() or platform.machine()}; "
            f"{os.cpu_count()} CPU cores; CUDA: "
            f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}",
        ]
    )


def _stage_table(plan: Plan, paths: dict[str, Path]) -> str:
    lines = []
    for s in plan.stages:
        done = paths[s.name] / "done.json"
        took = json.loads(done.read_text())["seconds"] if done.exists() else None
        state = f"{took / 60:6.1f} min" if took is not None else "   not done"
        lines.append(f"{state}  {s.name}  [{paths[s.name].name}]")
    return "\n".join(lines)


def write_plan_report(plan: Plan, out: Path, paths: dict[str, Path]) -> Path:
    """Build and write ``out/report.html`` for a finished plan; returns its path."""
    summaries = load_summaries(plan, paths)
    verdict, ok = plan.verdict(summaries) if plan.verdict else (plan.title, None)
    if plan.finding:
        verdict, ok = plan.finding(paths)
    report = Report(f"phylaw: {plan.title}", verdict, plan.note, ok=ok)
    by_scenario: dict[str, dict] = {}  # one set of tables per scenario: their levels differ
    for label, splits in summaries.items():
        scenario = next(iter(splits.values())).get("scenario", "")
        by_scenario.setdefault(scenario, {})[label] = splits
    for scenario, group in by_scenario.items():
        suffix = f" ({scenario})" if len(by_scenario) > 1 else ""
        first = len(report.tables)
        for metric, title in METRIC_TITLES:
            report.tables.append(headline_table(group, metric, title + suffix))
        report.tables[first].note = TABLE_NOTE + _placement_note(group)
        for metric, label in ((PER_FRAME, "e (world units/s)"), (MEAN_GAP, "|mean v - v|")):
            report.figures.append(
                (
                    f"{label} per group, log scale{suffix}",
                    figure_png(error_figure(group, metric, label)),
                )
            )
    if plan.tables:
        report.tables += plan.tables(paths)
    if plan.figures:
        report.figures += [(cap, figure_png(fig)) for cap, fig in plan.figures(paths)]
    if plan.animations:
        report.animations += plan.animations(paths)
    for label, sample, evaluation, data in plan.showcase:
        animations, fig = showcase(label, paths[sample], paths[evaluation], paths[data])
        report.animations += animations
        if fig is not None:
            report.figures.append((f"{label}: velocity over time, best and worst", figure_png(fig)))
    for s in plan.stages:
        if s.kind == "train" and (paths[s.name] / "config.json").exists():
            report.details.append(
                (f"training config ({s.name})", (paths[s.name] / "config.json").read_text())
            )
    report.details.append(
        ("stages (time taken, name, directory under stages/)", _stage_table(plan, paths))
    )
    report.details.append(("environment", environment()))
    path = out / "report.html"
    write_report(report, path)
    return path

"""Time to target on a CPU: train a scenario's preset from scratch and score it as it learns.

Builds the scenario's data into WORK (once), trains the preset with a quick evaluation every
`--eval-every` steps (EMA weights, the preset's sampler) and prints the curve: step, training
minutes (quick evaluations excluded), the metrics the scenario's target is about, and the first
step and minute where the target is met. Also printed: the CPU model and whether it has AMX or
avx512_bf16, the dtype `run.precision` resolved to, and the load average before and after.

    python benchmarks/bench_cpu_training.py --scenario uniform --minutes 15
    python benchmarks/bench_cpu_training.py --scenario collision --minutes 30
    python benchmarks/bench_cpu_training.py --scenario parabola --minutes 15
    python benchmarks/bench_cpu_training.py --scenario scenes --minutes 30
    python benchmarks/bench_cpu_training.py --run RUN --videos 128   # an existing run's checkpoints

Targets (issue 13; 2 cores, from scratch): uniform and parabola ID |mean v - v| <=
0.05 (uniform also OOD >= 5x ID) within 15 minutes; collision both balls tracked in >= 90 % of
ID videos and post-collision ID per-frame e <= 0.3 within 30 minutes, OOD >= 3x ID; scenes
in-template abnormal rate <= 50 % at 64 px within 30 minutes (0 % on the ground truth).

Scenes are scored by `SceneQuickEval` below: the preset's continuation of fixed in-template
videos, the abnormality flags (`eval.scene_flags`) on the generated clip and on the ground
truth at the same frames and size, and PSNR over the generated frames.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from phylaw.data.build import build_split
from phylaw.data.combinatorial import resolve_scene_split, scene_trajectory
from phylaw.data.spaces import resolve_split
from phylaw.data.views import render_batch
from phylaw.eval.flags.scenes import SCENE_FLAGS, scene_flag_matrix
from phylaw.eval.metrics.fidelity import frame_range_mean, psnr
from phylaw.experiments.quickeval import QuickEval
from phylaw.sample import load_run
from phylaw.train import train
from phylaw.train.checkpoint import latest_checkpoint, read_state
from phylaw.train.config import override
from phylaw.train.generate import Continuation
from phylaw.train.presets import get_preset

PRESETS = {
    "uniform": "cpu-uniform",
    "collision": "cpu-collision",
    "parabola": "cpu-parabola",
    "scenes": "cpu-scenes",
}
# split -> size; scenes: (split, templates, size per template)
DATA = {
    "ball": {"train": "30K", "eval-id": "256", "eval-ood": "384"},
    "scenes": {
        "train": ("train", "60", "100"),
        "eval-id": ("eval-in-template", "60", "2"),
        "eval-ood": ("eval-out-of-template", None, "10"),
    },
}


def target_met(scenario: str, row: dict) -> bool:
    """Whether the quick-evaluation scores `row` ('eval/...' keys) meet the issue's target."""
    g = row.get
    if scenario == "scenes":
        return g("eval/id/abnormal", 1.0) <= 0.5
    if scenario == "collision":
        return (
            g("eval/id/all_tracked", 0.0) >= 0.9
            and g("eval/id/velocity_error", 9.9) <= 0.3
            and g("eval/ood/velocity_error", 0.0) >= 3 * g("eval/id/velocity_error", 9.9)
        )
    ok = g("eval/id/velocity_error_mean", 9.9) <= 0.05
    return ok and (scenario != "uniform" or g("eval/ood_over_id_mean", 0.0) >= 5)


# ----------------------------------------------------------------------------------------------
# Evaluators: each returns {name: value} and counts the seconds it took
# ----------------------------------------------------------------------------------------------


class Timed:
    """Wraps an evaluator; adds 'eval_s', the seconds spent in evaluations so far."""

    def __init__(self, evaluator) -> None:
        self.evaluator, self.seconds = evaluator, 0.0

    def __call__(self, continuation, step: int) -> dict[str, float]:
        t0 = time.perf_counter()
        out = self.evaluator(continuation, step)
        self.seconds += time.perf_counter() - t0
        return {**out, "eval_s": self.seconds}


class BallQuickEval(QuickEval):
    """`QuickEval`'s numbers plus, per split, 'scored' (the share of videos the ground truth
    lets it score), 'all_tracked' (of those, the share whose every generated ball is found once
    in every scored frame pair: the collision target's "both balls tracked") and
    'ood_over_id_mean' (OOD / ID on |mean v - v|, the uniform target's metric)."""

    def __call__(self, continuation, step: int) -> dict[str, float]:
        out = {}
        for name, m in self.split_metrics(continuation).items():
            for key in ("velocity_error_mean", "velocity_error"):
                v = m[key][np.isfinite(m[key])]
                out[f"{name}/{key}"] = float(v.mean()) if v.size else float("nan")
            n = m["n_velocity_samples"].astype(np.float64)
            tf = np.nan_to_num(m["tracked_fraction"])
            scorable = n > 0
            out[f"{name}/tracked"] = float((tf * n).sum() / n.sum()) if n.sum() else np.nan
            out[f"{name}/scored"] = float(scorable.mean())
            out[f"{name}/all_tracked"] = float((tf[scorable] >= 1.0).mean())
        if "id/velocity_error" in out and "ood/velocity_error" in out:
            out["ood_over_id"] = out["ood/velocity_error"] / out["id/velocity_error"]
            mean_gap = out["ood/velocity_error_mean"] / out["id/velocity_error_mean"]
            out["ood_over_id_mean"] = mean_gap
        return out


class SceneQuickEval(QuickEval):
    """Abnormal rate (any scene flag) and PSNR of continuations of fixed videos per split."""

    def __init__(self, cfg, videos: int) -> None:
        super().__init__(cfg, videos)  # the splits' stores and evenly spread rows
        c = cfg.diffusion.cond_frames
        for name, (store, rows) in self.splits.items():
            truth = render_batch(store, store.get(rows), self.grid)
            start = scene_trajectory(store, rows)
            floor = scene_flag_matrix(truth[:, self.frames], start, num_cond_frames=c)
            self.splits[name] = (store, rows, truth, start, float(floor.any(1).mean()))

    def __call__(self, continuation, step: int) -> dict[str, float]:
        out, c = {}, self.cfg.diffusion.cond_frames
        for name, (store, rows, truth, start, floor) in self.splits.items():
            generated = continuation(truth, seeds=store.get(rows).index)
            flags = scene_flag_matrix(generated, start, num_cond_frames=c)
            out[f"{name}/abnormal"] = float(flags.any(1).mean())
            for k, flag in enumerate(SCENE_FLAGS):
                out[f"{name}/flag_{flag}"] = float(flags[:, k].mean())
            out[f"{name}/abnormal_floor"] = floor
            out[f"{name}/psnr"] = float(
                frame_range_mean(psnr(generated, truth[:, self.frames]), c).mean()
            )
        return out


# ----------------------------------------------------------------------------------------------
# Data, machine, curve
# ----------------------------------------------------------------------------------------------


def build_data(scenario: str, work: Path) -> dict[str, str]:
    """The scenario's train / eval-id / eval-ood splits under WORK (built once)."""
    roots = {}
    for key, spec in DATA["scenes" if scenario == "scenes" else "ball"].items():
        if scenario == "scenes":
            split, templates, size = spec
            root = work / f"scenes-{key}"
            resolved = resolve_scene_split(split, size, 0, templates)
        else:
            root = work / f"{scenario}-{key}"
            resolved = resolve_split(scenario, key, spec, 0)
        if not (root / "manifest.json").exists():
            build_split(resolved, root, workers=2, progress=False)
        roots[key] = str(root)
    return roots


def machine() -> str:
    """CPU model, bf16 hardware, cores and the load average."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), "?"
    )
    flags = next((ln for ln in info.splitlines() if ln.startswith("flags")), "")
    hw = [f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f" {f}" in flags]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{name}, {os.cpu_count()} cores, {'/'.join(hw) or 'no AVX2'}; load {load}"


def curve_rows(run: Path) -> list[dict]:
    """One row per quick evaluation: step, training minutes (evaluations excluded), scores."""
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln]
    out, eval_before, elapsed = [], 0.0, float("nan")
    for r in rows:
        elapsed = r.get("elapsed_s", elapsed)  # the last logged before this evaluation
        if "eval/eval_s" not in r:
            continue
        minutes = (elapsed - eval_before) / 60
        eval_before = r["eval/eval_s"]
        out.append({"train_min": minutes, **r})
    return out


def print_curve(scenario: str, rows: list[dict]) -> None:
    if scenario == "scenes":
        cols = [("in abnormal", "eval/id/abnormal"), ("in PSNR", "eval/id/psnr"),
                ("out abnormal", "eval/ood/abnormal"), ("out PSNR", "eval/ood/psnr")]  # fmt: skip
    else:
        cols = [("ID mean-v", "eval/id/velocity_error_mean"),
                ("ID e", "eval/id/velocity_error"),
                ("OOD mean-v", "eval/ood/velocity_error_mean"),
                ("OOD e", "eval/ood/velocity_error"),
                ("scored ID / OOD", None), ("all tracked ID", "eval/id/all_tracked"),
                ("OOD / ID mean-v", "eval/ood_over_id_mean"),
                ("OOD / ID e", "eval/ood_over_id")]  # fmt: skip
    print("| step | train min | " + " | ".join(c for c, _ in cols) + " | target |")
    print("|---" * (len(cols) + 3) + "|")
    first = None
    for r in rows:
        cells = []
        for _, key in cols:
            if key is None:
                scored = (r.get(f"eval/{k}/scored", np.nan) for k in ("id", "ood"))
                cells.append(" / ".join(f"{x:.2f}" for x in scored))
            else:
                cells.append(f"{r.get(key, np.nan):.3f}")
        met = target_met(scenario, r)
        if met and first is None:
            first = r
        print(
            f"| {r['step']} | {r['train_min']:.1f} | "
            + " | ".join(cells)
            + f" | {'met' if met else ''} |"
        )
    if first is None:
        print("target not met")
    else:
        print(
            f"target first met at step {first['step']}, {first['train_min']:.1f} training minutes"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", choices=list(PRESETS), default="uniform")
    ap.add_argument("--preset", default=None, help="default: the scenario's cpu preset")
    ap.add_argument("--work", type=Path, default=Path("/tmp/phylaw-cpu-train"))
    ap.add_argument("--name", default=None, help="run directory name under WORK")
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget (run.max_minutes)")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--videos", type=int, default=64, help="videos per split and evaluation")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--run", type=Path, help="instead: score an existing run's checkpoints")
    args = ap.parse_args()
    print(f"machine: {machine()}", flush=True)
    if args.run:
        return score_checkpoints(args.run, args.videos)
    scenario = args.scenario
    roots = build_data(scenario, args.work)
    run = args.work / (args.name or f"run-{scenario}")
    cfg = override(
        get_preset(args.preset or PRESETS[scenario]),
        [f"data.train={roots['train']}", f"data.eval_id={roots['eval-id']}",
         f"data.eval_ood={roots['eval-ood']}", f"run.max_minutes={args.minutes}",
         f"run.eval_every={args.eval_every}", f"run.eval_videos={args.videos}",
         "run.sample_every=0", *args.set],
    )  # fmt: skip
    evaluator = SceneQuickEval(cfg, args.videos) if scenario == "scenes" else BallQuickEval(cfg)
    t0 = time.perf_counter()
    result = train(cfg, run, evaluator=Timed(evaluator), progress=False)
    wall = time.perf_counter() - t0
    state = read_state(latest_checkpoint(run))
    print(
        f"\n{scenario}: preset {cfg.preset}, {result.step} steps, wall {wall / 60:.1f} min "
        f"(quick evaluations included), precision {state['extra'].get('precision')}; "
        f"machine after: {machine()}\n"
    )
    print_curve(scenario, curve_rows(run))


def score_checkpoints(run: Path, videos: int) -> None:
    """The ball scenarios' curve over an existing run's checkpoints (EMA weights)."""
    for ckpt in sorted((run / "checkpoints").glob("step_*")):
        cfg, model, _, step = load_run(ckpt)
        minutes = read_state(ckpt)["extra"].get("elapsed_s", float("nan")) / 60
        scores = BallQuickEval(replace(cfg), videos)(Continuation(model, cfg, batch_size=32), step)
        print(
            f"step {step} ({minutes:.1f} min): "
            + ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
        )


if __name__ == "__main__":
    main()

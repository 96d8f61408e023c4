"""The CPU training curve: ID and OOD velocity errors of a run's checkpoints over training time.

For every checkpoint of a run (EMA weights), continues fixed ID and OOD evaluation videos with
the run's sampler (`experiments.quickeval.QuickEval`: videos spread evenly over each split, so every
OOD level is sampled) and prints, per checkpoint: step, training minutes (from the checkpoint's
state, excluding this evaluation), |mean parsed vx - true vx| (the authors' metric) and e,
ID and OOD, the tracked share of ball-samples, and OOD / ID (on e).

    # evaluate an existing run (its data.eval_id / data.eval_ood, or --eval-id/--eval-ood)
    python benchmarks/bench_cpu_training.py --run runs/u --videos 128

    # or train from scratch first: uniform 30K + eval splits into WORK, the preset for M minutes
    python benchmarks/bench_cpu_training.py --train --work /tmp/cpu-train --minutes 60
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from phylaw.data.build import build_split
from phylaw.data.spaces import resolve_split
from phylaw.experiments.quickeval import QuickEval, quick_evaluator
from phylaw.sample import load_run
from phylaw.train import train
from phylaw.train.checkpoint import read_state
from phylaw.train.config import override
from phylaw.train.generate import Continuation
from phylaw.train.presets import get_preset


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("step_*"))


def curve(run: Path, videos: int, eval_id: str | None, eval_ood: str | None) -> list[dict]:
    rows = []
    for ckpt in checkpoints(run):
        cfg, model, _, step = load_run(ckpt)
        data = replace(
            cfg.data, eval_id=eval_id or cfg.data.eval_id, eval_ood=eval_ood or cfg.data.eval_ood
        )
        cfg = replace(cfg, data=data)
        minutes = read_state(ckpt)["extra"].get("elapsed_s", float("nan")) / 60
        t0 = time.perf_counter()
        scores = QuickEval(cfg, videos)(Continuation(model, cfg, batch_size=32), step)
        rows.append({"step": step, "minutes": minutes, **scores})
        print(
            f"| {step} | {minutes:.1f} | {scores['id/velocity_error_mean']:.3f} | "
            f"{scores['id/velocity_error']:.3f} | {scores['ood/velocity_error_mean']:.3f} | "
            f"{scores['ood/velocity_error']:.3f} | {scores['id/tracked']:.2f} / "
            f"{scores['ood/tracked']:.2f} | {scores['ood_over_id']:.1f}x | "
            f"{time.perf_counter() - t0:.0f} s |",
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, help="an existing run directory")
    ap.add_argument("--train", action="store_true", help="train the preset first (into WORK)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/phylaw-cpu-train"))
    ap.add_argument("--preset", default="cpu-uniform")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--videos", type=int, default=128, help="videos per split and checkpoint")
    ap.add_argument("--eval-id", default=None)
    ap.add_argument("--eval-ood", default=None)
    ap.add_argument("--out", type=Path, default=None, help="also write the curve as JSON")
    args = ap.parse_args()
    run = args.run
    if args.train:
        splits = {}
        for split, size in (("train", "30K"), ("eval-id", "256"), ("eval-ood", "384")):
            spec = resolve_split("uniform", split, size, 0)
            splits[split] = build_split(spec, args.work / f"uniform-{split}", progress=False).root
        run = args.work / "run"
        sets = [
            f"data.train={splits['train']}",
            f"data.eval_id={splits['eval-id']}",
            f"data.eval_ood={splits['eval-ood']}",
            f"run.max_minutes={args.minutes}",
            *args.set,
        ]
        cfg = override(get_preset(args.preset), sets)
        train(cfg, run, evaluator=quick_evaluator(cfg))
    if run is None:
        ap.error("give --run DIR or --train")
    print(
        "| step | train min | ID mean-v | ID e | OOD mean-v | OOD e | tracked ID / OOD "
        "| OOD / ID | eval time |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = curve(run, args.videos, args.eval_id, args.eval_ood)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

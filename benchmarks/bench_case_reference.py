"""The case-based reference of the Sec. 5 experiments, without any model: what the nearest-case
baseline (the training video with the closest condition frames, its continuation pasted) does
in every study, measured like a model from pixels.

Runs the data and nearest-case stages of the three study experiments at the CPU scale (the
studies' 200K/300K training splits, the CPU grids, the CPU preset's clip: 8 frames every 4th of
32 px, 3 given) and prints the experiments' own tables, whose model columns stay empty: the
interpolation slope in each gap, the reversed share with and without mirrored cases (Set-2's
reference), and the attribute outcomes and the priority order that pixel distance alone gives
(the paper's A.6.2 explanation of its order).

Usage: python benchmarks/bench_case_reference.py [--out DIR] [--experiments NAME ...]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from phylaw.experiments import get_plan
from phylaw.experiments.runner import plan_paths, run_plan

NAMES = ("interpolation-gap", "flip-memorization", "attribute-priority")


def reference_only(name: str):
    """The experiment's CPU plan with only its data and nearest-case stages."""
    plan = get_plan(name, "cpu")
    keep = tuple(s for s in plan.stages if s.name.startswith("data ") or "nearest-case" in s.name)
    return replace(plan, stages=keep, finding=None, showcase=())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("bench-case-reference"))
    ap.add_argument("--experiments", nargs="+", default=list(NAMES))
    args = ap.parse_args()
    for name in args.experiments:
        plan = reference_only(name)
        t0 = time.perf_counter()
        run_plan(plan, args.out / name, progress=False, report=False)
        paths = plan_paths(plan, args.out / name)
        print(f"## {name}: {len(plan.stages)} stages in {time.perf_counter() - t0:.0f} s\n")
        for table in plan.tables(paths):
            print(f"### {table.title}\n")
            print("| " + " | ".join(table.header) + " |")
            print("|" + "---|" * len(table.header))
            for row in table.rows:
                print("| " + " | ".join(row) + " |")
            print()


if __name__ == "__main__":
    main()

"""``phylaw quickstart`` and ``phylaw experiment list|show|run``."""

from __future__ import annotations

from pathlib import Path

from phylaw import PhylawError
from phylaw.commands import add_command


def _positive_minutes(minutes: float | None, default: float) -> float:
    if minutes is None:
        return default
    if not minutes > 0 or minutes != minutes:
        raise PhylawError(f"invalid --minutes {minutes}: give a positive number such as 30")
    return float(minutes)


def _quickstart(args) -> None:
    from phylaw.experiments.quickstart import DEFAULT_MINUTES, plan
    from phylaw.experiments.runner import describe, run_plan

    p = plan(_positive_minutes(args.minutes, DEFAULT_MINUTES), seed=args.seed)
    if args.dry_run:
        print(describe(p, args.out))
        return
    print(f"phylaw quickstart into {args.out}: about {p.minutes:.0f} minutes in all")
    run_plan(p, args.out)


EXECUTORS = {
    "local": "every stage in this process, one after the other (default)",
    "slurm": "every stage a Slurm job, through submitit, with its dependencies",
    "submitit-local": "the Slurm jobs as local processes (submitit's local executor)",
}


def _experiment(args) -> None:
    from phylaw.experiments import EXPERIMENTS, get_plan
    from phylaw.experiments.runner import describe, run_plan

    if args.action == "list":
        for name, (_, text) in EXPERIMENTS.items():
            print(f"{name:<20} {text}")
        return
    if not args.name:
        raise PhylawError(f"'experiment {args.action}' needs an experiment NAME (see 'list')")
    if args.executor not in EXECUTORS:
        raise PhylawError(
            f"unknown executor {args.executor!r}; choose one of: {', '.join(EXECUTORS)}"
        )
    p = get_plan(args.name, args.scale)
    out = args.out or Path("phylaw-experiments") / f"{args.name}-{args.scale}"
    if args.executor == "local" and (args.partition or args.account):
        raise PhylawError("--partition and --account apply to --executor slurm")
    if args.executor != "local":
        _cluster(args, p, out)
    elif args.action == "show" or args.dry_run:
        print(describe(p, out))
    else:
        run_plan(p, out)


def _cluster(args, p, out: Path) -> None:
    from phylaw.experiments.cluster import format_jobs, plan_jobs
    from phylaw.experiments.submit import submit_plan

    if args.action == "show" or args.dry_run:
        print(format_jobs(p, plan_jobs(p, out, args.partition or ""), args.executor, out))
        return
    ids = submit_plan(p, out, args.executor, args.partition or "", args.account or "")
    if args.executor == "slurm":
        print(
            f"{len(ids)} jobs queued for {p.name}; follow them with 'squeue -u $USER', logs in "
            f"{out / 'jobs'}. When they are done the report is {out / 'report.html'}; run the "
            "same command again to resubmit what failed (finished stages are kept)."
        )
    else:
        print(f"report: {out / 'report.html'}")


def register(sub) -> None:
    """Add ``quickstart`` and ``experiment``."""
    _register_quickstart(sub)
    _register_experiment(sub)


def _register_quickstart(sub) -> None:
    q = add_command(
        sub,
        "quickstart",
        "the main job on a laptop: data, a small model, evaluation, report",
        "  phylaw quickstart                       # ~10 min on 2 cores, into ./phylaw-quickstart\n"
        "  phylaw quickstart --out qs --minutes 8   # a shorter training budget\n"
        "  phylaw quickstart --dry-run              # the stages and their commands\n\n"
        "Builds uniform-motion data, trains the cpu-uniform preset (5,000 steps, at most\n"
        "--minutes), continues the ID and OOD evaluation videos, scores them from pixels\n"
        "beside the parse floor and three baselines, and writes OUT/report.html. Re-run the\n"
        "same command to resume: a finished stage is never repeated, Ctrl-C keeps what was done.",
        _quickstart,
    )
    q.add_argument(
        "--out",
        type=Path,
        default=Path("phylaw-quickstart"),
        help="working directory (default: ./phylaw-quickstart); re-run to resume",
    )
    q.add_argument("--minutes", type=float, default=None, help="training time cap (default: 25)")
    q.add_argument("--seed", type=int, default=0, help="data and training seed (default: 0)")
    q.add_argument("--dry-run", action="store_true", help="print the plan and exit")


def _register_experiment(sub) -> None:
    e = add_command(
        sub,
        "experiment",
        "run the paper's experiments as resumable plans, with a report each",
        "  phylaw experiment list\n"
        "  phylaw experiment show scaling --scale paper     # the plan and launch commands\n"
        "  phylaw experiment run scaling --scale cpu        # ~2.5 h on 2 cores\n"
        "  phylaw experiment run autoencoder-recon --out runs/table3\n"
        "  phylaw experiment run combinatorial --scale paper --executor slurm --dry-run\n"
        "  phylaw experiment run combinatorial --scale paper --executor slurm \\\n"
        "      --partition gpu --account myproject --out /shared/phylaw/table2\n\n"
        "Each stage's directory is named by a hash of its settings and inputs (OUT/stages/KEY);\n"
        "finished stages are skipped, so the same command resumes. At --scale paper the plan\n"
        "is the paper's (DiT-S/B/L, 30K/300K/3M, batch 256, 100K steps). --executor slurm\n"
        "submits every unfinished stage as a Slurm job (submitit) that starts once the jobs\n"
        "of its inputs succeed: training on the plan's nodes and GPUs, one rank per GPU; large\n"
        "splits as arrays of shard ranges. OUT must be on a file system the nodes share.\n"
        "--dry-run prints the jobs (with slurm) or the stages and their commands (local).",
        _experiment,
    )
    e.add_argument("action", choices=["list", "show", "run"], help="what to do")
    e.add_argument("name", nargs="?", default=None, help="experiment name (see 'list')")
    e.add_argument("--scale", default="cpu", help="cpu (a 2-core laptop, default) or paper")
    e.add_argument(
        "--out", type=Path, default=None, help="directory (default: phylaw-experiments/NAME-SCALE)"
    )
    e.add_argument(
        "--executor",
        default="local",
        metavar="NAME",
        help="where stages run: " + "; ".join(f"{k}: {v}" for k, v in EXECUTORS.items()),
    )
    e.add_argument("--partition", default=None, help="Slurm partition of stages naming none")
    e.add_argument("--account", default=None, help="Slurm account to charge")
    e.add_argument("--dry-run", action="store_true", help="with run: print the plan or jobs only")

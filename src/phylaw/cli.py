"""The ``phylaw`` console script: one subcommand per user action (``phylaw.commands``).

User mistakes raise ``PhylawError``; ``main`` prints them as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import gc
import sys

from phylaw import PhylawError, __version__
from phylaw.commands import EXIT_USER_ERROR, Parser, formatter
from phylaw.commands import autoencoder as ae_commands
from phylaw.commands import data as data_commands
from phylaw.commands import evaluate as eval_commands
from phylaw.commands import experiment as experiment_commands
from phylaw.commands import studies as studies_commands
from phylaw.commands import train as train_commands

EXIT_INTERRUPTED = 130
MODULES = (
    experiment_commands,
    data_commands,
    train_commands,
    ae_commands,
    eval_commands,
    studies_commands,
)
OWNER = {  # top-level command -> the module that registers it
    "quickstart": experiment_commands,
    "experiment": experiment_commands,
    "data": data_commands,
    "train": train_commands,
    "sample": train_commands,
    "train-ae": ae_commands,
    "eval": eval_commands,
    "baseline": eval_commands,
    "outcomes": studies_commands,
    "case-match": studies_commands,
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``phylaw`` argument parser. With ``argv`` naming a command, only that command's
    module is registered: building the training commands' help imports torch (seconds), which
    ``phylaw eval`` or ``phylaw data`` should not pay for."""
    parser = Parser(
        prog="phylaw",
        description="phylaw: does a video generation model learn physical laws from pixels, or "
        "copy the closest training case? Simulate, render, train, sample and evaluate.",
        epilog="examples:\n  phylaw quickstart\n  phylaw data build --scenario uniform "
        "--split train --size 30K --out data/u-train\n\nRun 'phylaw COMMAND --help' for more.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"phylaw {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    wanted = argv[0] if argv and not argv[0].startswith("-") else None
    for module in (OWNER[wanted],) if wanted in OWNER else MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``phylaw`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        args.handler(args)
    except PhylawError as e:
        print(f"phylaw: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("phylaw: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:
        print(f"phylaw: error: {e.strerror or e} ({e.filename or 'I/O'})", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def run() -> None:
    """The console script: ``main``, then exit without a last garbage collection over the
    objects left (numba's compiled kernels make it 0.1 s; the OS frees them anyway)."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()

"""The subcommands of the ``phylaw`` console script, one module per area.

Each module has ``register(subparsers)``; ``phylaw.cli`` builds the parser from them. Handlers
parse flags, build a config and call one library function; user mistakes raise ``PhylawError``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

EXIT_USER_ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors that point at --help."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def formatter(prog):
    """Keep the examples' line breaks in --help."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def add_command(
    subparsers, name: str, help: str, examples: str, handler: Callable | None = None
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` whose --help ends with ``examples`` (and run ``handler``)."""
    p = subparsers.add_parser(
        name,
        help=help,
        description=help,
        epilog="examples:\n" + examples,
        formatter_class=formatter,
    )
    if handler is not None:
        p.set_defaults(handler=handler)
    return p

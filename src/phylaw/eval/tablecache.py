"""Colour lookup tables kept on disk: built once per machine, then memory-mapped.

The parser's tables (`parse.membership_tables`, `flags.balls.foreign_table`) hold one entry per
24-bit colour (16-32 MB each) and take 0.1-0.2 s apiece to build, a tenth of a whole
`phylaw eval` of a few thousand videos. `cached_table` stores each as a `.npy` file named by a
hash of its arguments and of the source code of the function that builds it (a changed rule
never reads a stale table), written atomically, and opens it read-only as a memory map: only
the pages a video touches are read, and processes forked after it share them.

Where: `$PHYLAW_CACHE`, else `$XDG_CACHE_HOME/phylaw`, else `~/.cache/phylaw`, under
`tables/`; `PHYLAW_CACHE=off` (or a folder that cannot be written) builds in memory every time.
A file that cannot be read as the expected array is rebuilt and replaced.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["cache_root", "cached_table"]


def cache_root() -> Path | None:
    """The folder tables are kept in, or None when caching is off."""
    env = os.environ.get("PHYLAW_CACHE")
    if env == "off":
        return None
    if env:
        return Path(env) / "tables"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "phylaw" / "tables"


def _name(build: Callable[..., np.ndarray], args: tuple) -> str:
    source = inspect.getsource(build)
    digest = hashlib.sha256(repr((build.__qualname__, source, args)).encode()).hexdigest()
    return f"{build.__name__.lstrip('_')}-{digest[:20]}.npy"


def cached_table(
    build: Callable[..., np.ndarray], *args, shape: tuple[int, ...], dtype
) -> np.ndarray:
    """``build(*args)``, read from the cache when it holds it (a read-only memory map), else
    built and stored. ``shape`` and ``dtype``: what the table must be (a file that is not is
    rebuilt)."""
    root = cache_root()
    if root is None:
        return build(*args)
    try:
        path = root / _name(build, args)
    except (OSError, TypeError):  # no source to hash (a frozen install): no cache
        return build(*args)
    try:
        table = np.load(path, mmap_mode="r")
        if table.shape == shape and table.dtype == np.dtype(dtype):
            return table
    except (OSError, ValueError, EOFError):
        pass  # absent, truncated or not an array: rebuild below
    table = build(*args)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, table)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        return table  # a cache that cannot be written: the table still works
    return np.load(path, mmap_mode="r")

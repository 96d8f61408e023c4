"""phylaw: does a video generation model learn physical laws, or copy the closest training case?

Layers (see README): ``physics`` (exact trajectories) -> ``render`` (pixels) -> ``data`` (splits,
shards, datasets) -> ``eval`` (parse pixels, score physics). Each stage is a function of typed
records; no stage imports a later one.
"""

__version__ = "0.1.0"


class PhylawError(Exception):
    """A user-facing error: the CLI prints its message as one line and exits non-zero."""

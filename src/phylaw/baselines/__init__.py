"""Baselines: video producers scored like a model (``phylaw baseline NAME``).

``oracle`` (the ground truth: its score is the parse floor), ``copy-last`` (the last condition
frame frozen), ``constant-velocity`` (objects parsed from the condition frames and extrapolated)
and ``nearest-case`` (the training video whose condition frames are closest in pixels, its
continuation pasted: the paper's case-based hypothesis as an explicit model).
"""

from phylaw.baselines.producers import (
    BASELINES,
    BaselineContext,
    Cases,
    get_baseline,
    nearest_cases,
    nearest_rows,
    write_baseline,
    write_videos,
)

__all__ = [
    "BASELINES",
    "BaselineContext",
    "Cases",
    "get_baseline",
    "nearest_cases",
    "nearest_rows",
    "write_baseline",
    "write_videos",
]

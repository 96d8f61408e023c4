"""``phylaw quickstart``: the main job, from nothing to a result on a 2-core laptop.

Stages (each skipped when already finished, so re-running resumes):
  1. data: uniform-motion training split (30K) and the ID and OOD evaluation splits;
  2. preview: a gif of training, ID and OOD videos.
Still to come (tracked in the project's issues): training the CPU model preset, sampling ID and
OOD continuations, evaluation against the parse floor and baselines, and the HTML report.
"""

from __future__ import annotations

from pathlib import Path

from phylaw.data.build import build_split
from phylaw.data.info import preview
from phylaw.data.spaces import resolve_split

SPLITS = (("train", "30K"), ("eval-id", None), ("eval-ood", None))


def quickstart(out: str | Path, minutes: float | None = None, seed: int = 0) -> Path:
    """Run the stages that exist today into ``out``; returns the output directory."""
    out = Path(out)
    stores = {}
    for i, (split, size) in enumerate(SPLITS, 1):
        print(f"[{i}/{len(SPLITS) + 1}] data: uniform {split}")
        stores[split] = build_split(
            resolve_split("uniform", split, size, seed), out / "data" / f"uniform-{split}"
        )
    print(f"[{len(SPLITS) + 1}/{len(SPLITS) + 1}] preview")
    for split, store in stores.items():
        path = preview(store.root, out / f"preview-{split}.gif", count=8)
        print(f"  {path}")
    print(
        "\nphylaw quickstart: data and previews are ready in "
        f"{out}.\nNot yet available in this version: training the CPU model, sampling, "
        "evaluation against the parse floor and baselines, and the report"
        + (f" (--minutes {minutes} has no effect yet)." if minutes else ".")
    )
    return out

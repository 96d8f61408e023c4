"""Splits of the combinatorial scenario: templates x tasks x trials (paper Sec. 4.1).

A scene is ``(template, task, trial)``: the template names its four object kinds, the task (0-99,
PHYRE's 100 tasks per template) its layout, the trial its red ball (reference 3.2, 3.4).
Splits (``SPLITS``), as in the authors' data:

* ``train``: trials 0-989 of every task of the chosen training templates;
* ``eval-in-template``: trials 990-999 of the same tasks (the authors' in-template videos are
  trial 990, the default one per task);
* ``eval-out-of-template``: the ten held-out templates 10060-10069 (the authors: trial 0 of every
  task, 1,000 videos).

``--templates``: ``6``, ``30``, ``60`` (``physics.scenes.templates.SUBSETS``) or a list of ids;
the held-out templates belong to ``eval-out-of-template`` only. ``--size`` counts videos *per
template*: video k of a template is task ``k % 100``, trial ``first_trial + k // 100``, so small
sets spread over all tasks first. The paper's 100K per template is ``99K`` here (990 trials x
100 tasks; the other 10 trials per task are the in-template evaluation set), 6M for 60 templates.

A scene depends only on ``(seed, template, task, trial)``, never on the split: build train and
evaluation splits with the same ``--seed`` so that in-template evaluation shares the training
tasks' layouts. States are stored (``store``), pixels rendered on the fly (``render_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phylaw import PhylawError
from phylaw.data.spaces import parse_count
from phylaw.physics.scenes.kinds import KIND_NAMES, NUM_DIMS, scene_record
from phylaw.physics.scenes.simulate import (
    FRAME_DT_S,
    MAX_BODIES,
    scene_frame_times,
    simulate_scenes,
)
from phylaw.physics.scenes.templates import TASKS_PER_TEMPLATE, parse_templates
from phylaw.physics.state import NUM_FRAMES, WORLD_SIZE, SceneTrajectory

SCENARIO = "combinatorial"
PARAM_NAMES = ("template", "task", "trial")
SHARD_SIZE = 1000  # scenes per shard: ~15 s of simulation, the unit of resuming


@dataclass(frozen=True)
class TrialRange:
    """Trials a split draws from: ``first``, ``first + 1``, ..., ``first + count - 1``."""

    first: int
    count: int
    default_per_template: int


SPLITS: dict[str, TrialRange] = {
    "train": TrialRange(0, 990, 99_000),
    "eval-in-template": TrialRange(990, 10, TASKS_PER_TEMPLATE),
    "eval-out-of-template": TrialRange(0, 1000, TASKS_PER_TEMPLATE),
}
ARRAYS = ("index", "params", "pos0", "pos", "level", "angle0", "angle", "kind", "dims")


@dataclass(frozen=True)
class SceneSplitSpec:
    """A resolved combinatorial split (what to generate, independent of workers and shards).

    ``per_template`` videos of each template in ``templates``; ``count`` all of them.
    """

    scenario: str
    split: str
    size: str
    count: int
    seed: int
    templates: tuple[int, ...]
    per_template: int

    @property
    def level_names(self) -> tuple[str, ...]:
        """One level per template: a video's ``level`` is its template's position."""
        return tuple(str(t) for t in self.templates)

    @property
    def param_names(self) -> tuple[str, ...]:
        return PARAM_NAMES


def resolve_scene_split(
    split: str, size: str | int | None, seed: int, templates: str | None = None
) -> SceneSplitSpec:
    """Validate user input and resolve it (one clear ``PhylawError`` per mistake)."""
    if split not in SPLITS:
        raise PhylawError(
            f"unknown split {split!r} for the combinatorial scenario; choose one of: "
            f"{', '.join(SPLITS)}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PhylawError(f"invalid seed {seed!r}: give a non-negative integer")
    ids = parse_templates(templates, held_out=split == "eval-out-of-template")
    trials = SPLITS[split]
    per = trials.default_per_template if size in (None, "default") else parse_count(size)
    most = trials.count * TASKS_PER_TEMPLATE
    if per > most:
        raise PhylawError(
            f"--size {per} per template is more than the {most} {split} videos of a template "
            f"({trials.count} trials x {TASKS_PER_TEMPLATE} tasks); give at most {most}"
        )
    return SceneSplitSpec(SCENARIO, split, str(per), per * len(ids), seed, ids, per)


def scene_ids(spec: SceneSplitSpec, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """``(template, task, trial)`` [n, 3] int64 and level codes [n] int8 of candidates
    ``start..stop-1``."""
    index = np.arange(start, stop, dtype=np.int64)
    level, k = np.divmod(index, spec.per_template)
    ids = np.stack(
        [
            np.asarray(spec.templates, dtype=np.int64)[level],
            k % TASKS_PER_TEMPLATE,
            SPLITS[spec.split].first + k // TASKS_PER_TEMPLATE,
        ],
        axis=-1,
    )
    return ids, level.astype(np.int8)


def simulate_scene_range(spec: SceneSplitSpec, start: int, stop: int) -> dict[str, np.ndarray]:
    """States of the valid candidates in ``start..stop-1`` (the arrays of ``ARRAYS``)."""
    ids, level = scene_ids(spec, start, stop)
    arrays, valid = simulate_scenes(ids, spec.seed, NUM_FRAMES, MAX_BODIES)
    out = {
        "index": np.arange(start, stop, dtype=np.int64),
        "params": ids.astype(np.float64),
        "pos0": arrays["pos0"],
        "pos": arrays["pos"].astype(np.float32),
        "level": level,
        "angle0": arrays["angle0"],
        "angle": arrays["angle"].astype(np.float32),
        "kind": arrays["kind"],
        "dims": arrays["dims"].astype(np.float32),
    }
    return {key: value[valid] for key, value in out.items()}


def manifest_fields(spec: SceneSplitSpec) -> dict:
    """Manifest entries specific to combinatorial splits (timing, body table, arrays)."""
    return {
        "param_names": list(PARAM_NAMES),
        "num_frames": NUM_FRAMES,
        "frame_dt_s": FRAME_DT_S,
        "frame_times_s": scene_frame_times(NUM_FRAMES).tolist(),
        "world_size": WORLD_SIZE,
        "templates": list(spec.templates),
        "per_template": spec.per_template,
        "trials": {"first": SPLITS[spec.split].first, "count": SPLITS[spec.split].count},
        "bodies": {
            "max_bodies": MAX_BODIES,
            "dims": NUM_DIMS,
            "kinds": {str(int(k)): name for k, name in KIND_NAMES.items()},
        },
        "arrays": list(ARRAYS),
    }


def is_scene_store(store) -> bool:
    """True for a split of the combinatorial scenario."""
    return store.manifest.get("scenario") == SCENARIO


def scene_trajectory(store, rows) -> SceneTrajectory:
    """The ``SceneTrajectory`` of the videos at positions ``rows`` of a combinatorial split."""
    if not is_scene_store(store):
        raise PhylawError(f"{store.root} is a {store.scenario} split, not a combinatorial one")
    return batch_trajectory(store, store.get(rows))


def batch_trajectory(store, batch) -> SceneTrajectory:
    """The ``SceneTrajectory`` of a ``StateBatch`` read from a combinatorial split."""
    x = batch.extra
    return scene_record(store.times, batch.pos, x["angle"], x["kind"], x["dims"])

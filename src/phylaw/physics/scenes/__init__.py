"""PHYRE-style multi-object scenes for the combinatorial-generalisation study (paper Sec. 4).

Modules, in the order data flows through them:

* ``kinds``: the eight object kinds and the red ball, their body forms (ball, bar, jar, crossed
  sticks), PHYRE's sizes and the convex parts of every body;
* ``templates``: the 70 four-kind templates with the authors' ids, the 60/10 split and the 6-,
  30- and 60-template training subsets;
* ``layout``: seeded placement of a template's objects for a task (``build_layout``);
* ``collide``: exact overlap tests used to reject layouts and red-ball placements;
* ``action``: the red ball of a trial, placed by the authors' heuristic (``place_red_ball``);
* ``simulate``: frame timing, the padded arrays of a batch of scenes, and the simulation of a
  scene with the rigid-body engine (``phylaw.physics.engine``, pymunk with PHYRE's constants);
  ``kinds.scene_record`` makes them a ``physics.state.SceneTrajectory``.

A scene is identified by ``(template, task, trial)`` and a dataset seed, which determine it
exactly: ``simulate_scenes(ids, seed)``.
"""

from phylaw.physics.scenes.kinds import EMPTY, Form, Kind, scene_record
from phylaw.physics.scenes.layout import Layout, build_layout
from phylaw.physics.scenes.simulate import (
    MAX_BODIES,
    make_scene,
    scene_frame_times,
    simulate_layout,
    simulate_scenes,
)
from phylaw.physics.scenes.templates import HELD_OUT_IDS, SUBSETS, TEMPLATES, TRAIN_IDS

__all__ = [
    "EMPTY",
    "HELD_OUT_IDS",
    "MAX_BODIES",
    "SUBSETS",
    "TEMPLATES",
    "TRAIN_IDS",
    "Form",
    "Kind",
    "Layout",
    "build_layout",
    "make_scene",
    "scene_frame_times",
    "scene_record",
    "simulate_layout",
    "simulate_scenes",
]

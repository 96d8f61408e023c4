"""The paper's experiments as plans, and the runner that executes them (`runner`).

Each experiment is one function ``plan(scale) -> Plan`` (`plan.Plan`: typed stages, from
`kinds`, and what the report compares), registered below with a one-line description. A
study's scales are functions returning its typed settings (``paper()``; ``cpu()`` edits a few
fields of it with ``dataclasses.replace``), and ``build(settings)`` makes the plan.
``--scale cpu`` finishes on a 2-core laptop and the report says how; ``--scale paper`` is the
paper's setting, run on a cluster (`cluster`: Slurm through submitit) or printed as launch
commands. Adding an experiment (gaps, holes, flip, attribute priority, composition,
conditioning modes) is one module with one function, and one line here. The Sec. 5 studies
(``interpolation_gap``, ``flip_memorization``, ``attribute_priority``) share `studyplans` and
have a third scale, ``tiny`` (seconds: the tests' end-to-end run).
"""

from __future__ import annotations

from collections.abc import Callable

from phylaw import PhylawError
from phylaw.experiments.plan import Plan

__all__ = ["EXPERIMENTS", "get_plan"]


def _scaling(scale: str) -> Plan:
    from phylaw.experiments.scaling import plan

    return plan(scale)


def _autoencoder_recon(scale: str) -> Plan:
    from phylaw.experiments.autoencoder_recon import plan

    return plan(scale)


def _combinatorial(scale: str) -> Plan:
    from phylaw.experiments.combinatorial import plan

    return plan(scale)


def _interpolation_gap(scale: str) -> Plan:
    from phylaw.experiments.interpolation_gap import plan

    return plan(scale)


def _flip_memorization(scale: str) -> Plan:
    from phylaw.experiments.flip_memorization import plan

    return plan(scale)


def _attribute_priority(scale: str) -> Plan:
    from phylaw.experiments.attribute_priority import plan

    return plan(scale)


def _quickstart(scale: str) -> Plan:
    from phylaw.experiments.quickstart import plan

    if scale != "cpu":
        raise PhylawError(
            f"quickstart has no scale {scale!r}; it runs at cpu only (the paper's runs: scaling)"
        )
    return plan()


# name -> (plan function, description shown by `phylaw experiment list`)
EXPERIMENTS: dict[str, tuple[Callable[[str], Plan], str]] = {
    "quickstart": (_quickstart, "uniform motion, one CPU model, ID vs OOD with baselines"),
    "scaling": (_scaling, "Figure 3: 3 scenarios x data sizes x model sizes, ID and OOD"),
    "autoencoder-recon": (_autoencoder_recon, "Table 3: velocity error of VAE reconstructions"),
    "combinatorial": (_combinatorial, "Table 2: PHYRE-style scenes, 6/30/60 templates, in/out"),
    "interpolation-gap": (_interpolation_gap, "Figure 5: gaps and kept intervals in training v"),
    "flip-memorization": (_flip_memorization, "Figure 7: flipped training videos reverse balls"),
    "attribute-priority": (
        _attribute_priority,
        "Figs. 8, 9, 14: which attribute case matching keeps",
    ),
}


def get_plan(name: str, scale: str = "cpu") -> Plan:
    """The plan of experiment ``name`` at ``scale``; unknown names list the valid ones."""
    if name not in EXPERIMENTS:
        raise PhylawError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name][0](scale)

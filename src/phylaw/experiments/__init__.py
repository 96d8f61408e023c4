"""The paper's experiments as plans, and the runner that executes them (`runner`).

Each experiment is one function ``plan(scale) -> Plan`` (`plan.Plan`: typed stages, what the
report compares), registered below with a one-line description. ``--scale cpu`` shrinks the
plan to finish on a 2-core laptop and says how in the report; ``--scale paper`` is the paper's
setting, printed as launch commands with ``--dry-run``. Adding an experiment (gaps, holes,
flip, attribute priority, composition, conditioning modes) is one module with
one function, and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from phylaw import PhylawError
from phylaw.experiments.plan import Plan

__all__ = ["EXPERIMENTS", "SCALES", "get_plan"]

SCALES = ("cpu", "paper")


def _scaling(scale: str) -> Plan:
    from phylaw.experiments.scaling import plan

    return plan(scale)


def _autoencoder_recon(scale: str) -> Plan:
    from phylaw.experiments.autoencoder_recon import plan

    return plan(scale)


def _combinatorial(scale: str) -> Plan:
    from phylaw.experiments.combinatorial import plan

    return plan(scale)


def _quickstart(scale: str) -> Plan:
    from phylaw.experiments.quickstart import plan

    if scale != "cpu":
        raise PhylawError("quickstart runs at --scale cpu only; for the paper's runs: scaling")
    return plan()


# name -> (plan function, description shown by `phylaw experiment list`)
EXPERIMENTS: dict[str, tuple[Callable[[str], Plan], str]] = {
    "quickstart": (_quickstart, "uniform motion, one CPU model, ID vs OOD with baselines"),
    "scaling": (_scaling, "Figure 3: 3 scenarios x data sizes x model sizes, ID and OOD"),
    "autoencoder-recon": (_autoencoder_recon, "Table 3: velocity error of VAE reconstructions"),
    "combinatorial": (_combinatorial, "Table 2: PHYRE-style scenes, 6/30/60 templates, in/out"),
}


def get_plan(name: str, scale: str = "cpu") -> Plan:
    """The plan of experiment ``name`` at ``scale``; unknown names list the valid ones."""
    if name not in EXPERIMENTS:
        raise PhylawError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    if scale not in SCALES:
        raise PhylawError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
    return EXPERIMENTS[name][0](scale)

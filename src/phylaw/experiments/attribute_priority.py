"""``attribute-priority``: Figures 8, 9 and 14, which attribute case matching keeps.

Uniform motion. For each pair of attributes among colour, shape, size and velocity (six
studies, ``data.studies``), a model trains on two quadrants, e.g. red discs and blue squares
(colour-shape), and continues videos of all four; the ring variant (``colour-ring``: blue discs
and red rings, App. A.6.2) is a seventh. In a test quadrant (a blue disc) a model that matches
training cases by colour turns the disc into a square; one that matches by shape turns it red.
The paper's finding (Sec. 5.3): colour > size > velocity > shape (no exception over 1,400
colour-shape tests; velocity and size compose, with a slight lean to size; colour and size
compose, with slight size shifts; colour wins over velocity), and with rings colour no longer
wins over shape (A.6.2).

Measured here from pixels (``eval.metrics.outcomes``): per test quadrant, the rate of each
outcome (one attribute kept and the other switched to its training partner's, both kept,
other) with 95 % bootstrap intervals, the mean shift of size and velocity toward the partner,
each pair's winner (the attribute held more, intervals apart) and the order the pairs imply;
the same for the nearest-case baseline, whose order is the one pixel distance alone gives (the
paper's A.6.2 explanation). Reproduced when the six pairs give the paper's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from phylaw import PhylawError
from phylaw.experiments.plan import Plan, Stage, scale_settings
from phylaw.experiments.report.html import Table
from phylaw.experiments.studyplans import (
    CPU_TRAINING,
    PAPER_MODEL,
    PAPER_SCALE,
    TINY_TRAINING,
    Scale,
    autoencoder,
    examples,
    records,
    study_arm,
)

__all__ = ["CPU_TRAINING", "PAPER_ORDER", "SCALES", "Priority", "build", "outcomes", "plan"]

PAIRS = ("colour-shape", "size-shape", "velocity-shape", "velocity-size", "colour-size",
         "colour-velocity")  # fmt: skip
RING = "colour-ring"
PAPER_ORDER = "colour > size > velocity > shape"
PAPER_WINNER = {"colour-shape": "colour", "size-shape": "size", "velocity-shape": "velocity",
                "velocity-size": "size", "colour-size": "colour", "colour-velocity": "colour",
                RING: "no winner (a red ring becomes a red disc or a blue ring)"}  # fmt: skip
CPU_GRIDS = {  # per quadrant (velocity-size: one grid of four quadrants): 160 videos a study
    "colour-shape": "r=4,v=10", "size-shape": "r=4,v=10", "velocity-shape": "v=5,r=8",
    "velocity-size": "v=16,r=10", "colour-size": "r=4,v=10", "colour-velocity": "v=5,r=8",
    RING: "r=4,v=10",
}  # fmt: skip


@dataclass(frozen=True)
class Priority:
    """The settings of Figures 8, 9 and 14; the defaults are the paper's."""

    scale: Scale = PAPER_SCALE
    studies: tuple[str, ...] = (*PAIRS, RING)
    grids: dict[str, str] = field(default_factory=dict)  # study -> grid; absent: the study's
    note: str = ""


def paper() -> Priority:
    """Seven studies of 300K videos on the authors' grids, 128 px, 32 frames, 3 given."""
    return Priority(
        note=(
            "Paper scale: six attribute pairs and the ring variant, 300K training videos each "
            "(150K per trained quadrant), 32 frames of 128x128 with 3 given, evaluated on the "
            f"authors' quadrant grids (620 to 4,356 videos); the model is {PAPER_MODEL}."
        )
    )


def cpu() -> Priority:
    """Seven studies on 2 cores: ``CPU_TRAINING`` per study, 160 evaluation videos each."""
    s = Priority(Scale(CPU_TRAINING), grids=dict(CPU_GRIDS))
    t = s.scale.training
    return replace(
        s,
        note=(
            f"CPU scale: six attribute pairs and the ring variant, each a pixel-space "
            f"{t.describe()} on 300K training videos, 160 evaluation videos per study (40 "
            "per quadrant). The paper: DiT-size models on VAE latents of 32 frames of 128x128, "
            "620 to 4,356 evaluation videos per study."
        ),
    )


def tiny() -> Priority:
    """Two studies in seconds (tests): cpu-tiny, 40 training videos, 8 evaluation videos."""
    s = Scale(TINY_TRAINING, train_size="40")
    grids = {"colour-shape": "r=1,v=2", RING: "r=1,v=2"}
    return Priority(s, studies=("colour-shape", RING), grids=grids, note="tiny scale (tests)")


SCALES = {"paper": paper, "cpu": cpu, "tiny": tiny}


# ------------------------------------------------------------------------------ numbers
def outcomes(paths: dict, study: str, label: str) -> dict | None:
    """The outcome table (``eval.metrics.outcomes.pair_outcomes``) of stage ``eval {label}``
    on the study's evaluation split; None where nothing was scored."""
    from phylaw.data.store import open_store
    from phylaw.eval.metrics.outcomes import pair_outcomes

    rows = records(paths, f"eval {label}")
    if not rows:
        return None
    manifest = open_store(paths[f"data {study} eval"]).manifest
    try:
        return pair_outcomes(manifest, rows, where=study)
    except PhylawError:
        return None  # no test video was scored


def _all(s: Priority, paths: dict) -> dict[str, tuple[dict | None, dict | None]]:
    """Per study: (the model's outcomes, the nearest-case baseline's)."""
    return {st: (outcomes(paths, st, st), outcomes(paths, st, f"nearest-case {st}"))
            for st in s.studies}  # fmt: skip


def _lean(r: dict | None) -> str:
    from phylaw.eval.metrics.outcomes import describe_winner

    return "-" if r is None else describe_winner(r)


def _order(results: dict, which: int) -> str:
    from phylaw.eval.metrics.outcomes import priority_order

    got = [r[which] for st, r in results.items() if st in PAIRS and r[which] is not None]
    return priority_order(got) if got else "-"


def _finding(s: Priority):
    def finding(paths: dict) -> tuple[str, bool | None]:
        res = _all(s, paths)
        pairs = [st for st in PAIRS if st in res]
        if len(pairs) < len(PAIRS):
            leans = "; ".join(f"{st}: {_lean(res[st][0])}" for st in res)
            return f"This plan holds {len(pairs)} of the six pairs, no order: {leans}.", None
        if any(res[st][0] is None for st in pairs):
            return "Not reproduced: some pairs' evaluations hold no scored test video.", False
        order, base = _order(res, 0), _order(res, 1)
        ring = res.get(RING, (None, None))[0]
        numbers = (
            f"the six pairs give {order} (paper: {PAPER_ORDER}); per pair "
            + "; ".join(f"{st}: {_lean(res[st][0])}" for st in pairs)
            + (f"; ring variant: {_lean(ring)}" if ring else "")
            + f". The nearest-case baseline (pixel distance alone) gives {base}"
        )
        if order == PAPER_ORDER:
            return "Reproduced at this scale: " + numbers + ".", True
        return "Not reproduced at this scale: " + numbers + ".", False

    return finding


def _tables(s: Priority):
    def tables(paths: dict) -> list[Table]:
        from phylaw.eval.metrics.outcomes import outcome_rows

        res = _all(s, paths)
        summary = [
            [st, PAPER_WINNER.get(st, "-"), _lean(m), _lean(b)] for st, (m, b) in res.items()
        ]
        summary.append(["order (six pairs)", PAPER_ORDER, _order(res, 0), _order(res, 1)])
        head = ["study", "level", "videos", "A kept, B switched", "B kept, A switched",
                "both kept", "other", "mean shift to partner"]  # fmt: skip
        out = [
            Table(
                "Which attribute wins each pair (test quadrants)",
                ["pair", "paper", "model: winner (hold difference)", "nearest case"],
                summary,
                note=(
                    "Hold: 1 when an attribute keeps its conditioned value, 0 when it takes "
                    "the training partner's (size and velocity: 1 - the shift toward it); a "
                    "winner's mean hold is higher with the 95% bootstrap interval of the "
                    "difference apart from 0 and the difference >= 0.05; '~': a tie. The "
                    "order ranks attributes by pair wins minus losses."
                ),
            )
        ]
        for which, title in ((0, "model"), (1, "nearest-case baseline")):
            rows = []
            for st, r in res.items():
                if r[which] is not None:
                    a, b = r[which]["attributes"]
                    rows += [[f"{st} (A {a}, B {b})", *x[1:]] for x in outcome_rows(r[which])]
            out.append(Table(f"Outcomes per quadrant: {title}", head, rows, note=_OUTCOME_NOTE))
        return out

    return tables


_OUTCOME_NOTE = (
    "Per quadrant: the share of videos [95% bootstrap interval] whose generated video kept A "
    "and took B from its training partner (the trained quadrant sharing A), the reverse, kept "
    "both, or neither (an ambiguous shape, a colour not seen, a shift away). Measured over the "
    "generated frames from pixels: colour with the most area, shape class from moment "
    "invariants, size from the area, velocity from the tracked centre (eval.metrics.attributes)."
    " Mean shift: toward the partner's interval centre (0 kept, 1 there). Trained quadrants are "
    "controls."
)


def _rate(result: dict, k: int) -> float:
    """The pooled test rate of outcome ``k`` (0-3) of a pair's outcome table."""
    return result["test"][f"rate/{result['outcomes'][k]}"]["mean"] or 0.0


def _figures(s: Priority):
    def figures(paths: dict) -> list:
        from phylaw.experiments.report.html import pyplot

        plt = pyplot()
        res = _all(s, paths)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), squeeze=False)
        colours = ("tab:blue", "tab:orange", "tab:green", "0.7")
        for ax, which, title in ((axes[0][0], 0, "model"), (axes[0][1], 1, "nearest case")):
            names = [st for st in s.studies if res[st][which] is not None]
            bottom = np.zeros(len(names))
            for k, colour in enumerate(colours):
                vals = np.array([_rate(res[st][which], k) for st in names])
                label = ("A kept, B switched", "B kept, A switched", "both kept", "other")[k]
                ax.bar(names, vals, bottom=bottom, color=colour, label=label)
                bottom += vals
            ax.set_title(f"{title}: outcomes in the test quadrants", fontsize=9)
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
            ax.set_ylim(0, 1)
        axes[0][0].legend(fontsize=6)
        fig.tight_layout()
        return [("Outcome shares per pair (A, B as in each study's name)", fig)]

    return figures


def _animations(s: Priority):
    def animations(paths: dict) -> list[tuple[str, bytes]]:
        out = []
        for st in [x for x in ("colour-shape", RING) if x in s.studies]:
            result = outcomes(paths, st, st)
            if result is None:
                continue
            test = {n for n, g in result["levels"].items() if g["role"] == "test"}
            rows = [r for r in records(paths, f"eval {st}") if r.get("level") in test][:4]
            what = "; ".join(
                f"{r['level']} -> {r.get('gen_colour')} {r.get('gen_shape')}" for r in rows
            )
            gif = examples(paths, f"sample {st}", f"data {st} eval", rows, f"{st}, test "
                           f"quadrants: ground truth | generated ({what})")  # fmt: skip
            out += [gif] if gif else []
        return out

    return animations


def build(s: Priority, scale: str) -> Plan:
    """The Figures 8, 9, 14 plan of settings ``s``."""
    stages: list[Stage] = autoencoder(s.scale)
    for st in s.studies:
        stages += study_arm(st, s.scale, s.grids.get(st))
    return Plan(
        name="attribute-priority",
        title="which attribute case matching keeps: colour, size, velocity, shape (Figs. 8, 9, 14)",
        scale=scale,
        note=s.note,
        stages=tuple(stages),
        tables=_tables(s),
        figures=_figures(s),
        animations=_animations(s),
        finding=_finding(s),
    )


def plan(scale: str = "cpu") -> Plan:
    """Figures 8, 9 and 14 at ``scale`` (a name in ``SCALES``)."""
    return build(scale_settings("attribute-priority", SCALES, scale), scale)

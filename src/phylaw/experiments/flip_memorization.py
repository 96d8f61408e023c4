"""``flip-memorization``: Figure 7, memorization shown by horizontally flipped training videos.

Uniform motion of blue balls (study ``flip``): training velocities v in [2.5, 4.0], every
training ball moving right. Set-1 trains on them as they are; Set-2 on the same videos, each
mirrored left-right with probability 1/2 at training time (``data.hflip = 0.5``), so half the
balls it sees move left. Both continue balls moving right at v in [1, 4] (level ``beyond``:
the unseen low speeds, v < 2.5; ``support``: the trained ones). The paper's finding (Sec.
5.2): Set-1 generates only positive velocities, biased toward the high speeds it was trained
on; Set-2 occasionally reverses a slow ball after the condition frames, as if its closest
training case were a mirrored (leftward) video: case-based imitation, not the law of inertia.

Measured here: the fraction of **reversed** videos (generated vx < -``REVERSE_MIN`` while the
conditioned ball moves right) per set and region with 95 % bootstrap intervals, over every
seed; the mean generated minus conditioned velocity; the generated against the conditioned
velocity (the figure); the case score (``experiments.casematch``; Set-2 matched against the
mirrored cases too); and the nearest-case baseline (plain for Set-1, with mirror images for
Set-2), the pure case-based reference.

Reproduced when Set-2 reverses more low-speed balls than Set-1 with the two 95 % intervals
apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from phylaw.experiments.plan import Plan, Stage, scale_settings
from phylaw.experiments.report.html import Table
from phylaw.experiments.studyplans import (
    CPU_TRAINING,
    PAPER_MODEL,
    PAPER_SCALE,
    TINY_TRAINING,
    Scale,
    arm,
    autoencoder,
    case_rows,
    closer_to_case,
    column,
    eval_count,
    fmt_mean,
    mean_ci,
    records,
    reference,
    study_data,
)

__all__ = ["CPU_TRAINING", "REVERSE_MIN", "SCALES", "Flip", "build", "plan", "reversed_flags"]

STUDY = "flip"
REVERSE_MIN = 0.2  # world units/s: a generated vx below -this on a rightward ball is reversed
LOW, HIGH = "beyond", "support"  # the flip split's levels: v < 2.5 (unseen) and v >= 2.5


@dataclass(frozen=True)
class Flip:
    """The settings of Figure 7; the defaults are the paper's."""

    scale: Scale = PAPER_SCALE
    sets: tuple[tuple[str, float], ...] = (("Set-1", 0.0), ("Set-2", 0.5))  # (label, hflip)
    seeds: tuple[int, ...] = (0,)  # training seeds per set (the figure pools them)
    grid: str | None = None  # the evaluation grid; None: the study's 44 v x 36 r
    note: str = field(default="")


def paper() -> Flip:
    """Set-1 and Set-2 on the 300K flip split, 1,584 evaluation videos, 128 px, 32 frames."""
    return Flip(
        note=(
            "Paper scale: Set-1 (no flip) and Set-2 (data.hflip = 0.5) trained on the 300K "
            "flip split (blue balls, v in [2.5, 4]), 32 frames of 128x128 with 3 given, "
            f"evaluated on 44 v x 36 r over [1, 4]; the model is {PAPER_MODEL}."
        )
    )


def cpu() -> Flip:
    """Two seeds per set on 2 cores: ``CPU_TRAINING`` per run, 352 evaluation videos."""
    s = Flip(Scale(CPU_TRAINING), seeds=(0, 1), grid="v=44,r=8")
    t = s.scale.training
    return replace(
        s,
        note=(
            f"CPU scale: Set-1 and Set-2, two training seeds each, pixel-space "
            f"{t.describe()} on the 300K flip split, {eval_count(STUDY, s.grid)} evaluation "
            "videos (44 v x 8 r). The paper: one DiT-size model per set on VAE latents, 32 "
            "frames of 128x128."
        ),
    )


def tiny() -> Flip:
    """Seconds (tests): cpu-tiny, 40 training videos, 8 evaluation videos."""
    return Flip(Scale(TINY_TRAINING, train_size="40"), grid="v=8,r=1", note="tiny scale (tests)")


SCALES = {"paper": paper, "cpu": cpu, "tiny": tiny}


def _label(name: str, seed: int) -> str:
    return f"{name} seed {seed}"


# ------------------------------------------------------------------------------ numbers
def reversed_flags(rows: list[dict]) -> np.ndarray:
    """Per video: 1 reversed (module docstring), 0 not, NaN where no velocity was measured."""
    g, v = column(rows, "gen_vx"), column(rows, "given_vx")
    flags = ((g * np.sign(v)) < -REVERSE_MIN).astype(np.float64)
    return np.where(np.isfinite(g), flags, np.nan)


def _set_numbers(paths: dict, labels: list[str], level: str) -> dict:
    """Pooled over ``labels`` (seeds, or one baseline): reversed rate, generated - conditioned
    velocity and the case rate in ``level``."""
    rows = [r for lb in labels for r in records(paths, f"eval {lb}") if r.get("level") == level]
    cases = [r for lb in labels for r in case_rows(paths, f"case-match {lb}")]
    cases = [r for r in cases if r.get("level") == level]
    return {
        "reversed": mean_ci(reversed_flags(rows)),
        "shift": mean_ci(column(rows, "gen_vx") - column(rows, "given_vx")),
        "case": mean_ci(closer_to_case(cases)),
        "rows": rows,
    }


def _finding(s: Flip):
    def finding(paths: dict) -> tuple[str, bool | None]:
        (n1, _), (n2, _) = s.sets[0], s.sets[-1]
        one = _set_numbers(paths, [_label(n1, k) for k in s.seeds], LOW)
        two = _set_numbers(paths, [_label(n2, k) for k in s.seeds], LOW)
        r1, r2 = one["reversed"], two["reversed"]
        if not (np.isfinite(r1[0]) and np.isfinite(r2[0])):
            return "Not reproduced: no low-speed video had a measured velocity.", False
        numbers = (
            f"among slow balls (v < 2.5, unseen), {n2} reverses {fmt_mean(r2, pct=True)} of "
            f"the videos and {n1} {fmt_mean(r1, pct=True)}; {n1}'s generated velocity is "
            f"{one['shift'][0]:+.2f} world units/s from the conditioned one on average "
            f"(the paper: biased toward the trained high speeds)"
        )
        if r2[1] > r1[2]:
            text = "Reproduced at this scale: " + numbers + ". Only the model trained on "
            return text + "mirrored videos reverses balls, as in Figure 7.", True
        text = "Not reproduced at this scale: " + numbers + f". {n2}'s reversed share is not"
        return text + f" above {n1}'s (95 % intervals overlap).", False

    return finding


def _tables(s: Flip):
    def tables(paths: dict) -> list[Table]:
        rows = []
        for (name, hflip), base in zip(s.sets, ("", " mirrored"), strict=False):
            groups = [(f"{name} (hflip {hflip:g})", [_label(name, k) for k in s.seeds])]
            groups += [(f"nearest case{base}", [f"nearest-case {STUDY}{base}"])]
            for label, labels in groups:
                for level, what in ((LOW, "v < 2.5 (unseen)"), (HIGH, "v >= 2.5 (trained)")):
                    m = _set_numbers(paths, labels, level)
                    rev, case = fmt_mean(m["reversed"], pct=True), fmt_mean(m["case"], pct=True)
                    rows.append([label, what, rev, fmt_mean(m["shift"], 2), case])
        return [
            Table(
                "Figure 7 at this scale: reversed balls per training set",
                [
                    "model",
                    "conditioned speed",
                    "reversed",
                    "generated - conditioned vx",
                    "closer to case",
                ],  # fmt: skip
                rows,
                note=(
                    f"Reversed: generated vx below -{REVERSE_MIN} world units/s (least-squares "
                    "slope of the tracked centre over the generated frames) while the "
                    "conditioned ball moves right; mean over videos and seeds [95% bootstrap "
                    "interval] (n videos with a measured velocity). Closer to case: share of "
                    "videos whose generated velocity is nearer their nearest training case's "
                    "(condition frames in pixels; for Set-2 mirrored cases too) than the law's, "
                    "among videos whose case and law differ. The nearest-case baseline pastes "
                    "that case: the pure case-based reference."
                ),
            )
        ]

    return tables


def _figures(s: Flip):
    def figures(paths: dict) -> list:
        from phylaw.experiments.report.html import pyplot

        plt = pyplot()
        fig, axes = plt.subplots(1, len(s.sets), figsize=(3.6 * len(s.sets), 3.3), squeeze=False)
        for ax, (name, hflip) in zip(axes[0], s.sets, strict=True):
            ax.axvspan(2.5, 4.0, color="tab:green", alpha=0.12, lw=0, label="trained v")
            ax.axhline(0, color="k", lw=0.6)
            ax.plot([1, 4], [1, 4], "k:", lw=1)
            rows = [r for k in s.seeds for r in records(paths, f"eval {_label(name, k)}")]
            x, y, rev = column(rows, "given_vx"), column(rows, "gen_vx"), reversed_flags(rows)
            ax.plot(x[rev != 1], y[rev != 1], "o", ms=2.5, color="tab:blue", label="generated")
            ax.plot(x[rev == 1], y[rev == 1], "o", ms=4, mfc="none", color="tab:green",
                    label="reversed")  # fmt: skip
            ax.set_title(f"{name} (hflip {hflip:g})", fontsize=9)
            ax.set_xlabel("conditioned v")
            ax.set_ylabel("generated vx")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=6)
        fig.tight_layout()
        return [("Figure 7 at this scale: generated against conditioned velocity (reversed "
                 "videos circled, trained speeds shaded)", fig)]  # fmt: skip

    return figures


def build(s: Flip, scale: str) -> Plan:
    """The Figure 7 plan of settings ``s``."""
    n = eval_count(STUDY, s.grid)
    stages: list[Stage] = autoencoder(s.scale) + study_data(STUDY, s.scale, s.grid)
    for mirror in sorted({hflip > 0 for _, hflip in s.sets}):
        stages += reference(STUDY, s.scale, n, mirror=mirror)
    for name, hflip in s.sets:
        for seed in s.seeds:
            stages += arm(_label(name, seed), STUDY, s.scale, n, sets=(f"data.hflip={hflip:g}",),
                          seed=seed, mirror=hflip > 0)  # fmt: skip
    first = _label(s.sets[-1][0], s.seeds[0])
    return Plan(
        name="flip-memorization",
        title="memorization: flipped training videos make balls reverse (Figure 7)",
        scale=scale,
        note=s.note,
        stages=tuple(stages),
        showcase=((first, f"sample {first}", f"eval {first}", f"data {STUDY} eval"),),
        tables=_tables(s),
        figures=_figures(s),
        finding=_finding(s),
    )


def plan(scale: str = "cpu") -> Plan:
    """Figure 7 at ``scale`` (a name in ``SCALES``)."""
    return build(scale_settings("flip-memorization", SCALES, scale), scale)

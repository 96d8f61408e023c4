"""``interpolation-gap``: Figure 5, interpolation across a gap in the training velocities.

Uniform motion. Each arm trains on the videos of one study (``data.studies``): a middle range
of velocities left out (``gap-1.25-3.75``, ``gap-1.5-3.5``, ``gap-1.75-3.25``, ``gap-2-3``) or
only some intervals kept (``keep-3``, ``keep-4``), all of 200K videos; each continues the same
grid of evaluation videos over v in [1, 4] x r in [0.7, 1.4], labelled ``support`` (inside the
training ranges) or ``gap``. The paper's finding (Sec. 5.1): inside a large gap the model
generates velocities that resemble the training data (high or low) instead of the conditioned
one, so the OOD error grows with the gap; a smaller gap, or a few reintroduced intervals at the
same data size, and the model interpolates. Measured here, per arm: the velocity error e in
support and in the gap, the generated velocity against the conditioned one (the figure; its
slope inside the gap: 1 = interpolates, 0 = one velocity for the whole gap), and the case score
(``experiments.casematch``: is a video closer to the law or to its nearest training case?),
beside the nearest-case baseline, the pure case-based reference.

Reproduced when e in the widest gap exceeds e in the narrowest (95 % intervals apart) and a
kept-interval arm lowers the widest gap's e (intervals apart).
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
    autoencoder,
    column,
    eval_count,
    fmt_mean,
    fmt_slope,
    fmt_stats,
    mean_ci,
    records,
    slope,
    stat,
    study_arm,
    summary,
)

__all__ = ["CPU_TRAINING", "SCALES", "Gap", "build", "plan", "support_intervals"]

SNAP = 0.05  # world units/s: a generated velocity this close to a training range lies in it
ARMS = ("gap-1.25-3.75", "gap-1.5-3.5", "gap-1.75-3.25", "gap-2-3", "keep-3", "keep-4")


@dataclass(frozen=True)
class Gap:
    """The settings of Figure 5; the defaults are the paper's."""

    scale: Scale = PAPER_SCALE
    arms: tuple[str, ...] = ARMS
    grid: str | None = None  # every arm's evaluation grid; None: the authors' 121 v x 36 r
    note: str = field(default="")


def paper() -> Gap:
    """Six arms of 200K videos, the authors' 4,356-video grid, 128 px, 32 frames, 3 given."""
    return Gap(
        note=(
            "Paper scale: six arms (four gaps, two kept-interval sets) of 200K videos each, "
            "32 frames of 128x128 with 3 given, evaluated on the authors' 121 v x 36 r grid; "
            f"the model is {PAPER_MODEL}. One autoencoder (ae-paper) serves every arm."
        )
    )


def cpu() -> Gap:
    """Six arms on 2 cores: ``CPU_TRAINING`` per arm, 244 evaluation videos each."""
    s = Gap(Scale(CPU_TRAINING), grid="v=61,r=4")
    t = s.scale.training
    return replace(
        s,
        note=(
            f"CPU scale: six arms of 200K training videos, each a pixel-space "
            f"{t.describe()} on the preset's clip, evaluated on a 61 v x 4 r grid "
            f"({eval_count(ARMS[0], s.grid)} videos per arm). The paper: DiT-B-size models on "
            "VAE latents of 32 frames of 128x128 and the 4,356-video grid."
        ),
    )


def tiny() -> Gap:
    """Three arms in seconds (tests): cpu-tiny, 40 training videos, 7 evaluation videos."""
    s = Scale(TINY_TRAINING, train_size="40")
    arms = ("gap-1.25-3.75", "gap-2-3", "keep-3")
    return Gap(s, arms=arms, grid="v=7,r=1", note="tiny scale (tests)")


SCALES = {"paper": paper, "cpu": cpu, "tiny": tiny}


# ------------------------------------------------------------------------------ numbers
def support_intervals(study: str) -> list[tuple[float, float]]:
    """The velocity intervals a study trains on (merged), for shading and labels."""
    from phylaw.data.studies import get_study

    region = get_study(study).train
    k = region.space.numeric.index("v")
    cells = region.cells()
    spans = sorted(zip(cells.lo[:, k].tolist(), cells.hi[:, k].tolist(), strict=True))
    merged: list[list[float]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + 1e-9:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _arm_numbers(paths: dict, label: str, study: str | None = None) -> dict:
    """e per level; in the gap the slope, |v^ - v|, the share of generated velocities inside
    the training ranges of ``study`` (default ``label``) and the case rate."""
    rows = records(paths, f"eval {label}")
    levels = summary(paths, f"eval {label}").get("levels", {})
    gap = [r for r in rows if r.get("level") == "gap"]
    cm = summary(paths, f"case-match {label}", "casematch.json").get("levels", {}).get("gap", {})
    x, y = column(gap, "given_vx"), column(gap, "gen_vx")
    e = {lv: (levels.get(lv) or {}).get("metrics", {}).get("velocity_error") or {}
         for lv in ("support", "gap")}  # fmt: skip
    return {
        "e": e,
        "levels": levels,
        "slope": slope(x, y),
        "gap_dev": mean_ci(np.abs(y - x)),
        "snapped": mean_ci(np.where(np.isfinite(y), _in_training(y, study or label), np.nan)),
        "case": cm.get("case_px") or {},
        "rows": rows,
    }


def _in_training(v: np.ndarray, study: str) -> np.ndarray:
    """1 where a velocity lies within ``SNAP`` of a training interval of ``study``, else 0."""
    inside = np.zeros(len(v))
    for lo, hi in support_intervals(study):
        inside = np.maximum(inside, (v >= lo - SNAP) & (v <= hi + SNAP))
    return inside


def _apart(a: dict, b: dict) -> bool:
    """True when ``a``'s 95 % interval lies wholly above ``b``'s."""
    return (
        a.get("ci_low") is not None
        and b.get("ci_high") is not None
        and (a["ci_low"] > b["ci_high"])
    )


def _finding(s: Gap):
    def finding(paths: dict) -> tuple[str, bool | None]:
        num = {a: _arm_numbers(paths, a) for a in s.arms}
        gaps = sorted((a for a in s.arms if a.startswith("gap-")), key=lambda a: -_width(a))
        keeps = [a for a in s.arms if a.startswith("keep-")]
        if len(gaps) < 2 or not keeps:
            text = "This plan has too few arms to compare gaps (two gap arms and a kept set)."
            return text, None
        e = lambda a, lv: num[a]["e"][lv].get("mean") or np.nan  # noqa: E731
        if np.isnan(e(gaps[0], "gap")) or np.isnan(e(gaps[-1], "gap")):
            return "Not reproduced: the arms' evaluations hold no scored gap video.", False
        best = min(keeps, key=lambda a: num[a]["e"]["gap"].get("mean") or np.inf)
        wide, narrow = num[gaps[0]], num[gaps[-1]]
        numbers = (
            f"in the widest gap ({gaps[0]}) the velocity error e is {e(gaps[0], 'gap'):.3f} "
            f"(support {e(gaps[0], 'support'):.3f}), in the narrowest ({gaps[-1]}) "
            f"{e(gaps[-1], 'gap'):.3f} (support {e(gaps[-1], 'support'):.3f}); the generated "
            f"velocity lies in the training ranges for {100 * wide['snapped'][0]:.0f} % and "
            f"{100 * narrow['snapped'][0]:.0f} % of the gap videos (slope against the "
            f"conditioned one {wide['slope'][0]:.2f} and {narrow['slope'][0]:.2f}); with kept "
            f"intervals "
            f"({best}) the gap's e is {e(best, 'gap'):.3f}"
        )
        grows = _apart(wide["e"]["gap"], narrow["e"]["gap"])
        helps = _apart(wide["e"]["gap"], num[best]["e"]["gap"])
        if grows and helps:
            text = "Reproduced at this scale: " + numbers + ". The model does not interpolate "
            return text + "across a wide gap and does across a narrow one (Figure 5).", True
        missed = [] if grows else ["the widest gap's e is not above the narrowest's"]
        missed += [] if helps else [f"{best} does not lower the widest gap's e"]
        if e(gaps[0], "support") > 0.5:
            missed.append("the model has not learned the law even in support at this budget")
        text = "Not reproduced at this scale: " + numbers + ". Missed (95 % intervals): "
        return text + "; ".join(missed) + ".", False

    return finding


def _width(study: str) -> float:
    lo, hi = study.removeprefix("gap-").split("-")
    return float(hi) - float(lo)


HEADER = ["arm", "training v", "e support", "e gap", "|v^ - v| gap", "slope in gap",
          "in training v (gap)", "closer to case (gap)", "nearest-case e gap",
          "nearest-case slope", "nearest-case in training v"]  # fmt: skip
NOTE = (
    "e: the paper's per-frame velocity error (world units/s), mean [95% bootstrap interval] (n "
    "videos). |v^ - v|: the generated velocity (least-squares slope of the tracked centre over "
    "the generated frames) against the conditioned one. Slope: generated against conditioned "
    "velocity over the gap's videos (1: the law; 0: one velocity for the whole gap; above 1: a "
    "step to the gap's edges). In training v: share of gap videos whose generated velocity lies "
    f"within {SNAP} of a training range (the paper: 'either high or low to resemble training "
    "data'). Closer to case: share of gap videos whose generated velocity is nearer the nearest "
    "training case's (by condition frames) than the law's. The nearest-case baseline pastes "
    "that case: the pure case-based reference."
)


def _tables(s: Gap):
    def tables(paths: dict) -> list[Table]:
        rows = []
        for a in s.arms:
            m, b = _arm_numbers(paths, a), _arm_numbers(paths, f"nearest-case {a}", a)
            train = " U ".join(f"[{lo:g}, {hi:g}]" for lo, hi in support_intervals(a))
            rows.append([
                a, train, stat(m["levels"].get("support"), "velocity_error"),
                stat(m["levels"].get("gap"), "velocity_error"), fmt_mean(m["gap_dev"]),
                fmt_slope(m["slope"]), fmt_mean(m["snapped"], pct=True), fmt_stats(m["case"]),
                stat(b["levels"].get("gap"), "velocity_error"), fmt_slope(b["slope"]),
                fmt_mean(b["snapped"], pct=True),
            ])  # fmt: skip
        title = "Figure 5 at this scale: each arm's error in support and in the gap"
        return [Table(title, HEADER, rows, note=NOTE)]

    return tables


def _figures(s: Gap):
    def figures(paths: dict) -> list:
        from phylaw.experiments.report.html import pyplot

        plt = pyplot()
        cols = min(3, len(s.arms))
        nrows = -(-len(s.arms) // cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(3.3 * cols, 3.1 * nrows), squeeze=False)
        for ax, a in zip(axes.ravel(), s.arms, strict=False):
            for lo, hi in support_intervals(a):
                ax.axvspan(lo, hi, color="tab:green", alpha=0.12, lw=0)
            ax.plot([1, 4], [1, 4], "k:", lw=1)
            base = records(paths, f"eval nearest-case {a}")
            ax.plot(column(base, "given_vx"), column(base, "gen_vx"), "x", color="0.6", ms=3,
                    label="nearest case")  # fmt: skip
            rows = records(paths, f"eval {a}")
            for lv, colour in (("support", "tab:blue"), ("gap", "tab:red")):
                sel = [r for r in rows if r.get("level") == lv]
                ax.plot(column(sel, "given_vx"), column(sel, "gen_vx"), "o", ms=2.5,
                        color=colour, label=f"model, {lv}")  # fmt: skip
            ax.set_title(f"{a}: slope in gap {_arm_numbers(paths, a)['slope'][0]:.2f}", fontsize=8)
            ax.set_xlabel("conditioned v")
            ax.set_ylabel("generated v")
            ax.grid(alpha=0.3)
        for ax in axes.ravel()[len(s.arms) :]:
            ax.axis("off")
        axes[0][0].legend(fontsize=6)
        fig.tight_layout()
        return [("Figure 5 at this scale: generated against conditioned velocity per arm "
                 "(training ranges shaded, the law dotted)", fig)]  # fmt: skip

    return figures


def build(s: Gap, scale: str) -> Plan:
    """The Figure 5 plan of settings ``s``."""
    stages: list[Stage] = autoencoder(s.scale)
    for a in s.arms:
        stages += study_arm(a, s.scale, s.grid)
    first = s.arms[0]
    return Plan(
        name="interpolation-gap",
        title="interpolation across a gap in the training velocities (Figure 5)",
        scale=scale,
        note=s.note,
        stages=tuple(stages),
        showcase=((first, f"sample {first}", f"eval {first}", f"data {first} eval"),),
        tables=_tables(s),
        figures=_figures(s),
        finding=_finding(s),
    )


def plan(scale: str = "cpu") -> Plan:
    """Figure 5 at ``scale`` (a name in ``SCALES``)."""
    return build(scale_settings("interpolation-gap", SCALES, scale), scale)

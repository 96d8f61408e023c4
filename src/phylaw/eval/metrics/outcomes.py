"""Outcome of an attribute pair (paper Sec. 5.3, Figs. 8, 9, 14): which attribute a generated
video kept, and which it took from a training case.

A pair study trains on two quadrants of two attributes A and B, T1 = (a1, b1) and T2 = (a2,
b2), and tests on the swapped ones, e.g. S = (a2, b1). A model that matches training cases by
A continues S like T2 (A kept, B switched to b2); one that matches by B continues it like T1
(B kept, A switched to a1); a model that composes keeps both. The split's record gives the
design (evaluation never imports the study registry): the manifest's ``regions.train_boxes``
(T1, T2) and the box of each level (``block_boxes`` or ``quadrant_boxes``, by the level's name),
as ``Box.record`` dicts. The per-video values come from ``videos.jsonl``
(``metrics.attributes``: ``given_*`` and ``gen_*``).

Per test video and attribute (columns ``r`` = size, ``v`` = velocity, ``colour``, ``shape``):

* categorical: **kept** if the generated value is the conditioned one, **switched** if it is
  the partner's (the value of the training box that shares the *other* attribute), else
  **other** (ambiguous shape, no colour seen, a third value);
* continuous: the **normalised shift** toward the partner, s = (g - x) sign(c - x) / |c - x|
  (x the conditioned value, g the generated one, c the centre of the partner's interval: 0 =
  kept exactly, 1 = at the partner's centre); kept if |s| < 1/2, switched if s >= 1/2, other
  if s <= -1/2 or not measured.

The video's **outcome**: "A kept, B switched", "B kept, A switched", "both kept" or "other";
per test level and pooled over the test levels, each outcome's rate with a bootstrap interval,
the mean shift of each continuous attribute, and each attribute's **hold** (1 kept, 0
switched, for continuous attributes 1 - clip(s, 0, 1)). The pair's **winner** is the attribute
with the higher mean hold when the bootstrap interval of the difference excludes 0 and the
difference is at least ``MIN_LEAN`` (else a tie): it decides colour vs shape by outright
switches and colour vs size (Fig. 9 (2): colour kept, size shifted a little) by the shift.
The **priority order** over several pairs ranks the attributes by wins minus losses
(`priority_order`); the paper's is colour > size > velocity > shape. Trained quadrants,
evaluated too, are reported as controls (their partner: the other trained quadrant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phylaw import PhylawError
from phylaw.eval.aggregate import summarize
from phylaw.physics.state import Colour, Shape

NAMES = {"r": "size", "v": "velocity", "colour": "colour", "shape": "shape"}  # column -> name
RECORD = {"r": "size", "v": "vx", "colour": "colour", "shape": "shape"}  # column -> record key
ORDER = ("colour", "r", "v", "shape")  # A before B in a pair (the studies' names but one)
CODES = {"colour": Colour, "shape": Shape}
TOL = 1e-9
MIN_LEAN = 0.05  # a smaller mean hold difference is a tie (the ground truth's parse noise
# shifts a size or a speed by up to ~0.05 of the distance to the partner at 32 px)


@dataclass(frozen=True)
class PairBox:
    """A box of the design: ``bounds`` {column: (lo, hi)}, ``values`` {column: codes}."""

    name: str
    bounds: dict[str, tuple[float, float]]
    values: dict[str, tuple[int, ...]]

    @staticmethod
    def of(record: dict) -> PairBox:
        """From a ``Box.record`` dict."""
        bounds = {k: (float(a), float(b)) for k, (a, b) in record.get("bounds", {}).items()}
        values = {k: tuple(int(c) for c in v) for k, v in record.get("values", {}).items()}
        return PairBox(str(record.get("name", "")), bounds, values)

    def columns(self) -> tuple[str, ...]:
        return tuple(sorted((*self.bounds, *self.values)))

    def same(self, other: PairBox, column: str) -> bool:
        """True when both boxes give ``column`` the same interval or codes."""
        if column in self.values:
            return set(self.values[column]) == set(other.values.get(column, ()))
        lo, hi = self.bounds[column]
        olo, ohi = other.bounds.get(column, (np.nan, np.nan))
        return abs(lo - olo) <= TOL and abs(hi - ohi) <= TOL


@dataclass(frozen=True)
class Pair:
    """The design of a pair study: its two ``columns`` (A, B), the ``train`` boxes (T1, T2)
    and every evaluated level's box (``levels``, by name)."""

    study: str
    columns: tuple[str, str]
    train: tuple[PairBox, PairBox]
    levels: dict[str, PairBox]

    def trained(self, level: str) -> bool:
        """True when ``level``'s box is one of the training boxes (a control)."""
        box = self.levels[level]
        return any(all(t.same(box, c) for c in self.columns) for t in self.train)

    def partner(self, level: str, column: str) -> PairBox | None:
        """The training box a video of ``level`` takes ``column``'s value from if it matches
        by the other column; for a trained level, the other training box."""
        box = self.levels[level]
        if self.trained(level):
            return next((t for t in self.train if not t.same(box, column)), None)
        other = self.columns[1] if column == self.columns[0] else self.columns[0]
        return next((t for t in self.train if t.same(box, other)), None)


def pair_design(manifest: dict, where: str = "the split") -> Pair:
    """The pair design of a split's manifest; one clear ``PhylawError`` when it has none."""
    regions = manifest.get("regions")
    if not regions:
        raise PhylawError(
            f"{where} is not a study split: attribute outcomes need the evaluation split of a "
            "pair study (phylaw data build --study colour-size --split eval)"
        )
    if "train_boxes" not in regions:
        raise PhylawError(
            f"{where} has no structured boxes in its manifest (built by an older phylaw): "
            f"rebuild it (phylaw data build --study {manifest.get('study') or 'NAME'} "
            "--split eval --out DIR) and evaluate again"
        )
    train = tuple(PairBox.of(b) for b in regions["train_boxes"])
    if len(train) != 2 or len(train[0].columns()) != 2 or train[0].columns() != train[1].columns():
        raise PhylawError(
            f"{where} ({manifest.get('study') or 'no study'}) does not train on two boxes of the "
            "same two attributes: attribute outcomes apply to the pair studies (colour-size, "
            "colour-velocity, size-shape, velocity-shape, colour-shape, colour-ring, "
            "velocity-size)"
        )
    boxes = regions.get("quadrant_boxes") if regions.get("labels") == "quadrants" else None
    boxes = boxes or regions.get("block_boxes") or []
    levels = {b["name"]: PairBox.of(b) for b in boxes if b.get("name")}
    cols = sorted(train[0].columns(), key=lambda c: (ORDER.index(c) if c in ORDER else 9, c))
    return Pair(manifest.get("study") or "", (cols[0], cols[1]), (train[0], train[1]), levels)


# --------------------------------------------------------------------------- per video
def _code(kind: str, name) -> int:
    try:
        return int(CODES[kind][str(name).upper()])
    except KeyError:
        return -1  # none, ambiguous


def attribute_state(pair: Pair, record: dict, column: str) -> tuple[str, float, float]:
    """(kept | switched | other, normalised shift or NaN, hold or NaN) of one attribute of
    one test video (module docstring)."""
    partner = pair.partner(record["level"], column)
    key = RECORD[column]
    given, gen = record.get(f"given_{key}"), record.get(f"gen_{key}")
    if column in CODES:
        g = _code(column, gen)
        if g == _code(column, given):
            return "kept", np.nan, 1.0
        if partner is not None and g in partner.values[column]:
            return "switched", np.nan, 0.0
        return "other", np.nan, np.nan
    if gen is None or given is None or partner is None:
        return "other", np.nan, np.nan
    lo, hi = partner.bounds[column]
    centre = (lo + hi) / 2
    d = centre - float(given)
    s = (float(gen) - float(given)) * np.sign(d) / max(abs(d), TOL)
    state = "kept" if abs(s) < 0.5 else "switched" if s >= 0.5 else "other"
    return state, s, 1.0 - float(np.clip(s, 0.0, 1.0))


def outcome_labels(pair: Pair) -> tuple[str, str, str, str]:
    """The four outcomes' names: A kept & B switched, B kept & A switched, both kept, other."""
    a, b = (NAMES.get(c, c) for c in pair.columns)
    return f"{a} kept, {b} switched", f"{b} kept, {a} switched", "both kept", "other"


def video_outcomes(pair: Pair, records: list[dict]) -> list[dict]:
    """Per video of a level the design knows: level, role (test or trained), outcome, and per
    attribute its state, shift and hold."""
    labels = outcome_labels(pair)
    a, b = pair.columns
    out = []
    for rec in records:
        if rec.get("level") not in pair.levels:
            continue
        (sa, xa, ha), (sb, xb, hb) = (attribute_state(pair, rec, c) for c in (a, b))
        trained = pair.trained(rec["level"])
        if sa == "kept" and sb == "kept":
            label = labels[2]
        elif sa == "kept" and sb == "switched":
            label = labels[0]
        elif sb == "kept" and sa == "switched":
            label = labels[1]
        else:
            label = labels[3]
        out.append({
            "id": rec.get("id"), "level": rec["level"], "role": "trained" if trained else "test",
            "outcome": label, "state": {a: sa, b: sb}, "shift": {a: xa, b: xb},
            "hold": {a: ha, b: hb},
        })  # fmt: skip
    return out


# --------------------------------------------------------------------------- per group
def _group(pair: Pair, rows: list[dict], resamples: int, seed: int, key: str) -> dict:
    """Rates of the outcomes, mean shifts and holds (with intervals) of some videos."""
    labels = outcome_labels(pair)
    a, b = pair.columns
    values = {f"rate/{x}": np.array([r["outcome"] == x for r in rows], float) for x in labels}
    for c in (a, b):
        values[f"hold/{c}"] = np.array([r["hold"][c] for r in rows], float)
        if c not in CODES:
            values[f"shift/{c}"] = np.array([r["shift"][c] for r in rows], float)
    values["lean"] = values[f"hold/{a}"] - values[f"hold/{b}"]
    stats = summarize(values, resamples, seed, key=key)
    return {"videos": len(rows), **stats}


def pair_outcomes(
    manifest: dict, records: list[dict], resamples: int = 1000, seed: int = 0, where: str = ""
) -> dict:
    """The outcome table of a pair study's evaluation (module docstring): ``{study,
    attributes, columns, outcomes, levels: {level: group}, test: group, winner, loser}``;
    a group holds ``videos``, ``role`` and ``rate/...``, ``hold/...``, ``shift/...`` and
    ``lean`` (hold A - hold B) statistics (``aggregate.summarize``)."""
    pair = pair_design(manifest, where or "the split")
    rows = video_outcomes(pair, records)
    if not any(r["role"] == "test" for r in rows):
        raise PhylawError(
            f"{where or 'the split'}: no scored video lies in a test quadrant of "
            f"{pair.study or 'the pair'} ({', '.join(pair.levels)})"
        )
    levels = {}
    for name in pair.levels:
        sel = [r for r in rows if r["level"] == name]
        if sel:
            levels[name] = {"role": sel[0]["role"], **_group(pair, sel, resamples, seed, name)}
    test = _group(pair, [r for r in rows if r["role"] == "test"], resamples, seed, "test")
    winner, loser = _winner(pair, test)
    return {
        "study": pair.study,
        "columns": list(pair.columns),
        "attributes": [NAMES.get(c, c) for c in pair.columns],
        "outcomes": list(outcome_labels(pair)),
        "levels": levels,
        "test": test,
        "winner": winner,
        "loser": loser,
    }


def _winner(pair: Pair, test: dict) -> tuple[str | None, str | None]:
    """(winner, loser) attribute names, or (None, None) when the lean's interval holds 0 or
    the lean is below ``MIN_LEAN``."""
    lean = test["lean"]
    a, b = (NAMES.get(c, c) for c in pair.columns)
    if lean["mean"] is None or abs(lean["mean"]) < MIN_LEAN:
        return None, None
    if lean["ci_low"] is not None and lean["ci_low"] > 0:
        return a, b
    if lean["ci_high"] is not None and lean["ci_high"] < 0:
        return b, a
    return None, None


def priority_order(results: list[dict]) -> str:
    """The attributes ranked by pair wins minus losses, 'colour > size > velocity > shape'
    ('~' between attributes of equal score; a note when some pair contradicts the ranking)."""
    score: dict[str, int] = {}
    for r in results:
        for name in r["attributes"]:
            score.setdefault(name, 0)
        if r["winner"]:
            score[r["winner"]] += 1
            score[r["loser"]] -= 1
    ranked = sorted(score, key=lambda n: -score[n])
    text = ranked[0] if ranked else ""
    for prev, name in zip(ranked, ranked[1:], strict=False):
        text += (" ~ " if score[prev] == score[name] else " > ") + name
    rank = {n: score[n] for n in ranked}
    against = [
        f"{r['loser']} > {r['winner']} expected, {r['winner']} won ({r['study']})"
        for r in results
        if r["winner"] and rank[r["winner"]] < rank[r["loser"]]
    ]
    return text + (f" (not a total order: {'; '.join(against)})" if against else "")


def _pct(stats: dict | None) -> str:
    if not stats or stats.get("mean") is None:
        return "-"
    lo, hi = stats.get("ci_low"), stats.get("ci_high")
    ci = f" [{100 * lo:.0f}, {100 * hi:.0f}]" if lo is not None and hi is not None else ""
    return f"{100 * stats['mean']:.0f}%{ci}"


def outcome_rows(result: dict) -> list[list[str]]:
    """Table rows: per level (tests first, then the pooled tests, then trained controls), the
    videos, each outcome's rate [95 % interval] and each continuous attribute's mean shift."""
    shift_cols = [c for c in result["columns"] if c not in CODES]
    groups = [(n, g) for n, g in result["levels"].items() if g["role"] == "test"]
    groups += [("all test quadrants", result["test"])]
    groups += [(f"{n} (trained)", g) for n, g in result["levels"].items() if g["role"] != "test"]
    rows = []
    for name, g in groups:
        shifts = []
        for c in shift_cols:
            st = g.get(f"shift/{c}") or {}
            shifts.append("-" if st.get("mean") is None else f"{st['mean']:+.2f}")
        rows.append(
            [result["study"], name, str(g["videos"])]
            + [_pct(g.get(f"rate/{x}")) for x in result["outcomes"]]
            + ["; ".join(f"{NAMES.get(c, c)} {s}" for c, s in zip(shift_cols, shifts, strict=True))
               or "-"]
        )  # fmt: skip
    return rows


def format_outcomes(result: dict) -> str:
    """A plain-text table of one pair's outcomes and its winner."""
    head = ["study", "level", "videos", *result["outcomes"], "mean shift to partner"]
    rows = [head] + outcome_rows(result)
    widths = [max(len(r[k]) for r in rows) for k in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines[:1] + ["-" * len(lines[0])] + lines[1:] + [describe_winner(result)])


def describe_winner(result: dict) -> str:
    """'colour > shape (hold colour - hold shape +1.00 [+1.00, +1.00])', or a tie the same
    way ('size ~ velocity (...)'), the difference taken winner minus loser."""
    a, b = result["attributes"]
    lean = result["test"]["lean"]
    first, second, sign = (a, b, 1.0) if result["winner"] in (None, a) else (b, a, -1.0)
    text = f"{first} {'>' if result['winner'] else '~'} {second}"
    if lean.get("mean") is None:
        return text
    lo, hi = sorted((sign * lean["ci_low"], sign * lean["ci_high"]))
    return (
        text + f" (hold {first} - hold {second} {sign * lean['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}])"
    )

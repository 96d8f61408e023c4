"""The named splits of the paper's Sec. 5 mechanism studies: a registry of ``Study`` records.

A study is data: a scenario, the training region, the evaluation space and blocks, the
labeller that names each evaluation video's region (its level), the default training size and
where the paper shows it. ``phylaw data build --study NAME --split train|eval`` builds one of
its splits through ``study_split``; a new study is a new entry of ``STUDIES``, not new code.
A collision study with a square hole in (v1, v2) (Fig. 6), evaluated on the authors' grid
(``two_balls_collision_square_out_eval.py``: 5 r1 x 5 r2 x 21 v1 in [0, 4.5] x 13 v2) and
labelled inside / outside the convex hull of the training set, reads::

    C = default_space("collision")  # r1, r2 in [0.5, 1.5], v1, v2 in [1, 4]
    Study(
        "collision",
        train=Region(C, exclude=(box(v1=(2, 3), v2=(2, 3)),)),
        eval_blocks=(Block(grid=(("r1", 5), ("r2", 5), ("v1", 21), ("v2", 13))),),
        labels="hull",
        train_size=300_000,
        paper="Sec. 5.1, Fig. 6",
        eval_space=C.with_(v1=(0.0, 4.5)),
    )

(registered below as ``collision-hole-2-3``). Several holes are several exclude boxes; the
L-shaped region of Fig. 6 is ``keep=(box(v1=(1, 2)), box(v2=(1, 2)))``.

Choices (reference 1.5 gives the authors' scripts; the README's "Studies" section says why):

* Uniform-motion studies use the uniform scenario's physics and placement (x1 rule, 24 frames
  in view) and the authors' code ranges r in [0.7, 1.4], v in [1, 4].
* Training sets are uniform draws over the training region, of one size for every arm of a
  study: 200K for the gap and kept-interval studies (the paper's Sec. 5.1 size; the authors'
  grid would give 50K-200K), 300K for the attribute pairs and the flip study (the authors'
  level-1 grids of colour-size and colour-velocity: 150K per training quadrant).
* Evaluation sets are the authors' grids: 121 v x 36 r = 4,356 for the gap studies and
  velocity-size; per quadrant 11 r x 31 v (colour-size, 1,364), 11 v x 36 r (colour-velocity,
  1,584), 5 r x 31 v (size-shape, 620), 16 v x 11 r (velocity-shape, 704). Colour-shape has no
  generator in the authors' repository: by analogy with the others, four quadrants of 10 r x
  35 v = 1,400, the paper's count; colour-ring likewise. Flip: 44 v over [1, 4] x 36 r = 1,584
  (the count of the authors' unused baseline evaluation), half below the training range.
* Colour vs shape trains on red discs and blue squares, as the Sec. 5.3 text says (the Fig. 8
  caption says blue balls and red squares, but then describes a blue ball, which would be a
  training case, turning into a square: only the text's version makes the caption's outcome a
  test of case matching). Colour vs ring trains on blue discs and red rings (A.6.2), rings of
  inner radius 0.5 r (``RING_INNER_RATIO``).
"""

from __future__ import annotations

from dataclasses import dataclass

from phylaw import PhylawError
from phylaw.data.labels import Block
from phylaw.data.regions import Box, Region, Space, box
from phylaw.data.regionsplit import RegionSplitSpec, default_space, region_split
from phylaw.physics.state import RING_INNER_RATIO, Colour, Shape


@dataclass(frozen=True)
class Study:
    """One mechanism study: ``train`` region, ``eval_blocks`` in ``eval_space`` (default: the
    training space) named by the labeller ``labels`` (``labels.LABELLERS``; ``quadrants`` for
    the ``quadrants`` labeller), ``train_size`` videos by default, and where the paper has it."""

    scenario: str
    train: Region
    eval_blocks: tuple[Block, ...]
    labels: str
    train_size: int
    paper: str
    eval_space: Space | None = None
    quadrants: tuple[Box, ...] = ()
    ring_inner_ratio: float = RING_INNER_RATIO


# --------------------------------------------------------------------------- declarations
U = default_space("uniform")  # r in [0.7, 1.4], v in [1, 4] (the authors' code)
C = default_space("collision")  # r1, r2 in [0.5, 1.5], v1, v2 in [1, 4]
FULL_GRID = (Block(grid=(("v", 121), ("r", 36))),)  # square_out_eval_4.4K: 4,356 videos
SMALL, LARGE = (0.7, 1.05), (1.05, 1.4)  # the authors' MID_R = 1.05
SLOW, FAST = (1.0, 2.5), (2.5, 4.0)
RED, BLUE = Colour.RED, Colour.BLUE
DISC, SQUARE, RING = Shape.DISC, Shape.SQUARE, Shape.RING


def _gap(lo: float, hi: float) -> Study:
    """Fig. 5 (1)-(3): velocities in (lo, hi) left out of training."""
    train = Region(U, exclude=(box(v=(lo, hi)),))
    return Study("uniform", train, FULL_GRID, "region", 200_000, "Sec. 5.1, Fig. 5 (1)-(3)")


def _keep(*intervals: tuple[float, float]) -> Study:
    """Fig. 5 (4)-(5): only these velocity intervals trained."""
    train = Region(U, keep=tuple(box(v=iv) for iv in intervals))
    return Study("uniform", train, FULL_GRID, "region", 200_000, "Sec. 5.1, Fig. 5 (4)-(5)")


def _pair(
    space: Space, trained: tuple[Box, Box], swapped: tuple[Box, Box], grid: dict, paper: str
) -> Study:
    """Sec. 5.3: two quadrants of two attributes trained; all four evaluated on a grid each
    (trained first), labelled by quadrant."""
    quadrants = trained + swapped
    blocks = tuple(Block(q, tuple(grid.items())) for q in quadrants)
    train = Region(space, keep=trained)
    return Study("uniform", train, blocks, "blocks", 300_000, paper, quadrants=quadrants)


STUDIES: dict[str, Study] = {
    "gap-1.25-3.75": _gap(1.25, 3.75),
    "gap-1.5-3.5": _gap(1.5, 3.5),
    "gap-1.75-3.25": _gap(1.75, 3.25),
    "gap-2-3": _gap(2.0, 3.0),
    "keep-3": _keep((1.0, 1.25), (2.375, 2.625), (3.75, 4.0)),
    "keep-4": _keep((1.0, 1.25), (1.875, 2.125), (2.875, 3.125), (3.75, 4.0)),
    "flip": Study(
        "uniform",
        Region(U.with_(v=(2.5, 4.0), colour=BLUE)),  # the authors' baseline2: blue balls
        (Block(grid=(("v", 44), ("r", 36))),),
        "region",
        300_000,
        "Sec. 5.2, Fig. 7 (train with data.hflip = 0.5 for Set-2)",
        eval_space=U.with_(colour=BLUE),
    ),
    "colour-size": _pair(
        U.with_(colour=(RED, BLUE)),
        (box("red-small", colour=RED, r=SMALL), box("blue-large", colour=BLUE, r=LARGE)),
        (box("blue-small", colour=BLUE, r=SMALL), box("red-large", colour=RED, r=LARGE)),
        {"r": 11, "v": 31},
        "Sec. 5.3, Fig. 9 (2)",
    ),
    "colour-velocity": _pair(
        U.with_(colour=(RED, BLUE)),
        (box("red-slow", colour=RED, v=SLOW), box("blue-fast", colour=BLUE, v=FAST)),
        (box("blue-slow", colour=BLUE, v=SLOW), box("red-fast", colour=RED, v=FAST)),
        {"v": 11, "r": 36},
        "Sec. 5.3, Fig. 9 (3)",
    ),
    "size-shape": _pair(
        U.with_(shape=(DISC, SQUARE)),
        (box("disc-small", shape=DISC, r=SMALL), box("square-large", shape=SQUARE, r=LARGE)),
        (box("square-small", shape=SQUARE, r=SMALL), box("disc-large", shape=DISC, r=LARGE)),
        {"r": 5, "v": 31},
        "Sec. 5.3, Fig. 8 (2)",
    ),
    "velocity-shape": _pair(
        U.with_(shape=(DISC, SQUARE)),
        (box("disc-slow", shape=DISC, v=SLOW), box("square-fast", shape=SQUARE, v=FAST)),
        (box("square-slow", shape=SQUARE, v=SLOW), box("disc-fast", shape=DISC, v=FAST)),
        {"v": 16, "r": 11},
        "Sec. 5.3, Fig. 8 (3)",
    ),
    "colour-shape": _pair(
        U.with_(colour=(RED, BLUE), shape=(DISC, SQUARE)),
        (box("red-disc", colour=RED, shape=DISC), box("blue-square", colour=BLUE, shape=SQUARE)),
        (box("blue-disc", colour=BLUE, shape=DISC), box("red-square", colour=RED, shape=SQUARE)),
        {"r": 10, "v": 35},
        "Sec. 5.3, Fig. 8 (1)",
    ),
    "colour-ring": _pair(
        U.with_(colour=(RED, BLUE), shape=(DISC, RING)),
        (box("blue-disc", colour=BLUE, shape=DISC), box("red-ring", colour=RED, shape=RING)),
        (box("red-disc", colour=RED, shape=DISC), box("blue-ring", colour=BLUE, shape=RING)),
        {"r": 10, "v": 35},
        "App. A.6.2, Fig. 14",
    ),
    "velocity-size": Study(
        "uniform",
        Region(U, keep=(box("small-slow", r=SMALL, v=SLOW), box("large-fast", r=LARGE, v=FAST))),
        FULL_GRID,
        "quadrants",
        300_000,
        "Sec. 5.3, Fig. 9 (1)",
        quadrants=(
            box("small-slow", r=SMALL, v=SLOW),
            box("large-fast", r=LARGE, v=FAST),
            box("small-fast", r=SMALL, v=FAST),
            box("large-slow", r=LARGE, v=SLOW),
        ),
    ),
    "collision-hole-2-3": Study(
        "collision",
        Region(C, exclude=(box(v1=(2, 3), v2=(2, 3)),)),
        (Block(grid=(("r1", 5), ("r2", 5), ("v1", 21), ("v2", 13))),),
        "hull",
        300_000,
        "Sec. 5.1, Fig. 6",
        eval_space=C.with_(v1=(0.0, 4.5)),
    ),
}


def get_study(name: str) -> Study:
    """The study called ``name``; a clear error lists the valid names."""
    try:
        return STUDIES[name]
    except KeyError:
        raise PhylawError(f"unknown study {name!r}; choose one of: {', '.join(STUDIES)}") from None


def study_split(
    name: str,
    split: str,
    size: str | int | None = None,
    seed: int = 0,
    grid: tuple[tuple[str, int], ...] = (),
) -> RegionSplitSpec:
    """The ``split`` (train or eval) of study ``name``: ``size`` videos for training (default
    the study's ``train_size``); evaluation grids fix their own count. ``grid`` ((param,
    count), ...) replaces those counts in every evaluation block (a coarser grid of the same
    regions for a small machine: ``(("v", 31), ("r", 4))``)."""
    st = get_study(name)
    if split not in ("train", "eval"):
        raise PhylawError(f"a study has splits train and eval, not {split!r}")
    if grid and split != "eval":
        raise PhylawError("a grid applies to the evaluation split of a study (--split eval)")
    blocks = _regrid(st, dict(grid)) if grid else st.eval_blocks
    if split == "train":
        size = st.train_size if size is None else size
        return region_split(
            st.scenario, "train", size, seed, st.train,
            ring_inner_ratio=st.ring_inner_ratio, study=name,
        )  # fmt: skip
    return region_split(
        st.scenario, "eval", size, seed, st.train, st.eval_space, blocks, st.labels,
        st.quadrants, st.ring_inner_ratio, name,
    )  # fmt: skip


def _regrid(st: Study, counts: dict[str, int]) -> tuple[Block, ...]:
    """The study's evaluation blocks with the grid counts of ``counts`` replaced."""
    names = {n for b in st.eval_blocks for n, _ in b.grid}
    for n, c in counts.items():
        if n not in names:
            valid = ", ".join(sorted(names))
            raise PhylawError(f"this study's evaluation grid has no count for {n!r}; give {valid}")
        if not isinstance(c, int) or c < 1:
            raise PhylawError(f"evaluation grid: {n}={c} needs a count >= 1")
    return tuple(
        Block(b.box, tuple((n, counts.get(n, c)) for n, c in b.grid)) for b in st.eval_blocks
    )

"""Splits drawn from regions of parameter space: the Sec. 5 studies and ``--exclude/--keep``.

A ``RegionSplitSpec`` is, like every split, a pure function of its fields: candidate i of a
training split is point i of a ``count``-point stratified uniform draw over the training
support (``regions.Region.sample``); candidate i of an evaluation split is point i of its blocks
(grids in C order, block after block, or uniform draws in each block's share), labelled by the
spec's labeller (``labels.LABELLERS``). Its level is that label, an index into ``levels``.
Placement draws come from ``key("placement")`` and the candidate index, as in ``data.spaces``,
so shards, workers and order change nothing.

Attributes. When the space declares attribute domains, every video stores its bodies' colours
and shapes as extra parameter columns after the scenario's (``[r, v, colour, shape]``, the
authors' ``init_streams`` of their Sec. 5.3 variants, reference 1.5). Why columns rather than
separate arrays: they are per-video parameters like r and v (a region's boxes constrain them,
the numeric-condition model of A.6.1 reads them as the condition), and every reader of
``params`` (exports, the HDF5 layout, ``phylaw data info``) carries them with no new code. The
manifest's body table names the columns (``colour_columns``, ``shape_columns``), gives a slot's
colour or shape where it is the same for every video (``null`` where it varies) and the ring
inner radius as a fraction of the radius (``ring_inner_ratio``).

Boxes. The manifest's ``regions`` describes the split in words (``support``, ``blocks``, ...)
and as records (``Box.record``: ``{name, bounds: {param: [lo, hi]}, values: {attr: [codes]}}``):
``train_space`` (the training space's ranges and domains), ``train_boxes`` (the kept boxes: a
pair study's two trained quadrants), ``exclude_boxes``, ``block_boxes`` (the evaluation blocks'
boxes, in order) and ``quadrant_boxes``. Evaluation reads these (it never imports the study
registry): a video's level names its block or quadrant, whose box says which attribute values
it was conditioned on, and the trained boxes say which values the training partner had.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from phylaw import PhylawError
from phylaw.data.labels import Block, get_labeller
from phylaw.data.regions import Box, Region, Space, attribute_kind
from phylaw.data.rng import derive_key
from phylaw.data.spaces import RANGES, parse_count
from phylaw.data.spaces import bodies_table as scenario_bodies
from phylaw.physics.scenarios import get_scenario
from phylaw.physics.state import RING_INNER_RATIO

REGION_SPLITS = ("train", "eval")


@dataclass(frozen=True)
class RegionSplitSpec:
    """A resolved region split (build it with ``data.build.build_split``).

    ``support``: the training support (where a training split draws; what evaluation labels
    refer to); ``space``: the space the split's points live in (the support's space for
    training; it may reach beyond it for evaluation); ``blocks``: the evaluation blocks;
    ``labels``: the labeller's name; ``quadrants``: named boxes for the ``quadrants`` labeller;
    ``levels``: the level names the candidates take, in report order; ``study``: the registry
    name when it comes from ``data.studies``.
    """

    scenario: str
    split: str
    size: str
    count: int
    seed: int
    support: Region
    space: Space
    blocks: tuple[Block, ...] = ()
    labels: str = "region"
    quadrants: tuple[Box, ...] = ()
    levels: tuple[str, ...] = ("support",)
    ring_inner_ratio: float = RING_INNER_RATIO
    study: str = ""

    oversample = False  # placement never needs oversampling here (build reads the flag)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Columns of ``params``: the scenario's parameters, then attribute columns."""
        return self.space.names

    @property
    def level_names(self) -> tuple[str, ...]:
        """The split's levels (``manifest['levels']``)."""
        return self.levels

    def key(self, purpose: str) -> int:
        """The key of this split's draws for ``purpose`` (params, placement)."""
        parts = (self.scenario, self.split, self.count, self.seed, self.study)
        return derive_key(*parts, repr(self.support), repr(self.space), repr(self.blocks), purpose)


def region_split(
    scenario: str,
    split: str,
    size: str | int | None,
    seed: int,
    support: Region,
    space: Space | None = None,
    blocks: tuple[Block, ...] = (),
    labels: str = "region",
    quadrants: tuple[Box, ...] = (),
    ring_inner_ratio: float = RING_INNER_RATIO,
    study: str = "",
) -> RegionSplitSpec:
    """Validate and resolve a region split (one clear ``PhylawError`` per mistake).

    ``size``: videos of a training split, or of an evaluation split drawn uniformly; an
    evaluation grid fixes its own count (``size`` must then be None or that count).
    """
    get_scenario(scenario)
    if split not in REGION_SPLITS:
        raise PhylawError(f"unknown split {split!r} for a region; choose: train, eval")
    if not isinstance(seed, int) or seed < 0:
        raise PhylawError(f"invalid seed {seed!r}: give a non-negative integer")
    if not 0 < ring_inner_ratio < 1:
        raise PhylawError(
            f"invalid ring inner radius {ring_inner_ratio:g} x r: a ring's inner radius must be "
            "above 0 and below its outer one (give a fraction in (0, 1))"
        )
    labeller = get_labeller(labels)
    space = support.space if space is None or split == "train" else space
    if (space.scenario, space.attributes) != (scenario, support.space.attributes):
        raise PhylawError("the evaluation space must have the support's scenario and attributes")
    if split == "train":
        count = parse_count(size if size is not None else "")
        levels = train_levels(support)
        spec = RegionSplitSpec(scenario, split, str(count), count, seed, support, space)
        return replace(spec, levels=levels, ring_inner_ratio=ring_inner_ratio, study=study)
    blocks = blocks or (Block(),)
    count = _eval_count(blocks, space, size)
    spec = RegionSplitSpec(
        scenario, split, str(count), count, seed, support, space, blocks, labels, quadrants,
        labeller.levels(support, blocks, quadrants), ring_inner_ratio, study,
    )  # fmt: skip
    if labels == "blocks" and len({b.name for b in blocks} - {""}) != len(blocks):
        raise PhylawError("labels 'blocks' need distinct, non-empty block names")
    _, names = _eval_points(spec, np.arange(count))
    present = [lv for lv in spec.levels if lv in set(names)]
    return replace(spec, levels=tuple(present))


def _eval_count(blocks: tuple[Block, ...], space: Space, size) -> int:
    for b in blocks:
        b.check(space)
    gridded = {b.is_grid(space) for b in blocks}
    if len(gridded) > 1:
        raise PhylawError("evaluation blocks must be all grids or all uniform draws")
    if gridded == {False}:
        return parse_count(size if size is not None else "")
    count = sum(b.size(space) for b in blocks)
    if size not in (None, "default") and parse_count(size) != count:
        raise PhylawError(
            f"this evaluation grid holds {count} videos; leave out --size (got {size})"
        )
    return count


def train_levels(support: Region) -> tuple[str, ...]:
    """Levels of a training split: the names of the keep boxes its cells fall in (unnamed or
    none: ``support``), in the order of the boxes."""
    owners = support.cells().owner
    names = [_owner_name(support, k) for k in np.unique(owners)]
    order = [b.name or "support" for b in support.keep] or ["support"]
    return tuple(dict.fromkeys(n for n in order if n in names))


def _owner_name(support: Region, owner: int) -> str:
    return support.keep[owner].name or "support" if owner >= 0 else "support"


def block_counts(spec: RegionSplitSpec) -> np.ndarray:
    """Candidates per evaluation block, int64 [blocks] (grids: their size; draws: equal
    contiguous shares of ``count``)."""
    if spec.blocks[0].is_grid(spec.space):  # all blocks are grids, or all draws
        return np.array([b.size(spec.space) for b in spec.blocks], dtype=np.int64)
    n = len(spec.blocks)
    return np.bincount(np.arange(spec.count) * n // spec.count, minlength=n).astype(np.int64)


def _eval_points(spec: RegionSplitSpec, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameters [n, P] and level names [n] of evaluation candidates ``index``."""
    counts = block_counts(spec)
    starts = np.concatenate([[0], np.cumsum(counts)])
    block = np.searchsorted(starts, index, side="right") - 1
    params = np.empty((len(index), len(spec.space.names)))
    for b in np.unique(block):
        sel = block == b
        local = index[sel] - starts[b]
        blk = spec.blocks[b]
        if blk.is_grid(spec.space):
            params[sel] = blk.points(spec.space, local)
        else:
            key = spec.key(f"params-{b}")
            params[sel] = blk.region(spec.space).sample(key, local, int(counts[b]))[0]
    labeller = get_labeller(spec.labels)
    names = labeller.label(spec.support, spec.blocks, spec.quadrants, params, block)
    return params, names


def region_params(spec: RegionSplitSpec, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Parameters [n, P] float64 and level codes [n] int8 of candidates ``start..stop-1``."""
    index = np.arange(start, stop, dtype=np.int64)
    if spec.split == "train":
        params, owner = spec.support.sample(spec.key("params"), index, spec.count)
        names = np.array([_owner_name(spec.support, k) for k in range(-1, len(spec.support.keep))])
        labels = names[owner + 1]
    else:
        params, labels = _eval_points(spec, index)
    code = {name: k for k, name in enumerate(spec.levels)}
    return params, np.array([code[x] for x in labels], dtype=np.int8)


def bodies_table(spec: RegionSplitSpec) -> dict:
    """The manifest's body table of a region split (module docstring)."""
    table = dict(scenario_bodies(spec.scenario), ring_inner_ratio=spec.ring_inner_ratio)
    names = spec.space.names
    for kind in ("colour", "shape"):
        cols = [c for c in spec.space.attributes if attribute_kind(c) == kind]
        if cols:
            domains = [spec.space.domain_of(c) for c in cols]
            table[f"{kind}_columns"] = [names.index(c) for c in cols]
            table[f"{kind}_values"] = [list(d) for d in domains]
            table[kind] = [d[0] if len(d) == 1 else None for d in domains]
    return table


def manifest_fields(spec: RegionSplitSpec) -> dict:
    """What the manifest says about a region split besides the common fields."""
    fields = {
        "study": spec.study or None,
        "regions": {
            "support": spec.support.describe(),
            "labels": spec.labels if spec.split == "eval" else "keep boxes",
            "space": spec.space.describe(),
            "blocks": [f"{b.box.describe()} grid {dict(b.grid)}" for b in spec.blocks],
            "quadrants": [q.describe() for q in spec.quadrants],
            # the same as records (``Box.record``), for evaluation (attribute outcomes)
            "train_space": Box("", spec.support.space.ranges, spec.support.space.domains).record(),
            "train_boxes": [b.record() for b in spec.support.keep],
            "exclude_boxes": [b.record() for b in spec.support.exclude],
            "block_boxes": [b.box.record() for b in spec.blocks],
            "quadrant_boxes": [q.record() for q in spec.quadrants],
        },
    }
    return fields


def default_space(scenario: str, ranges: str = "code") -> Space:
    """The scenario's in-distribution ranges (``data.spaces.RANGES``) as a ``Space``."""
    if ranges not in RANGES:
        raise PhylawError(f"unknown ranges {ranges!r}; choose one of: {', '.join(RANGES)}")
    table = RANGES[ranges][scenario]
    names = get_scenario(scenario).PARAM_NAMES
    return Space(scenario, tuple((n, *table.id_interval(n)) for n in names))


def level_candidates(spec: RegionSplitSpec, chunk: int = 1 << 20) -> np.ndarray:
    """Candidates per level before placement drops, int64 [levels]."""
    counts = np.zeros(len(spec.levels), dtype=np.int64)
    for s in range(0, spec.count, chunk):
        code = region_params(spec, s, min(s + chunk, spec.count))[1]
        counts += np.bincount(code, minlength=len(spec.levels))
    return counts


# ------------------------------------------------------------------------- JSON records
def _space(d: dict) -> Space:
    return Space(d["scenario"], tuple(map(tuple, d["ranges"])), tuple(map(tuple, d["domains"])))


def _box(d: dict) -> Box:
    return Box(d["name"], tuple(map(tuple, d["bounds"])), tuple(map(tuple, d["values"])))


def spec_from_record(d: dict) -> RegionSplitSpec:
    """The spec of a manifest's ``spec`` record (``data.build.spec_record``)."""
    support = d["support"]
    region = Region(
        _space(support["space"]),
        tuple(map(_box, support["keep"])),
        tuple(map(_box, support["exclude"])),
    )
    blocks = tuple(Block(_box(b["box"]), tuple(map(tuple, b["grid"]))) for b in d["blocks"])
    return RegionSplitSpec(
        d["scenario"], d["split"], d["size"], d["count"], d["seed"], region, _space(d["space"]),
        blocks, d["labels"], tuple(map(_box, d["quadrants"])), tuple(d["levels"]),
        d["ring_inner_ratio"], d["study"],
    )  # fmt: skip


def is_region_record(d: dict | None) -> bool:
    """True for the ``spec`` record of a region split."""
    return isinstance(d, dict) and "support" in d

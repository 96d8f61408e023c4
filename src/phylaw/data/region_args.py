"""Region splits from command-line text: ``--exclude``, ``--keep``, ``--range``, ``--grid``.

Syntax. A box is a comma-separated list of ``NAME=VALUE`` items; an item without ``=``
continues the previous name. A numeric value is an interval ``LO:HI``; several intervals of one
parameter make several boxes (their union), several parameters one box (their product)::

    --exclude v=2:3                      the gap (2, 3) in v
    --keep v=1:1.25,2.375:2.625,3.75:4   three kept intervals (must not overlap)
    --exclude v1=2:3,v2=2:3              a square hole in (v1, v2); repeat the flag for more
    --keep colour=red,r=0.7:1.05 --keep colour=blue,r=1.05:1.4   two attribute quadrants
    --range v=2.5:4                      the training range of v (default: the ID range)
    --grid v=121,r=36                    evaluation: a grid of 121 x 36 points
    --eval-range v=0:6                   evaluation: reach beyond the training range
    --colour red,blue --shape disc,ring  bodies vary per video (any palette colour; disc,
                                         square, ring); --ring-inner 0.5 (ring inner radius / r)

An attribute value list (``colour=red,blue``) stays in one box. Every mistake (an unknown
parameter, colour or shape, an empty or overlapping interval, a region with nothing left, a
ring inner radius not below the outer one) raises one ``PhylawError`` line.
"""

from __future__ import annotations

import math
from itertools import product

from phylaw import PhylawError
from phylaw.data.labels import Block
from phylaw.data.regions import (
    ATTRIBUTES,
    Box,
    Region,
    Space,
    attribute_kind,
    attribute_names,
)
from phylaw.data.regionsplit import RegionSplitSpec, default_space, region_split
from phylaw.physics.state import RING_INNER_RATIO, Shape
from phylaw.render.palette import colour_by_name


def parse_items(text: str, flag: str) -> list[tuple[str, list[str]]]:
    """``"v1=2:3,v2=2:3"`` -> ``[("v1", ["2:3"]), ("v2", ["2:3"])]``; items without ``=``
    continue the previous name."""
    items: list[tuple[str, list[str]]] = []
    for token in (t.strip() for t in str(text).split(",")):
        if "=" in token:
            name, _, value = token.partition("=")
            items.append((name.strip(), [value.strip()]))
        elif items and token:
            items[-1][1].append(token)
        else:
            raise PhylawError(f"{flag} {text!r}: give NAME=VALUE items, e.g. {flag} v=2:3")
    return items


def parse_interval(text: str, name: str, flag: str) -> tuple[float, float]:
    """``"2:3"`` -> (2.0, 3.0); one clear error for anything else (or lo >= hi)."""
    lo, sep, hi = text.partition(":")
    try:
        a, b = float(lo), float(hi)
    except ValueError:
        a = b = math.nan
    if not sep or not (math.isfinite(a) and math.isfinite(b)) or a >= b:
        raise PhylawError(f"{flag} {name}={text}: give an interval LO:HI with LO < HI")
    return a, b


def parse_codes(kind: str, names: list[str]) -> tuple[int, ...]:
    """Colour or shape names -> codes (``colour_by_name``; shapes disc, square, ring)."""
    if kind == "colour":
        return tuple(int(colour_by_name(n)) for n in names)
    try:
        return tuple(int(Shape[n.strip().upper()]) for n in names)
    except KeyError:
        valid = ", ".join(s.name.lower() for s in Shape)
        raise PhylawError(f"unknown shape in {','.join(names)!r}; valid shapes: {valid}") from None


def parse_boxes(text: str, space: Space, flag: str) -> tuple[Box, ...]:
    """The boxes of one ``--keep`` or ``--exclude`` value (module docstring)."""
    numeric, values = [], []
    valid = space.numeric + attribute_names(space.scenario)
    for name, parts in parse_items(text, flag):
        if name not in valid:
            raise PhylawError(
                f"{flag}: {space.scenario} has no parameter {name!r}; valid: {', '.join(valid)}"
            )
        if name in space.numeric:
            numeric.append([(name, *parse_interval(p, name, flag)) for p in parts])
        else:
            values.append((name, parse_codes(attribute_kind(name), parts)))
    return tuple(Box("", bounds, tuple(values)) for bounds in product(*numeric))


def parse_ranges(text: str, flag: str) -> dict[str, tuple[float, float]]:
    """``"v=2.5:4,r=0.7:1"`` -> {name: (lo, hi)}."""
    out = {}
    for name, parts in parse_items(text, flag):
        if len(parts) != 1:
            raise PhylawError(f"{flag} {name}: give one interval LO:HI")
        out[name] = parse_interval(parts[0], name, flag)
    return out


def parse_grid(text: str) -> tuple[tuple[str, int], ...]:
    """``"v=121,r=36"`` -> (("v", 121), ("r", 36))."""
    out = []
    for name, parts in parse_items(text, "--grid"):
        if len(parts) != 1 or not parts[0].isdigit() or int(parts[0]) < 1:
            raise PhylawError(f"--grid {name}={','.join(parts)}: give a count >= 1")
        out.append((name, int(parts[0])))
    return tuple(out)


def _space(scenario: str, ranges: str, range_text: str, colours: str, shapes: str) -> Space:
    space = default_space(scenario, ranges)
    changes: dict = dict(parse_ranges(range_text, "--range")) if range_text else {}
    for kind, text in (("colour", colours), ("shape", shapes)):
        if text:
            codes = parse_codes(kind, [t for t in text.split(",") if t.strip()] or [text])
            enums = tuple(ATTRIBUTES[kind](c) for c in codes)
            for column in attribute_names(scenario):
                if attribute_kind(column) == kind:
                    changes[column] = enums
    return space.with_(**changes) if changes else space


def resolve_region_args(
    scenario: str,
    split: str,
    size: str | None,
    seed: int,
    ranges: str = "code",
    *,
    range_text: str = "",
    keep: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    grid: str = "",
    eval_range: str = "",
    colours: str = "",
    shapes: str = "",
    ring_inner: float | None = None,
    labels: str = "region",
) -> RegionSplitSpec:
    """A region split from command-line text (module docstring); ``split`` train or eval."""
    space = _space(scenario, ranges, range_text, colours, shapes)
    support = Region(
        space,
        keep=tuple(b for text in keep for b in parse_boxes(text, space, "--keep")),
        exclude=tuple(b for text in exclude for b in parse_boxes(text, space, "--exclude")),
    )
    ratio = RING_INNER_RATIO if ring_inner is None else float(ring_inner)
    if split == "train":
        if grid or eval_range:
            raise PhylawError("--grid and --eval-range describe an evaluation split (--split eval)")
        return region_split(scenario, "train", size or "30K", seed, support, ring_inner_ratio=ratio)
    extent = space.with_(**parse_ranges(eval_range, "--eval-range")) if eval_range else space
    blocks = (Block(grid=parse_grid(grid)),) if grid else (Block(),)
    size = size if grid else (size or "1000")
    return region_split(
        scenario, "eval", size, seed, support, extent, blocks, labels, ring_inner_ratio=ratio
    )

"""Named colours: the one source of truth for every RGB value phylaw draws or parses.

The ball colours are the authors' (reference section 1.1: ball 1 red, ball 2 blue); GREEN, GRAY and
BLACK are PHYRE's object colours; PURPLE is an extra distinguishable colour for new scenes;
PHYRE_RED is PHYRE's red (``#f34f46``), the user ball of the combinatorial scenes (reference 3.1).
The background is white, as in the authors' videos.
"""

from __future__ import annotations

import numpy as np

from phylaw import PhylawError
from phylaw.physics.state import Colour

PALETTE: dict[Colour, tuple[int, int, int]] = {
    Colour.RED: (255, 0, 0),
    Colour.BLUE: (0, 0, 255),
    Colour.GREEN: (0, 160, 0),
    Colour.GRAY: (185, 202, 210),
    Colour.BLACK: (0, 0, 0),
    Colour.PURPLE: (75, 74, 164),
    Colour.PHYRE_RED: (243, 79, 70),
}
BACKGROUND: tuple[int, int, int] = (255, 255, 255)


def palette_table() -> np.ndarray:
    """RGB of every colour as a uint8 table [num_colours, 3], row k = ``PALETTE[Colour(k)]``."""
    return np.array([PALETTE[Colour(k)] for k in range(len(Colour))], dtype=np.uint8)


def colour_by_name(name: str) -> Colour:
    """The ``Colour`` called ``name`` (case-insensitive), e.g. ``"red"`` -> ``Colour.RED``.

    Raises ``PhylawError`` naming the valid colours when ``name`` is unknown.
    """
    try:
        return Colour[name.strip().upper()]
    except (KeyError, AttributeError):
        valid = ", ".join(c.name.lower() for c in Colour)
        raise PhylawError(f"unknown colour {name!r}; valid colours: {valid}") from None

"""Registry of the fundamental scenarios: name -> module with the same pure interface.

Each module exposes ``PARAM_NAMES``, ``SIZE_PARAMS`` (the body sizes among them, in slot
order), ``NUM_BODIES``, ``NUM_UNIFORMS``,
``simulate(params, u, times)`` returning ``(pos0, pos, vel, valid)``,
``exact(params, pos0, times)`` returning ``(pos, vel)`` and ``bodies(params)``.
"""

from __future__ import annotations

from types import ModuleType

from phylaw import PhylawError
from phylaw.physics import collision, parabola, uniform

SCENARIOS: dict[str, ModuleType] = {
    "uniform": uniform,
    "collision": collision,
    "parabola": parabola,
}


def get_scenario(name: str) -> ModuleType:
    """The scenario module called ``name``; a clear error lists the valid names."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise PhylawError(
            f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}"
        ) from None

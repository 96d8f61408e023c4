"""The shared state model: bodies, frame timing and trajectories, batch-first numpy arrays.

Two trajectory records: ``Trajectory`` (the fundamental scenarios: discs and squares by their
``Bodies``) and ``SceneTrajectory`` (the multi-object scenes: padded body slots, each a union of
convex parts, with its colour and whether it moves). A record carries what the renderer and the
evaluator need, so neither looks anything up in a simulator.

World: a square of ``WORLD_SIZE`` x ``WORLD_SIZE`` units, x to the right, y up, no walls.
Frame timing follows the authors' Box2D loop (reference section 1.1): the engine steps at
0.01 s and records a frame *after* every 10th step starting with step 0, so frame k shows the
state at ``t_k = 0.01 + 0.1 k`` seconds. Keeping that offset makes our positions match the
``position_streams`` of the authors' released files exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

import numpy as np

WORLD_SIZE = 10.0  # world units; the world is [0, WORLD_SIZE]^2
NUM_FRAMES = 32
FRAME_DT_S = 0.1  # seconds between frames
FRAME_OFFSET_S = 0.01  # time of frame 0 (one engine step after t = 0)


class Shape(IntEnum):
    """Body shapes. ``size`` is the radius of a disc or ring and the half side of a square.

    Codes are the authors' (reference 1.5: 0 = circle, 1 = rectangle); RING (A.6.2, Fig. 14) is
    an annulus of outer radius ``size`` and inner radius ``Bodies.inner``.
    """

    DISC = 0
    SQUARE = 1
    RING = 2


RING_INNER_RATIO = 0.5  # default inner radius of a ring, as a fraction of its outer radius


class Colour(IntEnum):
    """Colour names; their RGB values live in ``phylaw.render.palette`` (one source of truth)."""

    RED = 0
    BLUE = 1
    GREEN = 2
    GRAY = 3
    BLACK = 4
    PURPLE = 5
    PHYRE_RED = 6  # the red of PHYRE's user ball (combinatorial scenes)


def frame_times(
    num_frames: int = NUM_FRAMES, dt_s: float = FRAME_DT_S, offset_s: float = FRAME_OFFSET_S
) -> np.ndarray:
    """Times of the recorded frames, ``offset_s + dt_s * k`` for k < num_frames. Shape [T]."""
    return offset_s + dt_s * np.arange(num_frames, dtype=np.float64)


@dataclass(frozen=True)
class Bodies:
    """Attributes of N bodies in each of B scenes (all arrays [B, N]).

    ``size``: radius (disc, ring) or half side (square) in world units; ``shape``: ``Shape``
    codes; ``colour``: ``Colour`` codes; ``inner``: inner radius of rings in world units (read
    only where ``shape`` is RING; None: ``RING_INNER_RATIO * size``). All bodies share one
    density, so mass is proportional to ``size**2`` (the authors' evaluator uses m = r^2; a
    constant factor cancels in every law).
    """

    size: np.ndarray
    shape: np.ndarray
    colour: np.ndarray
    inner: np.ndarray | None = None

    @property
    def mass(self) -> np.ndarray:
        """Relative mass ``size**2``, [B, N]."""
        return self.size.astype(np.float64) ** 2

    def __getitem__(self, idx) -> Bodies:
        inner = None if self.inner is None else self.inner[idx]
        return Bodies(self.size[idx], self.shape[idx], self.colour[idx], inner)

    @property
    def area(self) -> np.ndarray:
        """Area [B, N] in world units^2: pi r^2 (disc), 4 s^2 (square), pi (r^2 - q^2) (ring)."""
        r = self.size.astype(np.float64)
        q = self.inner_radius()
        return np.where(self.shape == Shape.SQUARE, 4.0 * r**2, np.pi * (r**2 - q**2))

    def inner_radius(self) -> np.ndarray:
        """Inner radius [B, N] in world units: ``inner`` (or the default ratio) on rings, 0 on
        every other shape."""
        inner = RING_INNER_RATIO * self.size if self.inner is None else self.inner
        return np.where(self.shape == Shape.RING, inner, 0.0)


@dataclass(frozen=True)
class Trajectory:
    """Positions (and velocities, when known exactly) of B scenes over T frames.

    ``times`` [T] seconds; ``pos`` [B, T, N, 2] world units; ``vel`` [B, T, N, 2] world units/s
    or ``None`` when only positions are known (e.g. imported files).
    """

    times: np.ndarray
    pos: np.ndarray
    vel: np.ndarray | None
    bodies: Bodies

    @property
    def batch_size(self) -> int:
        return self.pos.shape[0]

    @property
    def num_frames(self) -> int:
        return self.pos.shape[1]

    def __getitem__(self, idx) -> Trajectory:
        vel = None if self.vel is None else self.vel[idx]
        return Trajectory(self.times, self.pos[idx], vel, self.bodies[idx])

    def at_frames(self, frames) -> Trajectory:
        """The same scenes at the frames ``frames`` (indices into T) only."""
        frames = np.asarray(frames)
        vel = None if self.vel is None else self.vel[:, frames]
        return Trajectory(self.times[frames], self.pos[:, frames], vel, self.bodies)


def discs(size: np.ndarray, colours: tuple[Colour, ...]) -> Bodies:
    """Bodies that are all discs: ``size`` [B, N] radii, one colour per body slot."""
    size = np.asarray(size, dtype=np.float64)
    b, n = size.shape
    colour = np.broadcast_to(np.asarray(colours, dtype=np.int8), (b, n)).copy()
    return Bodies(size, np.full((b, n), Shape.DISC, dtype=np.int8), colour)


def lerp(lo: np.ndarray | float, hi: np.ndarray | float, u: np.ndarray) -> np.ndarray:
    """``lo + (hi - lo) * u``: maps uniform draws u in [0, 1) onto [lo, hi)."""
    return lo + (np.asarray(hi) - lo) * u


@dataclass(frozen=True)
class SceneTrajectory:
    """B multi-object scenes over T frames, padded to N body slots (``physics.scenes``).

    ``times`` [T] s; ``pos`` [B, T, N, 2] body origins (world units) and ``angle`` [B, T, N]
    radians, NaN in empty slots; ``kind`` int8 [B, N] (-1: empty slot) and ``dims`` float32
    [B, N, 4] (the simulator's description); and what it implies, for the renderer and the
    evaluator: ``colour`` int8 [B, N] (``Colour``; -1 empty), ``dynamic`` bool [B, N], ``parts``
    float64 [B, N, P, 4, 2] convex quads in body coordinates (NaN where a body has fewer) and
    ``radius`` float64 [B, N] (the disc of a ball, 0 for polygon bodies, NaN for empty slots).
    Build one with ``physics.scenes.scene_record``.
    """

    times: np.ndarray
    pos: np.ndarray
    angle: np.ndarray
    kind: np.ndarray
    dims: np.ndarray
    colour: np.ndarray
    dynamic: np.ndarray
    parts: np.ndarray
    radius: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.pos.shape[0]

    @property
    def num_frames(self) -> int:
        return self.pos.shape[1]

    @property
    def present(self) -> np.ndarray:
        """Used body slots, bool [B, N]."""
        return np.asarray(self.kind) >= 0

    def __getitem__(self, idx) -> SceneTrajectory:
        per_body = ("kind", "dims", "colour", "dynamic", "parts", "radius")
        return replace(
            self,
            pos=self.pos[idx],
            angle=self.angle[idx],
            **{k: getattr(self, k)[idx] for k in per_body},
        )

    def at_frames(self, frames) -> SceneTrajectory:
        """The same scenes at the frames ``frames`` (indices into T) only."""
        frames = np.asarray(frames)
        return replace(
            self, times=self.times[frames], pos=self.pos[:, frames], angle=self.angle[:, frames]
        )

    def with_poses(self, pos: np.ndarray, angle: np.ndarray) -> SceneTrajectory:
        """The same bodies at other poses (``pos`` [B, T', N, 2], ``angle`` [B, T', N]; NaN
        hides a body), e.g. layers of a scene drawn body by body."""
        times = self.times if pos.shape[1] == len(self.times) else np.zeros(pos.shape[1])
        return replace(self, times=times, pos=pos, angle=angle)

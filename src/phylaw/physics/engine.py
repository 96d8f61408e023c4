"""Rigid-body engine adapter (pymunk / Chipmunk2D) for multi-object scenes.

Scenes without a closed form (the combinatorial PHYRE-style scenes) are stepped here. Input is
an engine-neutral list of ``RigidBody`` (convex polygons and discs in body coordinates, world
units); output the body origins and angles at the requested steps. Nothing here knows object
kinds or pixels.

Constants (``PhyreConstants``) are PHYRE's Box2D settings (reference 3.1): dt = 1/60 s, gravity
-9.8 m/s^2, 6 PHYRE pixels per metre (so phylaw's 10-unit world, 512 PHYRE px, is 85.3 m), density
0.25 for dynamic bodies, friction 0.5, restitution 0.2, angular damping 0.01 /s, no linear
damping, static walls just outside the canvas. The simulation runs in metres, as Box2D's does.

Box2D -> Chipmunk translation, and what differs:

* Mixing: Box2D combines two fixtures' friction as ``sqrt(f1 f2)`` and restitution as
  ``max(e1, e2)``; Chipmunk multiplies both. Every shape gets ``sqrt(friction)`` and
  ``sqrt(restitution)``, so every contact has exactly PHYRE's 0.5 and 0.2.
* Damping: Chipmunk's space damping acts on linear and angular velocity alike, so PHYRE's angular
  damping is applied by hand, ``w <- w (1 + dt c)^-k`` after every block of k steps between two
  recorded frames (Box2D applies ``1 / (1 + dt c)`` each step; the difference in angle is below
  1e-3 of the rotation per frame).
* Solver: one iteration count (``iterations``, 15 = Box2D's velocity iterations); overlap is
  corrected by bias velocities that leave no kinetic energy, like Box2D's position pass.
  ``collision_slop_m`` is Box2D's linear slop (5 mm). Bodies fall asleep after 0.5 s below
  0.01 m/s, as with Box2D's defaults, so resting bodies keep exactly the same pose.
* Chipmunk has no continuous collision detection (Box2D stops dynamic bodies at static ones at
  the time of impact). Each PHYRE step is therefore split into ``substeps`` = 4 engine steps of
  1/240 s: a falling bar's corner then dips at most ~0.01 world units (a quarter pixel at 256 px)
  into the floor for a frame, where one 1/60 s step let it dip 0.1 (measured over two scenes of
  every template). ``substeps=1`` steps at PHYRE's 1/60 s. Walls are ``wall_m`` thick (PHYRE:
  10 px) so nothing can tunnel out of the world.
* Box2D's polygon skin (1 cm) and velocity threshold (0.1 m/s, below which contacts are
  inelastic) have no Chipmunk counterpart.
* Step order: Box2D integrates velocity then position (``v += g dt; x += v dt``), Chipmunk moves
  bodies with the old velocity first, so its state after n + 1 steps is Box2D's after n (exactly
  so in free flight, ``tests/test_scenes.py``). ``simulate_rigid`` therefore takes one extra
  engine step (``LAG_STEPS``) and its times are Box2D's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pymunk

from phylaw.physics.state import WORLD_SIZE

LAG_STEPS = 1  # Chipmunk steps beyond Box2D's for the same state (see the module docstring)


@dataclass(frozen=True)
class PhyreConstants:
    """PHYRE's physics (reference 3.1) and the engine settings that reproduce it."""

    dt_s: float = 1.0 / 60.0  # PHYRE's Box2D step: the unit of ``record_steps``
    substeps: int = 4  # engine steps per PHYRE step (no CCD in Chipmunk, see above)
    gravity_m_s2: float = 9.8
    metres_per_unit: float = 512.0 / 6.0 / WORLD_SIZE  # 512 PHYRE px = 85.3 m = 10 world units
    density_kg_m2: float = 0.25  # dynamic bodies (static: infinite mass)
    friction: float = 0.5  # per contact
    restitution: float = 0.2  # per contact
    angular_damping_per_s: float = 0.01
    iterations: int = 15
    collision_slop_m: float = 0.005
    sleep_time_s: float = 0.5
    sleep_speed_m_s: float = 0.01
    wall_m: float = 20.0  # invisible walls outside the canvas, thicker than PHYRE's 10 px


@dataclass(frozen=True)
class RigidBody:
    """One body in world units: parts in body coordinates, pose of the body origin.

    ``polygons``: convex counter-clockwise [k, 2] vertex arrays; ``radius`` > 0 adds a disc
    centred on the origin; ``pos`` [2] and ``angle`` (radians) the initial pose.
    """

    polygons: tuple[np.ndarray, ...]
    radius: float
    pos: tuple[float, float]
    angle: float
    dynamic: bool


def _space(c: PhyreConstants, size_m: float) -> pymunk.Space:
    space = pymunk.Space()
    space.gravity = (0.0, -c.gravity_m_s2)
    space.iterations = c.iterations
    space.collision_slop = c.collision_slop_m
    space.sleep_time_threshold = c.sleep_time_s
    space.idle_speed_threshold = c.sleep_speed_m_s
    walls = space.static_body
    w, s = c.wall_m, size_m
    for left, bottom, right, top in (
        (-w, -w, s + w, 0.0),  # floor: its top face is the canvas bottom
        (-w, s, s + w, s + w),  # ceiling
        (-w, -w, 0.0, s + w),  # left
        (s, -w, s + w, s + w),  # right
    ):
        box = pymunk.Poly(walls, [(right, top), (left, top), (left, bottom), (right, bottom)])
        _material(box, c)
        space.add(box)
    return space


def _material(shape: pymunk.Shape, c: PhyreConstants) -> None:
    shape.friction = math.sqrt(c.friction)
    shape.elasticity = math.sqrt(c.restitution)


def _add(space: pymunk.Space, body: RigidBody, c: PhyreConstants) -> pymunk.Body:
    m = c.metres_per_unit
    kind = pymunk.Body.DYNAMIC if body.dynamic else pymunk.Body.STATIC
    b = pymunk.Body(body_type=kind)
    b.position = (body.pos[0] * m, body.pos[1] * m)
    b.angle = body.angle
    shapes: list[pymunk.Shape] = [
        pymunk.Poly(b, [(float(x) * m, float(y) * m) for x, y in poly]) for poly in body.polygons
    ]
    if body.radius > 0:
        shapes.append(pymunk.Circle(b, body.radius * m))
    for shape in shapes:
        _material(shape, c)
        if body.dynamic:
            shape.density = c.density_kg_m2
    space.add(b, *shapes)
    return b


def simulate_rigid(
    bodies: list[RigidBody], record_steps: np.ndarray, constants: PhyreConstants | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Step ``bodies`` and record their poses after the steps ``record_steps``.

    ``record_steps`` [T]: increasing PHYRE step indices; a frame recorded at step i shows the
    state after the (i + 1)-th step, at ``t = (i + 1) dt`` (``(i + 1) substeps + LAG_STEPS``
    Chipmunk steps of ``dt / substeps``). Returns ``pos`` float64 [T, N, 2] (body origins, world
    units) and ``angle`` float64 [T, N] (radians, unwrapped).
    """
    c = constants or PhyreConstants()
    m = c.metres_per_unit
    space = _space(c, WORLD_SIZE * m)
    handles = [_add(space, body, c) for body in bodies]
    dynamic = [h for h, body in zip(handles, bodies, strict=True) if body.dynamic]
    steps = np.asarray(record_steps, dtype=np.int64)
    pos = np.empty((len(steps), len(bodies), 2))
    angle = np.empty((len(steps), len(bodies)))
    done = 0
    h = c.dt_s / c.substeps
    for t, target in enumerate(steps):
        k = (int(target) + 1) * c.substeps + LAG_STEPS - done
        for _ in range(k):
            space.step(h)
        done += k
        if c.angular_damping_per_s and k:
            factor = (1.0 + h * c.angular_damping_per_s) ** -k
            for body in dynamic:
                if not body.is_sleeping:
                    body.angular_velocity *= factor
        for n, body in enumerate(handles):
            x, y = body.position
            pos[t, n] = (x / m, y / m)
            angle[t, n] = body.angle
    return pos, angle

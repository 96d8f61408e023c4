"""Scenes -> trajectories: frame timing, the padded batch record, and the simulation of a scene.

Frame timing. PHYRE steps at dt = 1/60 s and the authors record a frame after every 20th step
starting with step 0 (``stride = 20``, 50 frames over 16.3 s at 512 px; reference 3.4). The paper
trains on 32 frames at 256 px; how the authors cut 50 frames to 32 is not in their code (reference
section 9, item 10). phylaw keeps PHYRE's stride and takes the *first* 32 frames: frame k is the
state after step ``20 k``, at ``t_k = (20 k + 1) / 60`` s (k = 0..31, 10.35 s), so the frame
interval is PHYRE's 1/3 s and the motion per frame matches the authors' videos; their last 18
frames, mostly objects at rest, are not generated. Pixels come at any resolution from the
renderer, which maps the 512 px canvas onto the image edge to edge.

Record. A scene has a varying number of bodies (a chain of 1-7 static balls, 1-4 standing bars),
so a batch is padded to ``MAX_BODIES`` slots: ``kind`` int8 [B, N] (``EMPTY`` = -1 for unused
slots), ``dims`` float32 [B, N, 4] (per-form dimensions, ``kinds``), ``pos`` [B, T, N, 2] body
origins in world units and ``angle`` [B, T, N] radians, NaN in unused slots. Shapes never change,
so geometry is stored once per body and poses per frame; ``kinds.scene_record`` turns these
arrays into ``physics.state.SceneTrajectory`` with colours, static/dynamic and convex parts.
The red ball is the last used slot.
"""

from __future__ import annotations

import numpy as np

from phylaw.physics.engine import PhyreConstants, RigidBody, simulate_rigid
from phylaw.physics.scenes.action import place_red_ball
from phylaw.physics.scenes.kinds import EMPTY, NUM_DIMS, form_of, is_dynamic, local_parts
from phylaw.physics.scenes.layout import Layout, build_layout
from phylaw.physics.state import NUM_FRAMES, WORLD_SIZE

STRIDE_STEPS = 20  # engine steps between frames (the authors' STRIDE)
STEP_S = 1.0 / 60.0
FRAME_DT_S = STRIDE_STEPS * STEP_S  # 1/3 s
FRAME_OFFSET_S = STEP_S  # frame 0 is recorded after the first step
MAX_BODIES = 14  # 7 static balls + 4 standing bars + 2 other objects + the red ball
LEAVE_TOLERANCE = 0.1  # world units a body origin may pass a wall before a scene is rejected


def frame_steps(num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Engine steps after which frames are recorded: ``20 k``, [T] int64."""
    return STRIDE_STEPS * np.arange(num_frames, dtype=np.int64)


def scene_frame_times(num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Times of the frames, ``(20 k + 1) / 60`` s, [T] float64."""
    return (frame_steps(num_frames) + 1) * STEP_S


def rigid_bodies(layout: Layout) -> list[RigidBody]:
    """The engine's view of a layout: parts, pose and static/dynamic per body."""
    forms = form_of(layout.kind)
    bodies = []
    for i in range(len(layout)):
        polys, r = local_parts(int(forms[i]), layout.dims[i])
        bodies.append(
            RigidBody(
                polygons=tuple(polys),
                radius=r,
                pos=(float(layout.pos[i, 0]), float(layout.pos[i, 1])),
                angle=float(layout.angle[i]),
                dynamic=bool(is_dynamic(layout.kind[i])),
            )
        )
    return bodies


def simulate_layout(
    layout: Layout, num_frames: int = NUM_FRAMES, constants: PhyreConstants | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate a scene. Returns ``pos`` [T, N, 2] (world units) and ``angle`` [T, N]."""
    return simulate_rigid(rigid_bodies(layout), frame_steps(num_frames), constants)


def make_scene(template: int, task: int, trial: int, seed: int = 0) -> Layout | None:
    """The initial scene of ``(template, task, trial)``: layout + red ball (None if unplaceable)."""
    placed = place_red_ball(build_layout(template, task, seed), template, task, trial, seed)
    return None if placed is None else placed[0]


def sane(pos: np.ndarray, angle: np.ndarray) -> bool:
    """True when every pose is finite and every body origin stays in the world (with tolerance)."""
    if not (np.isfinite(pos).all() and np.isfinite(angle).all()):
        return False
    return bool((pos > -LEAVE_TOLERANCE).all() and (pos < WORLD_SIZE + LEAVE_TOLERANCE).all())


def pad(layout: Layout, pos: np.ndarray, angle: np.ndarray, max_bodies: int = MAX_BODIES):
    """Pad one scene to ``max_bodies`` slots.

    Returns ``(kind [N] int8, dims [N, 4] float32, pos0 [N, 2], angle0 [N], pos [T, N, 2],
    angle [T, N])``, NaN (kind ``EMPTY``) in unused slots.
    """
    n, t = len(layout), pos.shape[0]
    if n > max_bodies:
        raise ValueError(f"scene has {n} bodies, more than max_bodies={max_bodies}")
    kind = np.full(max_bodies, EMPTY, dtype=np.int8)
    dims = np.zeros((max_bodies, NUM_DIMS), dtype=np.float32)
    pos0 = np.full((max_bodies, 2), np.nan)
    angle0 = np.full(max_bodies, np.nan)
    pos_p = np.full((t, max_bodies, 2), np.nan)
    angle_p = np.full((t, max_bodies), np.nan)
    kind[:n], dims[:n], pos0[:n], angle0[:n] = layout.kind, layout.dims, layout.pos, layout.angle
    pos_p[:, :n], angle_p[:, :n] = pos, angle
    return kind, dims, pos0, angle0, pos_p, angle_p


def simulate_scenes(
    ids: np.ndarray, seed: int = 0, num_frames: int = NUM_FRAMES, max_bodies: int = MAX_BODIES
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Build and simulate the scenes ``ids`` [B, 3] = (template, task, trial).

    Returns ``(arrays, valid)``: ``arrays`` holds ``kind`` [B, N], ``dims`` [B, N, 4],
    ``pos0`` [B, N, 2], ``angle0`` [B, N] (t = 0), ``pos`` [B, T, N, 2] and ``angle`` [B, T, N];
    ``valid`` [B] is False where no red ball fits or the simulation left the world (those rows
    are NaN-filled).
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1, 3)
    b = len(ids)
    out = {
        "kind": np.full((b, max_bodies), EMPTY, dtype=np.int8),
        "dims": np.zeros((b, max_bodies, NUM_DIMS), dtype=np.float32),
        "pos0": np.full((b, max_bodies, 2), np.nan),
        "angle0": np.full((b, max_bodies), np.nan),
        "pos": np.full((b, num_frames, max_bodies, 2), np.nan),
        "angle": np.full((b, num_frames, max_bodies), np.nan),
    }
    valid = np.zeros(b, dtype=bool)
    layouts: dict[tuple[int, int], Layout] = {}  # trials of one task share the layout
    for i, (template, task, trial) in enumerate(ids.tolist()):
        if (template, task) not in layouts:
            layouts[(template, task)] = build_layout(template, task, seed)
        placed = place_red_ball(layouts[(template, task)], template, task, trial, seed)
        if placed is None:
            continue
        scene = placed[0]
        pos, angle = simulate_layout(scene, num_frames)
        if not sane(pos, angle):
            continue
        for key, value in zip(out, pad(scene, pos, angle, max_bodies), strict=True):
            out[key][i] = value
        valid[i] = True
    return out, valid

"""Exact laws: conservation, placement rules, and cross-checks against rigid-body engines."""

import numpy as np
import pytest

from phylaw.physics import collision, parabola, uniform
from phylaw.physics.state import FRAME_DT_S, WORLD_SIZE, frame_times

TIMES = frame_times()


def random_collisions(n, rng, vmax=6.0):
    return np.stack(
        [
            rng.uniform(0.3, 2.0, n),
            rng.uniform(0.3, 2.0, n),
            rng.uniform(0, vmax, n),
            rng.uniform(0, vmax, n),
        ],
        axis=1,
    )


def test_frame_timing_matches_the_authors_loop():
    assert TIMES[0] == pytest.approx(0.01)
    assert np.allclose(np.diff(TIMES), FRAME_DT_S)
    assert len(TIMES) == 32


def test_collision_conserves_momentum_and_energy_to_float_precision():
    rng = np.random.default_rng(0)
    p = random_collisions(20000, rng)
    pos0, pos, vel, valid = collision.simulate(
        p, rng.random((len(p), collision.NUM_UNIFORMS)), TIMES
    )
    m = p[:, :2] ** 2
    mom = (vel[..., 0] * m[:, None]).sum(-1)
    energy = (0.5 * vel[..., 0] ** 2 * m[:, None]).sum(-1)
    scale = (m * p[:, 2:]).sum(-1, keepdims=True) + 1e-12
    assert np.abs(mom - mom[:, :1]).max() / scale.max() < 1e-14
    assert np.allclose(energy, energy[:, :1], rtol=1e-13, atol=1e-14)
    # momentum before equals m1 v1 - m2 v2 exactly as the parameters say
    assert np.allclose(mom[:, 0], m[:, 0] * p[:, 2] - m[:, 1] * p[:, 3], rtol=0, atol=1e-12)


def test_collision_balls_never_overlap_and_touch_once():
    rng = np.random.default_rng(1)
    p = random_collisions(5000, rng, vmax=4.0)
    pos0, valid = collision.place(p, rng.random((len(p), collision.NUM_UNIFORMS)))
    fine = np.linspace(0, 3.2, 641)
    pos, _ = collision.exact(p[valid], pos0[valid], fine)
    gap = pos[:, :, 1, 0] - pos[:, :, 0, 0] - p[valid, 0:1] - p[valid, 1:2]
    assert gap.min() > -1e-9
    tc = collision.contact_time(p[valid], pos0[valid])
    assert np.all(tc[np.isfinite(tc)] >= collision.MIN_PRE_FRAMES * FRAME_DT_S - 1e-9)


def test_collision_placement_starts_in_view_and_drops_only_impossible_scenes():
    rng = np.random.default_rng(2)
    p = random_collisions(20000, rng, vmax=4.0)
    p[:, :2] = rng.uniform(0.5, 1.5, (len(p), 2))
    pos0, valid = collision.place(p, rng.random((len(p), collision.NUM_UNIFORMS)))
    x1, x2, y = pos0[valid, 0, 0], pos0[valid, 1, 0], pos0[valid, 0, 1]
    r1, r2 = p[valid, 0], p[valid, 1]
    assert np.all(x1 - r1 >= -1e-12) and np.all(x2 + r2 <= WORLD_SIZE + 1e-12)
    assert np.all(y - np.maximum(r1, r2) >= 0.5 - 1e-12)
    # a scene is dropped exactly when the 8-frame minimum distance does not fit in the world
    min_pre = 0.8 * (p[:, 2] + p[:, 3]) + p[:, 0] + p[:, 1]
    assert np.array_equal(valid, min_pre <= WORLD_SIZE - p[:, 0] - p[:, 1])


@pytest.mark.parametrize("mod", [uniform, parabola])
def test_one_ball_starts_in_view_and_stays_24_frames_when_possible(mod):
    rng = np.random.default_rng(3)
    n = 20000
    p = np.stack([rng.uniform(0.7, 1.4, n), rng.uniform(1, 4, n)], axis=1)
    pos0, pos, vel, valid = mod.simulate(p, rng.random((n, mod.NUM_UNIFORMS)), TIMES)
    r, v = p[:, :1], p[:, 1:]
    assert valid.all()
    assert np.all(pos0[:, 0, 0] >= p[:, 0]) and np.all(pos0[:, 0, 1] + p[:, 0] <= 9.5 + 1e-12)
    fits = (2.4 * v + 2 * r <= WORLD_SIZE)[:, 0]
    # visible horizontally at t = 2.4 s (frame 24 of the authors' placement rule)
    x24 = pos0[:, 0, 0] + 2.4 * p[:, 1]
    assert np.all(x24[fits] + p[fits, 0] <= WORLD_SIZE + 1e-9)
    assert np.allclose(vel[:, :, 0, 0], v)


def test_parabola_is_the_exact_projectile_law():
    p = np.array([[1.0, 2.0]])
    pos0 = np.array([[[1.0, 8.0]]])
    pos, vel = parabola.exact(p, pos0, TIMES)
    assert np.allclose(pos[0, :, 0, 1], 8.0 - 1.25 * TIMES**2)
    assert np.allclose(pos[0, :, 0, 0], 1.0 + 2.0 * TIMES)
    assert np.allclose(vel[0, :, 0, 1], -2.5 * TIMES)


# ---------------------------------------------------------------- engines
def _box2d_run(bodies, gravity, dt=0.01, stride=10, frames=32):
    from Box2D import b2CircleShape, b2World

    world = b2World(gravity=gravity, doSleep=False)
    handles = []
    for r, x, y, vx in bodies:
        b = world.CreateDynamicBody(position=(x, y))
        b.CreateFixture(shape=b2CircleShape(radius=r), density=1, restitution=1.0)
        b.linearVelocity = (vx, 0)
        handles.append(b)
    out = []
    for i in range(frames * stride):
        world.Step(dt, 15, 20)
        if i % stride == 0:  # the authors' loop: record after step i
            out.append([(b.position.x, b.position.y, b.linearVelocity.x) for b in handles])
    return np.array(out)


def test_uniform_matches_box2d_including_frame_timing():
    pytest.importorskip("Box2D")
    p = np.array([[1.0, 2.7]])
    pos0 = np.array([[[1.3, 4.2]]])
    pos, _ = uniform.exact(p, pos0, TIMES)
    eng = _box2d_run([(1.0, 1.3, 4.2, 2.7)], (0, 0))
    assert np.abs(eng[:, 0, :2] - pos[0, :, 0]).max() < 1e-4


def test_parabola_matches_box2d_up_to_its_integration_error():
    pytest.importorskip("Box2D")
    p = np.array([[1.0, 1.5]])
    pos0 = np.array([[[1.3, 8.0]]])
    for dt, stride in ((0.01, 10), (0.001, 100)):
        times = dt + stride * dt * np.arange(32)  # recorded after step 0, stride, ...
        pos, _ = parabola.exact(p, pos0, times)
        eng = _box2d_run([(1.0, 1.3, 8.0, 1.5)], (0, -2.5), dt=dt, stride=stride)
        err = np.abs(eng[:, 0, 1] - pos[0, :, 0, 1])
        # semi-implicit Euler lags the exact parabola by g t dt / 2: it converges with dt
        assert np.all(err <= 0.5 * 2.5 * times * dt * 1.05 + 5e-4)  # + float32 drift
        assert np.abs(eng[:, 0, 0] - pos[0, :, 0, 0]).max() < 5e-4  # float32 drift


def test_collision_matches_box2d_above_its_velocity_threshold():
    pytest.importorskip("Box2D")
    p = np.array([[0.8, 1.2, 2.0, 1.5]])
    pos0 = np.array([[[2.0, 5.0], [7.0, 5.0]]])
    pos, vel = collision.exact(p, pos0, TIMES)
    eng = _box2d_run([(0.8, 2.0, 5.0, 2.0), (1.2, 7.0, 5.0, -1.5)], (0, 0))
    assert np.abs(eng[:, :, 0] - pos[0, :, :, 0]).max() < 0.02  # one engine step of travel
    assert np.allclose(eng[-1, :, 2], vel[0, -1, :, 0], atol=1e-5)


def test_stock_box2d_is_inelastic_below_threshold_so_we_use_the_formula():
    """Reference section 1.1: stock Box2D (b2_velocityThreshold = 1) merges slow balls."""
    pytest.importorskip("Box2D")
    eng = _box2d_run([(0.8, 2.0, 5.0, 0.3), (1.2, 4.5, 5.0, -0.2)], (0, 0), frames=60)
    after = eng[-1, :, 2]
    elastic = collision.elastic_velocities(0.64, 1.44, 0.3, -0.2)
    assert abs(after[0] - after[1]) < 1e-3  # moving together: inelastic
    assert abs(after[0] - elastic[0]) > 0.1


def test_collision_matches_pymunk_at_all_speeds():
    pymunk = pytest.importorskip("pymunk")
    rng = np.random.default_rng(4)
    for _ in range(6):
        r1, r2 = rng.uniform(0.3, 2.0, 2)
        v1, v2 = rng.uniform(0.05, 6.0, 2)
        x1, x2 = 2.0, 2.0 + r1 + r2 + rng.uniform(0.2, 1.0)
        p = np.array([[r1, r2, v1, v2]])
        pos0 = np.array([[[x1, 5.0], [x2, 5.0]]])
        t_end = collision.contact_time(p, pos0)[0] + 0.5
        space = pymunk.Space()
        space.collision_slop = 0.0
        bodies = []
        for r, x, v in ((r1, x1, v1), (r2, x2, -v2)):
            m = np.pi * r * r
            b = pymunk.Body(m, pymunk.moment_for_circle(m, 0, r))
            b.position, b.velocity = (x, 5.0), (v, 0)
            c = pymunk.Circle(b, r)
            c.elasticity, c.friction = 1.0, 0.0
            space.add(b, c)
            bodies.append(b)
        dt = 1e-3
        for _ in range(int(t_end / dt)):
            space.step(dt)
        pos, vel = collision.exact(p, pos0, np.array([int(t_end / dt) * dt]))
        assert np.allclose([b.velocity.x for b in bodies], vel[0, 0, :, 0], atol=1e-6)
        assert np.allclose([b.position.x for b in bodies], pos[0, 0, :, 0], atol=6 * dt * 6)

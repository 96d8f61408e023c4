"""The diffusion process: zero terminal SNR, parametrisation round trips, the frame-masked loss,
and samplers that recover x0 from exact (oracle) denoisers."""

import pytest
import torch

from phylaw.diffusion import (
    SCHEDULES,
    Schedule,
    condition_inputs,
    ddim_sample,
    ddpm_sample,
    dpmpp_2m_sample,
    eps_from_x0,
    frame_mask,
    logit_normal_timesteps,
    loss_weights,
    make_schedule,
    masked_mse,
    min_snr_weights,
    model_input,
    prediction_target,
    q_sample,
    rescale_zero_terminal_snr,
    sample_timesteps,
    sampling_timesteps,
    to_x0_eps,
    training_loss,
    v_from_x0_eps,
    x0_eps_from_v,
    x0_from_eps,
)

F64 = torch.float64
SHAPE = (2, 3, 6, 4, 4)  # [B, C, T, H, W]
SAMPLERS = {"ddpm": ddpm_sample, "ddim": ddim_sample, "dpmpp_2m": dpmpp_2m_sample}


def _randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def point_oracle(x0, schedule, prediction):
    """Knows the clean video: returns the exact target for the current x_t."""

    def denoiser(x_t, t, cond):
        assert t.dtype == torch.int64 and t.shape == (x_t.shape[0],)
        ab = schedule.alpha_bar(t, x_t)
        eps = eps_from_x0(x_t, x0, ab)
        return prediction_target(x0, eps, ab, prediction)

    return denoiser


def gaussian_oracle(schedule, mu, tau):
    """E[x0 | x_t] for data x0 ~ N(mu, tau^2) per element, as an x0-predictor."""

    def denoiser(x_t, t, cond):
        ab = schedule.alpha_bar(t, x_t)
        return mu + ab.sqrt() * tau**2 / (ab * tau**2 + 1 - ab) * (x_t - ab.sqrt() * mu)

    return denoiser


# ----------------------------------------------------------------------------------------------
# Schedule
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_zero_terminal_snr_is_exact(name):
    s = make_schedule(name, 1000, zero_terminal_snr=True)
    plain = make_schedule(name, 1000, zero_terminal_snr=False)
    ab = s.alphas_cumprod
    assert ab.dtype == F64 and ab.shape == (1000,)
    assert ab[-1].item() == 0.0 and s.zero_terminal_snr and not plain.zero_terminal_snr
    assert s.snr(torch.tensor([999])).item() == 0.0
    assert s.betas[-1].item() == 1.0
    assert (ab[1:] < ab[:-1]).all() and ab[0] < 1
    assert ab[0].item() == pytest.approx(plain.alphas_cumprod[0].item(), rel=1e-12)
    # Lin et al. Algorithm 1: sqrt(alpha_bar) is an affine map of the original one
    r, r0 = ab.sqrt(), plain.alphas_cumprod.sqrt()
    scale = (r[0] - r[500]) / (r0[0] - r0[500])
    torch.testing.assert_close(r, (r0 - r0[-1]) * scale, rtol=0, atol=1e-14)


def test_schedule_formulas_and_validation():
    s = make_schedule("linear", 1000, zero_terminal_snr=False)
    expected = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=F64), 0)
    torch.testing.assert_close(s.alphas_cumprod, expected, rtol=0, atol=0)
    torch.testing.assert_close(s.betas, torch.linspace(1e-4, 0.02, 1000, dtype=F64))
    assert rescale_zero_terminal_snr(expected)[-1].item() == 0.0
    with pytest.raises(ValueError, match="cosine"):
        make_schedule("quadratic")
    with pytest.raises(ValueError):
        Schedule(torch.tensor([0.5, 0.9], dtype=F64))  # increasing
    with pytest.raises(ValueError):
        Schedule(torch.tensor([0.9, 0.5]))  # float32


def test_trailing_timesteps_start_at_pure_noise():
    assert sampling_timesteps(1000, 10).tolist() == list(range(999, 0, -100))
    assert sampling_timesteps(1000, 3).tolist() == [999, 666, 332]  # diffusers' 'trailing'
    assert torch.equal(sampling_timesteps(1000, 1000), torch.arange(999, -1, -1))
    with pytest.raises(ValueError):
        sampling_timesteps(1000, 0)
    t = sample_timesteps(64, make_schedule(), torch.Generator().manual_seed(0))
    assert t.dtype == torch.int64 and t.shape == (64,) and 0 <= t.min() and t.max() < 1000


# ----------------------------------------------------------------------------------------------
# Forward process and parametrisations
# ----------------------------------------------------------------------------------------------


def _alpha_bars():
    """[5, 1, 1, 1, 1]: the terminal step, interior values and one near 1."""
    return torch.tensor([0.0, 1e-6, 0.3, 0.9, 1 - 1e-6], dtype=F64).reshape(5, 1, 1, 1, 1)


def test_v_x0_eps_round_trips():
    ab = _alpha_bars()
    x0, eps = _randn(5, 3, 4, 4, 4, seed=1), _randn(5, 3, 4, 4, 4, seed=2)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    v = v_from_x0_eps(x0, eps, ab)
    torch.testing.assert_close(v, ab.sqrt() * eps - (1 - ab).sqrt() * x0)  # Salimans & Ho
    for pred, target in (("v", v), ("x0", x0)):  # both valid at alpha_bar = 0
        torch.testing.assert_close(prediction_target(x0, eps, ab, pred), target)
        x0_hat, eps_hat = to_x0_eps(target, x_t, ab, pred)
        torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-12 if pred == "v" else 0)
        torch.testing.assert_close(eps_hat, eps, rtol=0, atol=1e-9)
    inner = ab[1:4]  # eps <-> x0 where both are defined and well conditioned
    torch.testing.assert_close(x0_from_eps(x_t[1:4], eps[1:4], inner), x0[1:4], rtol=0, atol=1e-9)
    torch.testing.assert_close(eps_from_x0(x_t[1:4], x0[1:4], inner), eps[1:4], rtol=0, atol=1e-12)
    # v is a rotation of (x0, eps): the inverse is exact at the terminal step
    x0_T, eps_T = x0_eps_from_v(x_t[:1], v[:1], ab[:1])
    assert torch.equal(x0_T, x0[:1]) and torch.equal(eps_T, eps[:1])
    with pytest.raises(ValueError, match="alpha_bar = 0"):
        to_x0_eps(eps, x_t, ab, "eps")
    with pytest.raises(ValueError, match="valid"):
        to_x0_eps(eps, x_t, ab, "score")


def test_q_sample():
    s = make_schedule()
    x0, noise = _randn(*SHAPE, seed=3), _randn(*SHAPE, seed=4)
    t = torch.tensor([999, 10])
    x_t = q_sample(x0, t, noise, s)
    assert x_t.shape == SHAPE and x_t.dtype == F64
    assert torch.equal(x_t[0], noise[0])  # pure noise at the terminal step
    ab = s.alphas_cumprod[10]
    torch.testing.assert_close(x_t[1], ab.sqrt() * x0[1] + (1 - ab).sqrt() * noise[1])
    assert q_sample(x0.float(), t, noise.float(), s).dtype == torch.float32


# ----------------------------------------------------------------------------------------------
# Conditioning and loss
# ----------------------------------------------------------------------------------------------


def test_condition_inputs_and_model_input():
    x0 = _randn(*SHAPE, seed=5)
    cond_video, mask = condition_inputs(x0, 2)
    assert cond_video.shape == SHAPE and mask.shape == (2, 1, 6, 4, 4)
    assert torch.equal(cond_video[:, :, :2], x0[:, :, :2]) and (cond_video[:, :, 2:] == 0).all()
    assert (mask[:, :, :2] == 1).all() and (mask[:, :, 2:] == 0).all()
    assert frame_mask(mask).tolist() == [[1, 1, 0, 0, 0, 0]] * 2
    inp = model_input(x0, cond_video, mask)
    assert inp.shape == (2, 7, 6, 4, 4) and torch.equal(inp[:, 6:], mask)
    with pytest.raises(ValueError):
        condition_inputs(x0, 7)


@pytest.mark.parametrize("prediction", ["v", "x0", "eps"])
def test_loss_ignores_condition_frames(prediction):
    s = make_schedule()
    x0, noise = _randn(*SHAPE, seed=6), _randn(*SHAPE, seed=7)
    cond = condition_inputs(x0, 2)
    t = torch.tensor([999, 500])
    exact = point_oracle(x0, s, prediction)
    wrong = _randn(*SHAPE, seed=8)
    on_cond = wrong * cond.mask  # an error on condition frames only

    def perturbed(x_t, t, c):
        return exact(x_t, t, c) + on_cond

    def loss(net, fm):
        return training_loss(net, x0, cond, t, noise, s, prediction, fm)

    for fm in (frame_mask(cond.mask), torch.tensor([1, 1, 0, 0, 0, 0])):
        assert loss(exact, fm).item() < 1e-28  # the oracle's target, up to rounding
        assert torch.equal(loss(perturbed, fm), loss(exact, fm))
    assert loss(perturbed, None).item() > 0  # without the mask the error counts
    # an error on generated frames: the mean over generated elements only
    off = torch.zeros(SHAPE, dtype=F64)
    off[:, :, 2:] = 0.5
    got = loss(lambda x_t, t, c: exact(x_t, t, c) + off, frame_mask(cond.mask))
    assert got.item() == pytest.approx(0.25, rel=1e-12)
    with pytest.raises(ValueError, match="every frame"):
        masked_mse(x0, x0, torch.ones(6))


# ----------------------------------------------------------------------------------------------
# Samplers
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
@pytest.mark.parametrize("prediction", ["v", "x0", "eps"])
def test_oracle_denoiser_recovers_x0(sampler, prediction):
    # eps-prediction cannot denoise pure noise: it needs a schedule without zero terminal SNR
    s = make_schedule("scaled_linear", 1000, zero_terminal_snr=prediction != "eps")
    x0 = _randn(*SHAPE, seed=9)
    gen = torch.Generator().manual_seed(0)
    net = point_oracle(x0, s, prediction)
    out = SAMPLERS[sampler](net, SHAPE, None, s, 10, prediction, gen, dtype=F64)
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-9)
    net32 = point_oracle(x0.float(), s, prediction)
    out32 = SAMPLERS[sampler](net32, SHAPE, None, s, 4, prediction, gen)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, x0.float(), rtol=0, atol=1e-4)


def test_eps_prediction_refuses_zero_terminal_snr():
    s = make_schedule()
    with pytest.raises(ValueError, match="zero terminal SNR"):
        ddim_sample(lambda x, t, c: x, SHAPE, None, s, 5, "eps")


def test_first_call_is_at_pure_noise():
    s, seen = make_schedule(), []

    def net(x_t, t, cond):
        seen.append(t.tolist())
        assert cond == "c"
        return torch.zeros_like(x_t)

    ddim_sample(net, SHAPE, "c", s, 4, "x0")
    assert seen == [[999, 999], [749, 749], [499, 499], [249, 249]]


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_known_frames_are_reimposed(sampler):
    s = make_schedule()
    x0 = _randn(*SHAPE, seed=10)
    known = condition_inputs(x0, 2)
    gen = torch.Generator().manual_seed(1)

    def garbage(x_t, t, cond):
        return 3 * torch.randn(x_t.shape, generator=gen, dtype=x_t.dtype)

    out = SAMPLERS[sampler](garbage, SHAPE, known, s, 6, "v", gen, known=known, dtype=F64)
    torch.testing.assert_close(out[:, :, :2], x0[:, :, :2], rtol=0, atol=1e-12)
    assert (out[:, :, 2:] - x0[:, :, 2:]).abs().mean() > 0.5  # the rest is the network's


def test_ddim_eta_one_is_ddpm():
    s = make_schedule("cosine")
    net = gaussian_oracle(s, 0.3, 0.5)
    a = ddpm_sample(net, SHAPE, None, s, 20, "x0", torch.Generator().manual_seed(2), dtype=F64)
    b = ddim_sample(
        net, SHAPE, None, s, 20, "x0", torch.Generator().manual_seed(2), eta=1.0, dtype=F64
    )
    torch.testing.assert_close(a, b, rtol=0, atol=1e-13)


def test_ddpm_samples_the_data_distribution():
    """Exact denoiser of N(mu, tau^2) data: ancestral samples have that mean and spread.
    (With the posterior variance, respaced DDPM under-disperses: std 0.47 at 100 steps.)"""
    s, mu, tau = make_schedule("scaled_linear"), 0.3, 0.5
    out = ddpm_sample(
        gaussian_oracle(s, mu, tau), (1, 1, 1, 64, 64), None, s, 1000, "x0",
        torch.Generator().manual_seed(3), dtype=F64,
    )  # fmt: skip
    assert out.mean().item() == pytest.approx(mu, abs=0.02)
    assert out.std().item() == pytest.approx(tau, abs=0.02)


def test_dpmpp_2m_needs_fewer_steps_than_ddim():
    """Probability-flow ODE of Gaussian data is solvable: x0 = mu + tau x_T. DPM-Solver++(2M)
    at 20 steps beats DDIM at 100 (measured 1.5e-3 vs 7.9e-3 RMS, cosine zero-SNR schedule)."""
    s, mu, tau = make_schedule("cosine"), 0.3, 0.5
    net = gaussian_oracle(s, mu, tau)
    x_T = _randn(1, 1, 4, 16, 16, seed=11)
    exact = mu + tau * x_T

    def rmse(sampler, steps):
        out = sampler(net, x_T.shape, None, s, steps, "x0", x_T=x_T, dtype=F64)
        return (out - exact).pow(2).mean().sqrt().item()

    ddim = [rmse(ddim_sample, n) for n in (10, 20, 100)]
    assert ddim[0] > ddim[1] > ddim[2]  # converges
    assert rmse(dpmpp_2m_sample, 20) < ddim[2] / 3
    assert rmse(dpmpp_2m_sample, 1000) < 1e-4


@pytest.mark.parametrize("prediction,kind", [("v", "v_prediction"), ("x0", "sample")])
def test_matches_diffusers(prediction, kind):
    """Cross-check against diffusers (in the test extra; not a dependency of phylaw)."""
    import diffusers as d

    kw = dict(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type=kind,
    )  # fmt: skip
    s = make_schedule("scaled_linear")
    ref = d.DDPMScheduler(**kw).alphas_cumprod.double()
    torch.testing.assert_close(s.alphas_cumprod, ref, rtol=0, atol=1e-6)
    w = _randn(3, 3, seed=12) * 0.3

    def net(x, t, c):
        return torch.tanh(torch.einsum("ij,bjthw->bithw", w, x)) * (
            1 + t.view(-1, 1, 1, 1, 1) / 1e3
        )

    x_T = _randn(*SHAPE, seed=13)
    sched = d.DDIMScheduler(clip_sample=False, **kw)
    sched.set_timesteps(10)
    sched.alphas_cumprod = s.alphas_cumprod.clone()
    x = x_T
    for t in sched.timesteps:
        x = sched.step(net(x, t.expand(SHAPE[0]), None), t, x).prev_sample
    ours = ddim_sample(net, SHAPE, None, s, 10, prediction, x_T=x_T, dtype=F64)
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Timestep sampling and loss weights
# ----------------------------------------------------------------------------------------------


def test_uniform_timesteps_are_unchanged_by_the_new_keywords():
    s = make_schedule()
    a = sample_timesteps(32, s, torch.Generator().manual_seed(3))
    b = sample_timesteps(32, s, torch.Generator().manual_seed(3), kind="uniform", mean=2.0)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="timestep sampling"):
        sample_timesteps(4, s, kind="bogus")


def test_logit_normal_timesteps_follow_their_density():
    s = make_schedule("cosine", 1000)
    gen = torch.Generator().manual_seed(0)
    t = sample_timesteps(200_000, s, gen, kind="logit-normal", mean=0.0, std=1.0)
    assert t.dtype == torch.int64 and 0 <= t.min() and t.max() <= 999
    u = (t.double() + 0.5) / 1000
    logit = torch.log(u / (1 - u))
    assert abs(logit.mean().item()) < 0.02 and abs(logit.std().item() - 1.0) < 0.02
    # a positive mean leans towards high noise (large t); the median is at sigmoid(mean)
    t_hi = logit_normal_timesteps(50_000, s, mean=1.0, std=1.0, generator=gen)
    assert (
        abs(t_hi.double().median().item() / 1000 - torch.sigmoid(torch.tensor(1.0)).item()) < 0.01
    )
    with pytest.raises(ValueError):
        logit_normal_timesteps(4, s, std=0.0)


def test_min_snr_weights_are_the_eps_weight_in_each_target():
    snr = torch.tensor([0.0, 0.5, 5.0, 50.0], dtype=F64)
    gamma = 5.0
    w_eps = min_snr_weights(snr, "eps", gamma).double()
    w_x0 = min_snr_weights(snr, "x0", gamma).double()
    w_v = min_snr_weights(snr, "v", gamma).double()
    # ||eps - eps^||^2 = SNR ||x0 - x0^||^2 and ||v - v^||^2 = (SNR + 1) ||x0 - x0^||^2:
    # every target gives the same weight on the x0 error, min(SNR, gamma)
    x0_weight = snr.clamp(max=gamma)
    torch.testing.assert_close(w_x0, x0_weight, rtol=1e-6, atol=0)
    torch.testing.assert_close(w_v * (snr + 1), x0_weight, rtol=1e-6, atol=0)
    torch.testing.assert_close((w_eps * snr)[1:], x0_weight[1:], rtol=1e-6, atol=0)
    assert w_eps[0] == 1 and w_x0[0] == 0  # the terminal step: eps keeps 1, x0 loses it
    assert min_snr_weights(snr, "x0", gamma, min_weight=0.1)[0] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        min_snr_weights(snr, "x0", 0.0)


def test_loss_weights_scale_each_video():
    s = make_schedule()
    x0, noise = _randn(*SHAPE, seed=11), _randn(*SHAPE, seed=12)
    cond = condition_inputs(x0, 2)
    t = torch.tensor([999, 100])

    def net(x_t, t, c):
        return torch.zeros_like(x_t)

    fm = frame_mask(cond.mask)
    per_video = [
        training_loss(net, x0[i : i + 1], cond_i, t[i : i + 1], noise[i : i + 1], s, "x0", fm[i])
        for i, cond_i in enumerate(zip(cond.video.split(1), cond.mask.split(1), strict=True))
    ]
    w = torch.tensor([0.25, 2.0])
    got = training_loss(net, x0, cond, t, noise, s, "x0", fm, weight=w)
    expected = (w[0] * per_video[0] + w[1] * per_video[1]) / 2
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    assert loss_weights("none", t, s, "x0") is None
    torch.testing.assert_close(
        loss_weights("min-snr", t, s, "x0", 5.0), min_snr_weights(s.snr(t), "x0")
    )
    with pytest.raises(ValueError, match="loss weighting"):
        loss_weights("bogus", t, s, "x0")

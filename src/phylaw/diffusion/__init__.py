"""The diffusion process (Appendix A.2): pure functions of a denoiser callable.

The process receives the network as an argument and never builds it: a denoiser is any
`denoiser(x_t [B, C, T, H, W], t [B] int64 steps, cond) -> [B, C, T, H, W]`, read as v, x0 or
eps. Modules: `schedule` (alpha_bar, zero terminal SNR, trailing sampling steps), `process`
(forward process and v/x0/eps conversions), `conditioning` (condition frames and mask video),
`objectives` (the loss on generated frames), `weighting` (timestep sampling and loss
weights), `samplers` (DDPM, DDIM, DPM-Solver++(2M)).
Depends on torch only.

Typical use with `models.dit.DiT`:

    sched = make_schedule("scaled_linear", 1000, zero_terminal_snr=True)
    cond = condition_inputs(x0, num_cond_frames=4)          # (cond_video, mask)
    net = lambda x, t, c: model(x, t, c.video, c.mask)
    loss = training_loss(net, x0, cond, sample_timesteps(len(x0), sched), torch.randn_like(x0),
                         sched, prediction="v", frame_mask=frame_mask(cond.mask))
    video = ddim_sample(net, x0.shape, cond, sched, steps=50, prediction="v", known=cond)
"""

from phylaw.diffusion.conditioning import FrameCondition, condition_inputs, frame_mask, model_input
from phylaw.diffusion.objectives import masked_mse, sample_timesteps, training_loss
from phylaw.diffusion.process import (
    PREDICTIONS,
    Denoiser,
    Prediction,
    eps_from_x0,
    prediction_target,
    q_sample,
    to_x0_eps,
    v_from_x0_eps,
    x0_eps_from_v,
    x0_from_eps,
)
from phylaw.diffusion.samplers import ddim_sample, ddpm_sample, dpmpp_2m_sample
from phylaw.diffusion.schedule import (
    SCHEDULES,
    Schedule,
    make_schedule,
    rescale_zero_terminal_snr,
    sampling_timesteps,
)
from phylaw.diffusion.weighting import (
    LOSS_WEIGHTINGS,
    TIMESTEP_SAMPLINGS,
    logit_normal_timesteps,
    loss_weights,
    min_snr_weights,
)

__all__ = [
    "LOSS_WEIGHTINGS",
    "PREDICTIONS",
    "SCHEDULES",
    "TIMESTEP_SAMPLINGS",
    "Denoiser",
    "FrameCondition",
    "Prediction",
    "Schedule",
    "condition_inputs",
    "ddim_sample",
    "ddpm_sample",
    "dpmpp_2m_sample",
    "eps_from_x0",
    "frame_mask",
    "logit_normal_timesteps",
    "loss_weights",
    "make_schedule",
    "masked_mse",
    "min_snr_weights",
    "model_input",
    "prediction_target",
    "q_sample",
    "rescale_zero_terminal_snr",
    "sample_timesteps",
    "sampling_timesteps",
    "to_x0_eps",
    "training_loss",
    "v_from_x0_eps",
    "x0_eps_from_v",
    "x0_from_eps",
]

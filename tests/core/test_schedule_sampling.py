"""DDIM schedule, inversion and the guided loop on toy denoisers with known answers."""
import pytest
import torch

from dragon_core.guidance import guided_step_schedule, attention_step_schedule, default_guidance
from dragon_core.attention import InjectionMode
from dragon_core.inversion import ddim_invert
from dragon_core.sampling import sample_dragon
from dragon_core.schedule import (ancestral_sigmas, ddim_step, scaled_linear_alphas_cumprod,
                                  sigmas_from_alphas_cumprod)
from dragon_core.step import fold_guidance as guided_denoised
from dragon_test_helpers.oracles import ddim_uniform_sigmas

TRAIN_SIGMAS = sigmas_from_alphas_cumprod(scaled_linear_alphas_cumprod())
DATA_STD = 0.8


def gaussian_denoiser(x, sigma):
    """Exact D(x, sigma) for data x0 ~ N(0, DATA_STD^2): a smooth toy model."""
    return x * DATA_STD ** 2 / (DATA_STD ** 2 + sigma ** 2)


def gaussian_eps(x, sigma):
    return (x - gaussian_denoiser(x, sigma)) / sigma


def test_ddim_uniform_matches_the_papers_timesteps():
    sigmas = ddim_uniform_sigmas(TRAIN_SIGMAS, 50)
    assert len(sigmas) == 51 and sigmas[-1] == 0
    assert torch.isclose(sigmas[0], TRAIN_SIGMAS[981].float())
    assert torch.isclose(sigmas[-2], TRAIN_SIGMAS[1].float())
    assert (sigmas[:-1] > sigmas[1:]).all()


@pytest.mark.parametrize("steps", [0, -3, 1000])
def test_ddim_uniform_rejects_bad_step_counts(steps):
    with pytest.raises(ValueError, match="steps"):
        ddim_uniform_sigmas(TRAIN_SIGMAS, steps)


def test_inversion_then_sampling_reconstructs_and_improves_with_steps():
    torch.manual_seed(0)
    x0 = torch.randn(1, 4, 8, 8) * DATA_STD
    errors = []
    for steps in (10, 50):
        sigmas = ddim_uniform_sigmas(TRAIN_SIGMAS, steps).double()
        trajectory = ddim_invert(gaussian_eps, x0.double(), sigmas)
        assert len(trajectory) == steps + 1 and torch.equal(trajectory[-1], x0.double())
        out = sample_dragon(lambda x, s, i: gaussian_denoiser(x, s), trajectory[0], sigmas)
        errors.append(float((out - x0).abs().max()))
    # DDIM inversion is first order (eps is taken at the neighbouring level): error ~ 1/steps
    assert errors[0] < 0.25
    assert errors[1] < 0.05
    assert errors[1] < errors[0] / 3


def test_zero_guidance_loop_equals_plain_ddim_exactly():
    torch.manual_seed(1)
    sigmas = ddim_uniform_sigmas(TRAIN_SIGMAS, 20)
    x = torch.randn(1, 4, 8, 8) * sigmas[0]
    plain = x.clone()
    for i in range(20):
        plain = ddim_step(plain, gaussian_eps(plain, sigmas[i]), sigmas[i], sigmas[i + 1])

    def denoise(x_, s, i):
        eps = gaussian_eps(x_, s)
        return guided_denoised(x_, eps, torch.zeros_like(x_), s, sigmas[i + 1])

    out = sample_dragon(denoise, x, sigmas)
    torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-5)


def test_guided_x0_gives_the_papers_step_under_an_euler_step():
    torch.manual_seed(2)
    x, eps, g = torch.randn(3, 1, 4, 4, 4).double()
    sigma, sigma_next = torch.tensor(3.0).double(), torch.tensor(2.2).double()
    x0_hat = guided_denoised(x, eps, g, sigma, sigma_next)
    euler = x0_hat + (x - x0_hat) / sigma * sigma_next
    paper = (x - sigma * (eps + g)) + sigma_next * eps  # guided x0, unguided direction
    torch.testing.assert_close(euler, paper)


def test_ancestral_sigmas_match_ddim_variance_and_zero_eta_is_deterministic():
    s, sn = torch.tensor(5.0), torch.tensor(3.0)
    down, up = ancestral_sigmas(s, sn, torch.tensor(0.0))
    assert float(up) == 0 and torch.isclose(down, sn)
    down, up = ancestral_sigmas(s, sn, torch.tensor(1.0))
    torch.testing.assert_close(down ** 2 + up ** 2, sn ** 2)
    # DDIM eta=1 variance in VP space, divided by alpha_bar_prev
    a, ap = 1 / (1 + s ** 2), 1 / (1 + sn ** 2)
    var_vp = (1 - ap) / (1 - a) * (1 - a / ap)
    torch.testing.assert_close(up ** 2, var_vp / ap)


def test_regional_sde_with_zero_eta_equals_ddim_and_noise_only_inside_region():
    torch.manual_seed(3)
    sigmas = ddim_uniform_sigmas(TRAIN_SIGMAS, 10)
    x = torch.randn(1, 1, 6, 6) * sigmas[0]
    base = sample_dragon(lambda x_, s, i: gaussian_denoiser(x_, s), x, sigmas)
    zero = sample_dragon(lambda x_, s, i: gaussian_denoiser(x_, s), x, sigmas, sde_steps=frozenset({2, 3}),
                         sde_eta=torch.zeros(6, 6), noise_fn=lambda t: torch.randn_like(t))
    torch.testing.assert_close(zero, base)
    region = torch.zeros(6, 6)
    region[:3] = 1
    noisy = sample_dragon(lambda x_, s, i: gaussian_denoiser(x_, s), x, sigmas, sde_steps=frozenset({2, 3}),
                          sde_eta=0.5 * region, noise_fn=lambda t: torch.randn_like(t))
    diff = (noisy - base).abs()[0, 0]
    assert float(diff[3:].max()) < 1e-4 < float(diff[:3].max())


def time_travel(steps, travel_steps):
    """sample_dragon over ``steps`` ddim_uniform steps of the Gaussian model, repeating ``travel_steps`` three times;
    (sigmas, the result, the sigmas the re-inversion's eps was asked at)."""
    sigmas = ddim_uniform_sigmas(TRAIN_SIGMAS, steps)
    calls = []

    def invert_eps(x_in, s):
        calls.append(float(s))
        return gaussian_eps(x_in, s)

    x = torch.ones(1, 1, 2, 2) * sigmas[0]
    out = sample_dragon(lambda x_, s, i: gaussian_denoiser(x_, s), x, sigmas,
                        time_travel_steps=frozenset(travel_steps), time_travel_repeats=3, invert_eps=invert_eps)
    return sigmas, out, calls


def test_time_travel_calls_inversion_between_repeats():
    sigmas, out, calls = time_travel(10, {4})
    x = torch.ones(1, 1, 2, 2) * sigmas[0]
    # eps of the re-inversion is taken at the lower level, where the latent is (the authors' time travel)
    assert len(calls) == 2 and all(abs(c - float(sigmas[5])) < 1e-6 for c in calls)
    plain = sample_dragon(lambda x_, s, i: gaussian_denoiser(x_, s), x, sigmas)
    # a re-inverted step lands near where it started, so the result stays within the inversion's error
    torch.testing.assert_close(out, plain, rtol=0.03, atol=0.03)


def test_time_travel_never_repeats_the_step_that_ends_at_the_clean_latent():
    """Re-inverting from sigma 0 needs eps at sigma 0, a division by zero: the step is taken once (it made the
    SD-1.5 GUIDER example's 3-step run all NaN, a black image)."""
    sigmas, out, calls = time_travel(3, {1, 2})
    assert torch.isfinite(out).all()
    assert len(calls) == 2 and all(c == pytest.approx(float(sigmas[2])) for c in calls)


@pytest.mark.parametrize("steps", range(1, 13))
def test_diffeditor_time_travel_stays_off_the_last_step_at_any_count(steps):
    travel = default_guidance("move", steps, "DiffEditor").time_travel_steps
    assert all(0 <= i < steps - 1 for i in travel), travel
    if steps >= 10:  # the window (22..28 of 50) scaled to the count
        assert travel


def test_schedules_follow_the_spec_at_50_steps():
    assert guided_step_schedule(50, "DragonDiffusion") == frozenset(range(30))
    diffeditor = guided_step_schedule(50, "DiffEditor")
    assert diffeditor == frozenset(list(range(10)) + list(range(10, 30, 2)))
    assert attention_step_schedule(50, InjectionMode.REPLACE) == frozenset(range(5, 50))
    assert attention_step_schedule(50, InjectionMode.COMPOSE) == frozenset(range(36))
    cfg = default_guidance("drag", 50, "DiffEditor")
    assert cfg.time_travel_steps == frozenset({22, 24, 26, 28})
    assert cfg.sde_steps == frozenset(range(11, 20))
    assert default_guidance("move", 50).step_size == 0.08 and default_guidance("paste", 50).step_size == 0.04

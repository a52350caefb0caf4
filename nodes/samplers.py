"""KSAMPLER functions: DDIM inversion filling the bank, and dragon_ddim (DiffEditor's regional SDE, time travel)."""
from __future__ import annotations

import torch

import comfy.model_management
import comfy.samplers
import comfy.utils
import latent_preview

from ..dragon_core.errors import DragonInputError
from ..dragon_core.inversion import ddim_invert, end_level, start_level
from ..dragon_core.memory_bank import BankPolicy, MemoryBank
from ..dragon_core.sampling import sample_dragon, sde_eta_map, seeded_noise
from .guiders import DragonGuider, DragonInversionGuider
from .input_checks import check_latent
from .model_identity import model_tag
from .runs import RecordRun
from .unet_layout import unet_layout


def _interrupt_check():
    comfy.model_management.throw_exception_if_processing_interrupted()


def inversion_sampler_function(model, x, sigmas, extra_args=None, callback=None, disable=None, bank=None):
    """A KSAMPLER function running DDIM inversion; ``sigmas`` are the descending sampling sigmas."""
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])

    def eps_fn(x_in, sigma):
        _interrupt_check()
        return (x_in - model(x_in, sigma * s_in, **extra_args)) / sigma

    def on_step(i, x_level):
        if callback is not None:
            callback({"x": x_level, "i": bank.steps - 1 - i, "sigma": sigmas[i], "sigma_hat": sigmas[i],
                      "denoised": x_level})

    trajectory = ddim_invert(eps_fn, start_level(x, sigmas[-1]), sigmas, on_step)
    bank.latents[:] = [t.detach().to(device=bank.policy.device, dtype=torch.float32, copy=True) for t in trajectory]
    return trajectory[0]


INVERSION_ENDS = ("clean latent (sigma 0)", "alpha_bar_0 (paper)")


def run_inversion(model, latent: dict, positive, steps: int, policy: BankPolicy,
                  end: str = INVERSION_ENDS[0]) -> tuple[MemoryBank, dict]:
    """DDIM-invert a LATENT with the model, recording the memory bank in the same UNet passes.

    ``end``: where the inversion starts and the edit's sampling ends: sigma 0 (ComfyUI's ddim_uniform), or, as
    the authors' scheduler does (SD's ``set_alpha_to_one=False``), alpha_bar of the first training timestep."""
    if end not in INVERSION_ENDS:
        raise DragonInputError("inversion_end", f"must be one of {INVERSION_ENDS}, got {end!r}")
    layout = unet_layout(model)
    samples = check_latent(latent)
    model_sampling = model.get_model_object("model_sampling")
    max_steps = len(model_sampling.sigmas) - 1
    if not 1 <= steps <= max_steps:
        raise DragonInputError("steps", f"must be 1..{max_steps} for this model (its training schedule has "
                               f"{max_steps + 1} timesteps), got {steps}")
    sigmas = comfy.samplers.calculate_sigmas(model_sampling, "ddim_uniform", steps).cpu()
    sigmas = sigmas.float()
    if end == INVERSION_ENDS[1]:
        sigmas[-1] = float(model_sampling.sigmas[0])
    bank = MemoryBank(sigmas=sigmas, latent_shape=tuple(samples.shape), model_tag=model_tag(model), policy=policy)
    run = RecordRun(bank, layout)
    guider = DragonInversionGuider(model, positive, run)
    # The stock KSAMPLER: with zero noise its noise scaling hands the sampler the latent itself (eps and v
    # models), so the inversion starts from the clean latent as it must.
    sampler = comfy.samplers.KSAMPLER(inversion_sampler_function, extra_options={"bank": bank})
    callback = latent_preview.prepare_callback(guider.model_patcher, steps)
    try:
        x_T = guider.sample(torch.zeros_like(samples), samples, sampler, sigmas, callback=callback,
                            disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=0)
    except BaseException:
        bank.release()
        raise
    return bank, {"samples": x_T.cpu()}


def dragon_ddim_function(model, x, sigmas, extra_args=None, callback=None, disable=None, seed=0):
    """KSAMPLER function: DDIM with DiffEditor's regional SDE and time travel, for DragonGuider."""
    guider = getattr(model, "inner_model", None)
    if not isinstance(guider, DragonGuider):
        raise DragonInputError("sampler", "dragon_ddim runs only under DragonGuider (or the DragonSampler node)")
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])
    g = guider.run.guidance
    geometry = guider.run.geometry

    def denoise(x_, sigma, i):
        _interrupt_check()
        return model(x_, sigma * s_in, **extra_args)

    eta = None
    if g.sde_steps:
        eta = sde_eta_map(geometry.latent_edit_region, g.sde_eta_inside, g.sde_eta_outside, x.dtype).to(x.device)

    def invert_eps(x_in, sigma):
        _interrupt_check()
        return guider.plain_eps(x_in, sigma, extra_args.get("model_options", {}))

    def on_step(i, x_next, x0):
        if callback is not None:
            callback({"x": x_next, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": x0})

    guider.sde_eta = eta  # the guider folds its x0 for this sampler's regional-SDE steps
    try:
        x = sample_dragon(denoise, x, sigmas, sde_steps=g.sde_steps, sde_eta=eta, noise_fn=seeded_noise(seed),
                          time_travel_steps=g.time_travel_steps, time_travel_repeats=g.time_travel_repeats,
                          invert_eps=invert_eps, callback=on_step)
    finally:
        guider.sde_eta = None
    return end_level(x, sigmas[-1])  # the latent the authors decode when sampling ends at alpha_bar_0

"""Which SAMPLER and NOISE DragonGuider can be sampled with, and the node error for every other one.

DragonGuider folds the energy gradient (and the locks' blend) into the x0 it returns, so that a sampler's step
``x_next = x0 + (x - x0) * sigma_next / sigma`` from each of the bank's sigmas to the next one is exactly the
guided DDIM step (docs/ARCHITECTURE.md, "Samplers under DragonGuider"). That holds for a sampler that
- evaluates the model only at the bank's sigmas (the attention, gradient and locks are defined per inverted step),
- takes one deterministic first-order step per evaluation, landing at the next sigma, and
- uses only the current x0 (no history, no unconditional-only prediction).
ComfyUI's ``euler`` and ``ddim`` (both ``sample_euler``; ddim only adds an inpainting noise that the guider's
refusal of a noise_mask makes unused) and the pack's ``dragon_ddim`` (which applies its own regional SDE and time
travel) are such samplers. Every other stock sampler breaks one of the three.
"""
from __future__ import annotations

from typing import Optional

import torch

import comfy.k_diffusion.sampling as k_sampling
import comfy.samplers

from ..dragon_core.errors import DragonInputError

SUPPORTED = "euler or ddim (KSamplerSelect), or DragonDDIMSampler for regional SDE and time travel"

# Why each family of stock samplers breaks the fold (the name is ComfyUI's sampler_name).
_EVALUATES_OFF_GRID = "evaluates the model between or at the next of the inversion's sigmas (a second stage)"
_MULTISTEP = "combines the x0 of several steps, mixing one step's guidance into the next"
_FRESH_NOISE = "adds fresh noise at every step, leaving the inversion's deterministic path and the fold's landing sigma"
_CFG_PP = "steps with the unconditional prediction, which carries no guidance"
_REASONS = {
    **dict.fromkeys(("heun", "heunpp2", "dpm_2", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_sde_gpu",
                     "dpm_fast", "dpm_adaptive", "seeds_2", "seeds_3"),
                    _EVALUATES_OFF_GRID),
    **dict.fromkeys(("dpmpp_2m", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun",
                     "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "lms", "deis",
                     "ipndm", "ipndm_v", "res_multistep", "res_multistep_ancestral", "gradient_estimation", "sa_solver",
                     "sa_solver_pece", "uni_pc", "uni_pc_bh2"), _MULTISTEP),
    **dict.fromkeys(("euler_ancestral", "ddpm", "lcm", "er_sde"), _FRESH_NOISE),
    **dict.fromkeys(("euler_cfg_pp", "euler_ancestral_cfg_pp", "dpmpp_2m_cfg_pp", "res_multistep_cfg_pp",
                     "res_multistep_ancestral_cfg_pp", "gradient_estimation_cfg_pp", "dpmpp_2s_ancestral_cfg_pp"),
                    _CFG_PP),
}
_OTHER = "does not take one deterministic first-order step from each of the inversion's sigmas"

_names_by_function: dict = {}


def _stock_name(function) -> Optional[str]:
    """ComfyUI's sampler_name of a KSAMPLER function (None for a function of no stock sampler)."""
    if not _names_by_function:
        for name in comfy.samplers.SAMPLER_NAMES:
            _names_by_function.setdefault(comfy.samplers.sampler_object(name).sampler_function, name)
    name = _names_by_function.get(function)
    if name is None:  # dpm_fast / dpm_adaptive are closures made per sampler_object() call
        base = getattr(function, "__name__", "")
        if base.endswith("_function") and base[:-len("_function")] in comfy.samplers.SAMPLER_NAMES:
            name = base[:-len("_function")]
    return name


def sampler_name(sampler) -> str:
    """A readable name of a SAMPLER: ComfyUI's sampler_name, or the function's or the class's own name."""
    function = getattr(sampler, "sampler_function", None)
    if function is None:
        return type(sampler).__name__
    name = _stock_name(function)
    if name is not None:
        return name
    return getattr(function, "__qualname__", type(function).__name__).removeprefix("sample_")


def check_sampler(sampler, own_functions: tuple) -> None:
    """Refuse a SAMPLER whose steps the guider's x0 fold does not make the guided DDIM step."""
    function = getattr(sampler, "sampler_function", None)
    if isinstance(sampler, comfy.samplers.KSAMPLER):
        if function in own_functions:
            return
        if function is k_sampling.sample_euler:
            churn = float(sampler.extra_options.get("s_churn", 0.0))
            if churn == 0.0:
                return
            raise DragonInputError("sampler", f"euler with s_churn {churn:g} evaluates the model above the "
                                   f"inversion's sigmas, which DragonGuider cannot guide; use {SUPPORTED}")
    name = sampler_name(sampler)
    reason = _REASONS.get(name, _OTHER)
    raise DragonInputError("sampler", f"{name} is not supported by DragonGuider: it {reason}. Use {SUPPORTED}")


def check_noise(noise: torch.Tensor) -> None:
    """Refuse added noise: the start latent already is the inverted noise at the first sigma."""
    if noise is not None and bool(torch.count_nonzero(noise)):
        raise DragonInputError("noise", "is random noise, which ComfyUI adds at the first sigma on top of the start "
                               "latent (already the inverted noise) and so buries the edit; connect DisableNoise")


def off_grid_error(sigma: float, bank_sigmas: torch.Tensor) -> DragonInputError:
    """The error for a model evaluation at a sigma that is none of the bank's steps (it would get no attention,
    guidance or lock, silently)."""
    return DragonInputError("sampler", f"evaluated the model at sigma {sigma:.6g}, which is none of the memory bank's "
                            f"{len(bank_sigmas) - 1} step sigmas; DragonGuider guides only the inversion's steps: "
                            f"connect DragonBankSigmas and use {SUPPORTED}")

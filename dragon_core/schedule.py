"""DDIM in k-diffusion sigma space, kept apart from any model plumbing.

Conventions: a noisy latent is ``x = x0 + sigma * eps``; an eps-prediction UNet sees ``x / sqrt(1 + sigma^2)``
(the VP latent z_t), so ``alpha_bar = 1 / (1 + sigma^2)``. In sigma space a deterministic DDIM step is the Euler
step ``x_next = x0 + sigma_next * eps``, and so is a DDIM inversion step (with ``sigma_next > sigma``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .errors import DragonInputError


def scaled_linear_alphas_cumprod(num_train_steps: int = 1000, beta_start: float = 0.00085,
                                 beta_end: float = 0.012) -> Tensor:
    """The SD-1.x/2.x training schedule (float64)."""
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_steps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def sigmas_from_alphas_cumprod(alphas_cumprod: Tensor) -> Tensor:
    return ((1.0 - alphas_cumprod) / alphas_cumprod).sqrt()


def ddim_uniform_sigmas(train_sigmas: Tensor, steps: int) -> Tensor:
    """Descending sampling sigmas ending with 0, the timesteps 1, 1+k, 1+2k, ... (k = T // steps).

    Matches ComfyUI's ``ddim_uniform`` scheduler and, for 50 steps of a 1000-step model, the DDIM timesteps
    981, 961, ..., 1 that DragonDiffusion uses.
    """
    if not isinstance(steps, int) or steps < 1:
        raise DragonInputError("steps", f"must be an integer >= 1, got {steps!r}")
    if steps > len(train_sigmas) - 1:
        raise DragonInputError("steps", f"at most {len(train_sigmas) - 1} for this model, got {steps}")
    stride = max(len(train_sigmas) // steps, 1)
    picked = train_sigmas[1::stride][:steps]
    return torch.cat([picked.flip(0), picked.new_zeros(1)]).to(torch.float32)


def ddim_step(x: Tensor, eps: Tensor, sigma: Tensor | float, sigma_next: Tensor | float) -> Tensor:
    """Deterministic DDIM step (also an inversion step when sigma_next > sigma)."""
    x0 = x - sigma * eps
    return x0 + sigma_next * eps


def inversion_model_input(x: Tensor, sigma: Tensor | float, sigma_next: Tensor | float) -> Tensor:
    """The sigma-space input that makes the UNet see the latent of level ``sigma`` at the timestep of
    ``sigma_next``.

    DDIM inversion evaluates eps(z_prev, t_next): the current (less noisy) VP latent with the next timestep.
    A host that scales its input by 1/sqrt(1 + sigma^2) must therefore be fed x rescaled to ``sigma_next``.
    """
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    sigma_next = torch.as_tensor(sigma_next, dtype=x.dtype, device=x.device)
    return x * ((1.0 + sigma_next ** 2) / (1.0 + sigma ** 2)).sqrt()


def eps_from_denoised(x: Tensor, denoised: Tensor, sigma: Tensor | float) -> Tensor:
    return (x - denoised) / sigma


def guided_denoised(x: Tensor, eps: Tensor, grad: Tensor, sigma: Tensor | float,
                    sigma_next: Tensor | float) -> Tensor:
    """The x0 prediction that, followed by a plain Euler/DDIM step to ``sigma_next``, gives DragonDiffusion's
    guided step.

    The paper's step uses eps + grad for x0 but the unguided eps for the direction term:
    ``x_next = x - sigma * (eps + grad) + sigma_next * eps``. Returning
    ``x0 = x - sigma * eps - sigma^2 / (sigma - sigma_next) * grad`` makes any first-order sampler (ComfyUI's
    euler and ddim included) take exactly that step, so the guidance can live in a GUIDER.
    """
    k = sigma * sigma / (sigma - sigma_next)
    return x - sigma * eps - k * grad


def ancestral_sigmas(sigma: Tensor | float, sigma_next: Tensor | float, eta: Tensor | float) -> tuple[Tensor, Tensor]:
    """(sigma_down, sigma_up) of a DDIM step with stochasticity eta, in sigma space.

    DDIM's variance sigma_eta^2 = eta^2 (1-a_prev)/(1-a) (1-a/a_prev) becomes, divided by a_prev,
    eta^2 * sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2. ``eta`` may be a per-pixel map.
    """
    sigma = torch.as_tensor(sigma)
    sigma_next = torch.as_tensor(sigma_next)
    eta = torch.as_tensor(eta)
    if float(sigma_next) == 0.0:
        return torch.zeros_like(eta, dtype=torch.float32), torch.zeros_like(eta, dtype=torch.float32)
    sigma_up = (eta * (sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2).sqrt()).clamp(max=float(sigma_next))
    sigma_down = (sigma_next ** 2 - sigma_up ** 2).sqrt()
    return sigma_down, sigma_up

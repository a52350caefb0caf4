"""DDIM in k-diffusion sigma space, kept apart from any model plumbing.

Conventions: a noisy latent is ``x = x0 + sigma * eps``; an eps-prediction UNet sees ``x / sqrt(1 + sigma^2)``
(the VP latent z_t), so ``alpha_bar = 1 / (1 + sigma^2)``. In sigma space a deterministic DDIM step is the Euler
step ``x_next = x0 + sigma_next * eps``, and so is a DDIM inversion step (with ``sigma_next > sigma``).
"""
from __future__ import annotations

import torch
from torch import Tensor


def scaled_linear_alphas_cumprod(num_train_steps: int = 1000, beta_start: float = 0.00085,
                                 beta_end: float = 0.012) -> Tensor:
    """The SD-1.x/2.x training schedule (float64)."""
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_steps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def sigmas_from_alphas_cumprod(alphas_cumprod: Tensor) -> Tensor:
    return ((1.0 - alphas_cumprod) / alphas_cumprod).sqrt()


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

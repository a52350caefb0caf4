"""The guided DDIM loop as a plain function over a model callable (k-diffusion style).

``denoise(x, sigma, step)`` returns the x0 prediction with the energy guidance already folded in for the step
the loop takes (see :func:`dragon_core.step.edit_step_x0`), so the loop itself is DDIM plus DiffEditor's
regional SDE and time travel (DiffEditor, Mou et al. 2024, Sec. 3.3).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from .inversion import EpsFn, reinvert_step
from .schedule import ancestral_sigmas

DenoiseFn = Callable[[Tensor, Tensor, int], Tensor]
NoiseFn = Callable[[Tensor], Tensor]
StepCallback = Callable[[int, Tensor, Tensor], None]


def sample_dragon(denoise: DenoiseFn, x: Tensor, sigmas: Tensor, *,
                  sde_steps: frozenset[int] = frozenset(), sde_eta: Optional[Tensor] = None,
                  noise_fn: Optional[NoiseFn] = None,
                  time_travel_steps: frozenset[int] = frozenset(), time_travel_repeats: int = 1,
                  invert_eps: Optional[EpsFn] = None,
                  callback: Optional[StepCallback] = None) -> Tensor:
    """Run the edit from x (the start latent at sigmas[0]) down to sigma = 0.

    sde_eta: per-pixel eta map (broadcastable to x) used at ``sde_steps``; noise_fn(x) draws the shared noise.
    At ``time_travel_steps`` the step is taken ``time_travel_repeats`` times, re-inverting in between with
    ``invert_eps`` (cond only, no bank attention). ``callback(i, x_next, x0)`` runs after each step.
    """
    if sde_steps and (sde_eta is None or noise_fn is None):
        raise ValueError("regional SDE needs sde_eta and noise_fn")
    if time_travel_steps and invert_eps is None:
        raise ValueError("time travel needs invert_eps")
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        repeats = time_travel_repeats if is_time_travel_step(i, sigma_next, time_travel_steps) else 1
        for r in range(repeats):
            x0 = denoise(x, sigma, i)
            if is_sde_step(i, sigma_next, sde_steps):
                sigma_down, sigma_up = ancestral_sigmas(sigma, sigma_next, sde_eta)
                direction = (x - x0) / sigma
                x_next = x0 + direction * sigma_down.to(x) + noise_fn(x) * sigma_up.to(x)
            else:
                x_next = x0 + (x - x0) * (sigma_next / sigma)
            if r < repeats - 1:
                x = reinvert_step(invert_eps, x_next, sigma_next, sigma)
        if callback is not None:
            callback(i, x_next, x0)
        x = x_next
    return x


def is_sde_step(step: int, sigma_next: Tensor | float, sde_steps: frozenset[int]) -> bool:
    return step in sde_steps and float(sigma_next) > 0


def is_time_travel_step(step: int, sigma_next: Tensor | float, time_travel_steps: frozenset[int]) -> bool:
    """A step that ends at sigma 0 is never repeated: re-inverting from the clean latent would divide by 0."""
    return step in time_travel_steps and float(sigma_next) > 0


def sde_eta_map(region: Tensor, eta_inside: float, eta_outside: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """DiffEditor's regional SDE: eta inside the edit region, another (the authors' code: 0) outside."""
    region = region.to(dtype)
    return eta_inside * region + eta_outside * (1.0 - region)


def step_sigma_down(step: int, sigma: Tensor, sigma_next: Tensor, sde_steps: frozenset[int],
                    sde_eta: Optional[Tensor]) -> Tensor:
    """Where :func:`sample_dragon`'s step ``step`` takes its direction term: ``sigma_next``, or the per-pixel
    ``sigma_down`` at a regional-SDE step (what :func:`dragon_core.step.edit_step_x0` must fold for)."""
    if sde_eta is not None and is_sde_step(step, sigma_next, sde_steps):
        return ancestral_sigmas(sigma, sigma_next, sde_eta)[0]
    return sigma_next


def seeded_noise(seed: int) -> NoiseFn:
    """Deterministic Gaussian noise on the CPU, moved to the latent's device (same result on every device)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)

    def draw(x: Tensor) -> Tensor:
        return torch.randn(x.shape, generator=generator, dtype=torch.float32).to(device=x.device, dtype=x.dtype)

    return draw

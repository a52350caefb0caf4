"""Deterministic DDIM inversion over the sampling sigmas (SPEC §1)."""
from __future__ import annotations

from typing import Callable, Optional

from torch import Tensor

from .schedule import ddim_step, inversion_model_input

EpsFn = Callable[[Tensor, Tensor], Tensor]


def ddim_invert(eps_fn: EpsFn, x0: Tensor, sigmas: Tensor,
                callback: Optional[Callable[[int, Tensor], None]] = None) -> list[Tensor]:
    """Invert a clean latent along descending ``sigmas`` (ending with 0).

    ``eps_fn(x_in, sigma)`` predicts eps for a sigma-space input at ``sigma`` (the host's UNet, cond only).
    Returns ``latents`` with ``latents[i]`` at ``sigmas[i]``: latents[0] is x_T, latents[-1] is x0.
    Each step evaluates the UNet on the current latent with the next timestep, as DDIM inversion does;
    ``callback(step_index, x)`` runs after each step with the sampling index of the level reached.
    """
    ascending = sigmas.flip(0)
    x = x0
    trajectory = [x0]
    steps = len(sigmas) - 1
    for j in range(steps):
        sigma, sigma_next = ascending[j], ascending[j + 1]
        eps = eps_fn(inversion_model_input(x, sigma, sigma_next), sigma_next)
        x = ddim_step(x, eps, sigma, sigma_next)
        trajectory.append(x)
        if callback is not None:
            callback(steps - 1 - j, x)
    return trajectory[::-1]


def reinvert_step(eps_fn: EpsFn, x: Tensor, sigma: Tensor, sigma_up: Tensor) -> Tensor:
    """One deterministic DDIM inversion step from ``sigma`` back up to ``sigma_up`` (time travel)."""
    eps = eps_fn(inversion_model_input(x, sigma, sigma_up), sigma_up)
    return ddim_step(x, eps, sigma, sigma_up)

"""Deterministic DDIM inversion over the sampling sigmas (DragonDiffusion Sec. 3.1; Song et al. 2021, Eq. 13)."""
from __future__ import annotations

from typing import Callable, Optional

from torch import Tensor

from .schedule import ddim_step, inversion_model_input

EpsFn = Callable[[Tensor, Tensor], Tensor]


def ddim_invert(eps_fn: EpsFn, x0: Tensor, sigmas: Tensor,
                callback: Optional[Callable[[int, Tensor], None]] = None) -> list[Tensor]:
    """Invert a clean latent along descending ``sigmas`` (ending with 0, or with sigma(alpha_bar_0) for the
    authors' convention: then ``x0`` is the clean latent already scaled to that level, see :func:`start_level`).

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
    """One deterministic DDIM inversion step from ``sigma`` back up to ``sigma_up`` (DiffEditor's time travel).

    As in the authors' code, eps is predicted at the lower level, where x is (``eps(x, sigma)``), not at the
    timestep of ``sigma_up`` as the inversion of the bank does."""
    eps = eps_fn(x, sigma)
    return ddim_step(x, eps, sigma, sigma_up)


def start_level(latent: Tensor, sigma_end: Tensor | float) -> Tensor:
    """A clean (VP) latent as the sigma-space latent at ``sigma_end``: ``z * sqrt(1 + sigma_end^2)``.

    With the authors' scheduler (``set_alpha_to_one=False``) the inversion starts from, and sampling ends at,
    alpha_bar_0 = 1 / (1 + sigma_end^2) instead of a clean latent; at ``sigma_end`` = 0 this is the identity."""
    return latent * (1.0 + float(sigma_end) ** 2) ** 0.5


def end_level(x: Tensor, sigma_end: Tensor | float) -> Tensor:
    """The inverse of :func:`start_level`: the VP latent the authors decode after their last step."""
    return x / (1.0 + float(sigma_end) ** 2) ** 0.5

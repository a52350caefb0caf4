"""One edit step's x0 prediction: the order of blend, CFG, energy gradient, fold and refold, in one place.

A host's guider calls :func:`edit_step_x0` at every sampler step; the sampler then takes a plain first-order step
``x_next = x0 + (x - x0) * sigma_down / sigma`` (+ ``sigma_up`` noise at a regional-SDE step). The returned x0 is
chosen so that this step is the authors' guided DDIM step (DragonDiffusion, Mou et al. 2024, Sec. 3.3 and
Alg. 1; the authors' code takes x0 from the guided eps and the direction term from the unguided eps)::

    x_next = x_in - sigma * (eps + g) + sigma_down * eps + sigma_up * noise

where ``x_in`` is the latent the UNet saw (after the pack's locks, if any), ``eps`` the CFG prediction on it and
``g`` the energy gradient (see :func:`dragon_core.guidance.energy_gradient`). ``sigma_down`` may be a per-pixel
map (DiffEditor's regional SDE, Sec. 3.3 of DiffEditor, Mou et al. 2024); at a deterministic step it is the
next sigma. docs/ARCHITECTURE.md ("The per-step recipe") walks through the derivation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from .background import blend_toward

DenoiseFn = Callable[[Tensor], Tensor]      # x_in -> CFG x0 prediction (the host's UNet passes)
GradientFn = Callable[[Tensor], Tensor]     # x_in -> energy gradient g (eps units)
X0Transform = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Blend:
    """Before the UNet sees it, the latent follows ``target`` where ``keep`` is 1 (the pack's locks: the
    inverted latent of the step, or the object's carried inversion)."""
    target: Tensor
    keep: Tensor


def fold_guidance(x_in: Tensor, eps: Tensor, grad: Tensor, sigma: Tensor | float,
                  sigma_down: Tensor | float) -> Tensor:
    """x0 with which the step ``x0 + (x_in - x0) sigma_down / sigma`` is ``x_in - sigma (eps + g) + sigma_down eps``.

    Solving gives ``x0 = x_in - sigma eps - sigma^2 / (sigma - sigma_down) g``.
    """
    sigma = torch.as_tensor(sigma, dtype=x_in.dtype, device=x_in.device)
    sigma_down = torch.as_tensor(sigma_down, dtype=x_in.dtype, device=x_in.device)
    return x_in - sigma * eps - sigma * sigma / (sigma - sigma_down) * grad


def refold(x0: Tensor, x_in: Tensor, x: Tensor, sigma: Tensor | float, sigma_down: Tensor | float) -> Tensor:
    """The x0 with which the step from the sampler's own ``x`` lands where the step from ``x_in`` (with ``x0``)
    lands: ``x0 + (x_in - x0) r == x0' + (x - x0') r`` with ``r = sigma_down / sigma`` gives
    ``x0' = x0 + (x_in - x) r / (1 - r)``. Exact for a per-pixel ``sigma_down`` too."""
    r = (torch.as_tensor(sigma_down, dtype=torch.float64) / torch.as_tensor(sigma, dtype=torch.float64))
    if bool((r < 0).any()) or bool((r >= 1).any()):
        raise ValueError(f"the step must go down in sigma (sigma {float(sigma)}, sigma_down {r.max().item() * float(sigma)})")
    factor = (r / (1.0 - r)).to(device=x0.device, dtype=x0.dtype)
    return x0 + (x_in - x) * factor


def edit_step_x0(x: Tensor, sigma: Tensor, sigma_down: Tensor | float, denoise: DenoiseFn, *,
                 blends: Sequence[Blend] = (), energy_grad: Optional[GradientFn] = None,
                 x0_transform: Optional[X0Transform] = None) -> Tensor:
    """The x0 a first-order sampler at ``x`` (sigma) should be given, stepping to ``sigma_down``.

    1. blend: ``x_in`` = x after each of ``blends`` in order (none in the paper presets);
    2. CFG: ``denoise(x_in)`` (the host's conditional and unconditional passes with cross-branch attention);
    3. energy gradient at ``x_in`` when ``energy_grad`` is given (a guided step);
    4. fold the gradient into x0 (:func:`fold_guidance`): x0 from the guided eps, direction from the unguided;
    5. refold onto the sampler's own x when a blend changed the latent (:func:`refold`);
    6. ``x0_transform`` (the pack's object lock on x0), last.
    """
    x_in = x
    for blend in blends:
        x_in = blend_toward(x_in, blend.target, blend.keep)
    denoised = denoise(x_in)
    if energy_grad is not None:
        eps = (x_in - denoised) / sigma
        grad = energy_grad(x_in).to(x.dtype)
        denoised = fold_guidance(x_in, eps, grad, sigma, sigma_down)
    if x_in is not x:
        denoised = refold(denoised, x_in, x, sigma, sigma_down)
    if x0_transform is not None:
        denoised = x0_transform(denoised)
    return denoised

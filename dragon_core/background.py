"""Background lock (beyond the paper): outside the edit region, the edit follows the inversion's trajectory.

DragonDiffusion keeps the background only through the content energy and cross-branch attention. A moved
start latent still changes the whole DDIM trajectory (every UNet layer with attention sees the whole image),
so the unedited part drifts. Here, at the chosen steps, the latent outside a slightly grown, feathered edit
region is replaced by the inverted latent of that step before the UNet sees it, and the returned x0 is
re-expressed so that a first-order sampler stepping from its own x lands where the step from the blended
latent lands (dragon_core.step.refold). The edit region itself is left free, so the object can move and its old place be filled.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def background_keep_mask(latent_edit_region: Tensor, grow: int = 1) -> Tensor:
    """Float [h, w] in [0, 1]: 1 where the latent follows the inversion, 0 in the (grown) edit region.

    ``grow`` latent cells of margin around the edit region stay free, and the edge is feathered over one
    more cell, so the edited content can blend into its surroundings without a seam.
    """
    if grow < 0:
        raise ValueError(f"grow must be >= 0, got {grow}")
    region = latent_edit_region.float()[None, None]
    if grow:
        region = F.max_pool2d(region, 2 * grow + 1, stride=1, padding=grow)
    soft = F.avg_pool2d(F.pad(region, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (1.0 - torch.maximum(region, soft))[0, 0]


def blend_toward(x: Tensor, target: Tensor, keep: Tensor) -> Tensor:
    """x where keep = 0, ``target`` (the inverted latent, or a lock's x0) where keep = 1."""
    keep = keep.to(device=x.device, dtype=x.dtype)
    return x + keep * (target.to(device=x.device, dtype=x.dtype) - x)


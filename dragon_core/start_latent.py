"""Copy-paste initialisation of the start latent x_T per mode (SPEC §4)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .geometry import EditGeometry


def _scaled(x: Tensor, hw: tuple[int, int]) -> Tensor:
    # nearest keeps the inverted noise's statistics, which bilinear would smooth away
    return x if tuple(x.shape[-2:]) == tuple(hw) else F.interpolate(x, size=hw, mode="nearest")


def start_latent(x_T: Tensor, geom: EditGeometry, reference_x_T: Optional[Tensor] = None) -> Tensor:
    """The edited branch's start latent from the inverted x_T of the base (and reference) image."""
    x = x_T.clone()
    if geom.mode in ("move", "resize"):
        place = geom.latent_place
        src = _scaled(x_T, place.scaled_hw)
        x[..., place.dest] = src[..., place.source]
    elif geom.mode == "drag":
        rows, cols = x.shape[-2:]
        d = torch.arange(-1, 2)
        dy, dx = torch.meshgrid(d, d, indexing="ij")
        for (hr, hc), (tr, tc) in zip(geom.handle_latent.tolist(), geom.target_latent.tolist()):
            ok = ((hr + dy >= 0) & (hr + dy < rows) & (hc + dx >= 0) & (hc + dx < cols) &
                  (tr + dy >= 0) & (tr + dy < rows) & (tc + dx >= 0) & (tc + dx < cols))
            x[..., (tr + dy)[ok], (tc + dx)[ok]] = x_T[..., (hr + dy)[ok], (hc + dx)[ok]]
    elif geom.mode == "paste":
        if reference_x_T is None:
            raise ValueError("paste needs the reference image's x_T")
        place = geom.latent_place
        src = _scaled(reference_x_T.to(x), place.scaled_hw)
        x[..., place.dest] = src[..., place.source]
    return x

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


def subcell_shift(x: Tensor, shift_rc: tuple[float, float]) -> Tensor:
    """``x`` [..., H, W] moved by a fraction of a cell, (rows, cols), by the Fourier shift theorem.

    Unlike bilinear resampling, which averages neighbouring cells and so shrinks the variance of noise, a phase
    shift keeps every frequency's power (but the Nyquist row/column of even sides, whose finest checkerboard a
    half-cell shift puts between the cells): shifted white noise stays white with nearly the same variance. The
    shift is circular; callers copy only the object's cells from the result."""
    dy, dx = float(shift_rc[0]), float(shift_rc[1])
    if dy == 0.0 and dx == 0.0:
        return x
    rows, cols = x.shape[-2:]
    fy = torch.fft.fftfreq(rows, device=x.device, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(cols, device=x.device, dtype=torch.float64)[None, :]
    phase = torch.exp(-2j * torch.pi * (fy * dy + fx * dx))
    shifted = torch.fft.irfft2(torch.fft.rfft2(x.double()) * phase, s=(rows, cols))
    return shifted.to(x.dtype)


def start_latent(x_T: Tensor, geom: EditGeometry, reference_x_T: Optional[Tensor] = None,
                 subcell: bool = True) -> Tensor:
    """The edited branch's start latent from the inverted x_T of the base (and reference) image.

    SPEC §4 copies whole latent cells, so the copied object lands up to half a cell (4 px) from where the edit
    asked; with ``subcell`` (beyond the paper) the copied noise is first moved by the rounded-away fraction."""
    x = x_T.clone()
    if geom.mode in ("move", "resize", "paste"):
        place = geom.latent_place
        if geom.mode == "paste":
            if reference_x_T is None:
                raise ValueError("paste needs the reference image's x_T")
            src = _scaled(reference_x_T.to(x), place.scaled_hw)
        else:
            src = _scaled(x_T, place.scaled_hw)
        if subcell:
            src = subcell_shift(src, place.residual)
        x[..., place.dest] = src[..., place.source]
    elif geom.mode == "drag":
        rows, cols = x.shape[-2:]
        d = torch.arange(-1, 2)
        dy, dx = torch.meshgrid(d, d, indexing="ij")
        pairs = zip(geom.handle_latent.tolist(), geom.target_latent.tolist(), geom.latent_residual.tolist())
        for (hr, hc), (tr, tc), residual in pairs:
            ok = ((hr + dy >= 0) & (hr + dy < rows) & (hc + dx >= 0) & (hc + dx < cols) &
                  (tr + dy >= 0) & (tr + dy < rows) & (tc + dx >= 0) & (tc + dx < cols))
            src = subcell_shift(x_T, residual) if subcell else x_T
            x[..., (tr + dy)[ok], (tc + dx)[ok]] = src[..., (hr + dy)[ok], (hc + dx)[ok]]
    return x

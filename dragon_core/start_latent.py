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
        for (src_r, src_c), (dst_r, dst_c), residual in drag_patch_cells(geom):
            src = subcell_shift(x_T, residual) if subcell else x_T
            x[..., dst_r, dst_c] = src[..., src_r, src_c]
    return x


def drag_patch_cells(geom: EditGeometry) -> list[tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], list[float]]]:
    """Per handle/target pair: the 3x3 latent cells around the handle, those around the target (both inside
    the latent), as (rows, cols) index tensors, and the pair's sub-cell residual."""
    rows, cols = geom.latent_hw
    d = torch.arange(-1, 2)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    cells = []
    pairs = zip(geom.handle_latent.tolist(), geom.target_latent.tolist(), geom.latent_residual.tolist())
    for (hr, hc), (tr, tc), residual in pairs:
        ok = ((hr + dy >= 0) & (hr + dy < rows) & (hc + dx >= 0) & (hc + dx < cols) &
              (tr + dy >= 0) & (tr + dy < rows) & (tc + dx >= 0) & (tc + dx < cols))
        cells.append((((hr + dy)[ok], (hc + dx)[ok]), ((tr + dy)[ok], (tc + dx)[ok]), residual))
    return cells

"""Copy-paste initialisation of the start latent x_T per mode (docs/SPEC.md §4; DragonDiffusion Sec. 3.4)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .grids import patch_pairs
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


DRAG_PATCH_RADIUS = 1  # docs/SPEC.md §4: drag copies the 3x3 latent patch at each handle (the authors' process_drag)


def start_latent(x_T: Tensor, geom: EditGeometry, reference_x_T: Optional[Tensor] = None,
                 subcell: Optional[bool] = None, drag_radius: int = DRAG_PATCH_RADIUS) -> Tensor:
    """The edited branch's start latent from the inverted x_T of the base (and reference) image.

    The papers copy whole latent cells (docs/SPEC.md §4), so the copied object lands up to half a cell (4 px)
    from where the edit asked; with ``subcell`` (beyond the paper; default: unless ``geom.whole_cells``) the
    copied noise is first moved by the rounded-away fraction. A drag copies the (2 * drag_radius + 1)^2 patch
    around each handle; with whole cells, pair after pair into the same latent as the authors' code does (a
    later pair reads what an earlier one wrote)."""
    if subcell is None:
        subcell = not geom.whole_cells
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
        flat = x.flatten(-2)  # a view: writes land in x
        for src_idx, dst_idx, residual in drag_patch_cells(geom, drag_radius):
            src = subcell_shift(x_T, residual) if subcell else x
            flat[..., dst_idx] = src.flatten(-2)[..., src_idx]
    return x


def drag_patch_cells(geom: EditGeometry, radius: int = DRAG_PATCH_RADIUS
                     ) -> list[tuple[Tensor, Tensor, list[float]]]:
    """Per handle/target pair: flat latent indices of the (2r+1)^2 cells around the handle and of those around
    the target (clipped in pairs, as :func:`patch_pairs` does on the feature grid), and the pair's sub-cell
    residual."""
    h_idx, t_idx, valid = patch_pairs(geom.handle_latent, geom.target_latent, geom.latent_hw, radius)
    return [(h[v], t[v], residual)
            for h, t, v, residual in zip(h_idx, t_idx, valid, geom.latent_residual.tolist())]

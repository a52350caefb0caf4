"""An edit turned into the masks and index sets the engine needs, on the feature grid and the latent grid.

Computed once per edit (and latent size); the energies, the gradient split, the start latent and the attention
policies all read from it, so they always agree on where things are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .edits import AppearanceEdit, DragEdit, Edit, MoveEdit, PasteEdit
from .grids import FEATURE_CELL_PX, ImageSize, mask_coverage, mask_to_grid, patch_pairs, patch_samples, point_to_cell
from .placement import Placement, placement
from .errors import DragonInputError


@dataclass
class EditGeometry:
    mode: str
    grid_hw: tuple[int, int]
    latent_hw: tuple[int, int]
    edit_region: Tensor                       # bool grid: where the edit energy's gradient applies
    latent_edit_region: Tensor                # the same on the latent grid (regional SDE, the locks' free region)
    latent_gradient_region: Tensor            # latent grid: where the edit energy's gradient applies, the content
                                              # energy's outside (a move's new place only, as the authors split)
    # move / resize / paste
    place: Optional[Placement] = None         # object from (scaled) reference frame to current frame, grid
    latent_place: Optional[Placement] = None  # the same on the latent grid (copy-paste start latent)
    object_mask: Optional[Tensor] = None      # move: the object where it was (grid)
    other: Optional[Tensor] = None            # move: neither old nor new place
    vacated: Optional[Tensor] = None          # move: old place not covered by the new one
    fill: Optional[Tensor] = None             # move: region whose look the vacated place should take
    # drag
    handle_idx: Optional[Tensor] = None       # [K, 9] flat grid indices of the handle patches
    target_idx: Optional[Tensor] = None       # [K, 9]
    pair_valid: Optional[Tensor] = None       # [K, 9]
    handle_samples: Optional[Tensor] = None   # [1, K, 9, 2] the same patches centred on the exact points
    target_samples: Optional[Tensor] = None   # (grid_sample coordinates)
    sample_valid: Optional[Tensor] = None     # [K, 9]
    handle_latent: Optional[Tensor] = None    # [K, 2] (row, col) on the latent grid
    target_latent: Optional[Tensor] = None
    latent_residual: Optional[Tensor] = None  # [K, 2] exact (target - handle) minus the whole-cell one, in cells
    # appearance / paste
    keep_mask: Optional[Tensor] = None        # grid: same-position content term (not edited)
    base_mask: Optional[Tensor] = None        # appearance: the base object (grid)
    reference_mask: Optional[Tensor] = None   # appearance / paste: the reference object (reference grid)
    reference_grid_hw: Optional[tuple[int, int]] = None
    latent_cover: Optional[Tensor] = None            # fraction of each latent cell the (base) object covers where it
                                                     # was (move, resize, appearance)
    reference_latent_cover: Optional[Tensor] = None  # appearance: the same for the reference object
    scale: float = 1.0
    whole_cells: bool = False                 # the paper: energies pair whole feature cells, no sub-cell carry


def nearest_on(mask: Tensor, hw: tuple[int, int]) -> Tensor:
    """A bool grid mask resampled to ``hw`` by nearest neighbour, as the authors bring the feature-grid masks
    to the latent (``F.interpolate`` then ``> 0``)."""
    if tuple(mask.shape[-2:]) == tuple(hw):
        return mask.clone()
    return F.interpolate(mask.float()[None, None], size=hw, mode="nearest")[0, 0] > 0.5


def build_geometry(edit: Edit, latent_hw: tuple[int, int], whole_cells: bool = False) -> EditGeometry:
    """``whole_cells``: the paper's pairing (the object's whole-cell copy, ``Placement.dest``, is where it is
    wanted) instead of the exact place (``Placement.target``)."""
    size: ImageSize = edit.size
    grid = size.grid
    if isinstance(edit, MoveEdit):
        place = placement(edit.object_mask, edit.scale, edit.offset, size, size, "dx/dy")
        lplace = placement(edit.object_mask, edit.scale, edit.offset, size, size, "dx/dy", grid_hw=latent_hw)
        new = place.dest if whole_cells else place.target
        obj = mask_to_grid(edit.object_mask, grid)
        other = ~(new | obj)
        vacated = obj & ~new
        fill = mask_to_grid(edit.fill_mask, grid) if edit.fill_mask is not None else other
        region = new | obj
        # the latent region also covers the whole-cell copy of the start latent, so the lock leaves it free
        lregion = lplace.target | lplace.dest | mask_to_grid(edit.object_mask, latent_hw)
        return EditGeometry(edit.mode, grid, latent_hw, region, lregion, nearest_on(new, latent_hw), place=place,
                            latent_place=lplace, object_mask=obj, other=other, vacated=vacated, fill=fill,
                            scale=edit.scale, latent_cover=mask_coverage(edit.object_mask, latent_hw),
                            whole_cells=whole_cells)
    if isinstance(edit, DragEdit):
        h_cells = point_to_cell(edit.handle_points, FEATURE_CELL_PX)
        t_cells = point_to_cell(edit.target_points, FEATURE_CELL_PX)
        h_idx, t_idx, valid = patch_pairs(h_cells, t_cells, grid)
        h_samples, t_samples, s_valid = patch_samples(edit.handle_points, edit.target_points, size)
        cell_y = size.height / latent_hw[0]
        cell_x = size.width / latent_hw[1]
        cell = torch.tensor([cell_y, cell_x], dtype=edit.handle_points.dtype)
        h_pos = edit.handle_points.flip(1) / cell  # (row, col) in latent cells, not rounded
        t_pos = edit.target_points.flip(1) / cell
        h_lat, t_lat = h_pos.floor().long(), t_pos.floor().long()
        residual = (t_pos - h_pos) - (t_lat - h_lat)
        if edit.region_mask is not None:
            region = mask_to_grid(edit.region_mask, grid)
            lregion = mask_to_grid(edit.region_mask, latent_hw)
        else:
            region = torch.ones(grid, dtype=torch.bool)
            lregion = torch.ones(latent_hw, dtype=torch.bool)
        return EditGeometry("drag", grid, latent_hw, region, lregion, lregion, handle_idx=h_idx, target_idx=t_idx,
                            pair_valid=valid, handle_samples=h_samples, target_samples=t_samples,
                            sample_valid=s_valid, handle_latent=h_lat, target_latent=t_lat,
                            latent_residual=residual, keep_mask=~region, whole_cells=whole_cells)
    if isinstance(edit, AppearanceEdit):
        base = mask_to_grid(edit.base_mask, grid)
        ref_grid = edit.reference_size.grid
        ref = mask_to_grid(edit.reference_mask, ref_grid)
        ref_latent_hw = _reference_latent_hw(latent_hw, edit.reference_size, size)
        lbase = mask_to_grid(edit.base_mask, latent_hw)
        return EditGeometry("appearance", grid, latent_hw, base, lbase, lbase, keep_mask=~base, base_mask=base,
                            reference_mask=ref, reference_grid_hw=ref_grid, whole_cells=whole_cells,
                            latent_cover=mask_coverage(edit.base_mask, latent_hw),
                            reference_latent_cover=mask_coverage(edit.reference_mask, ref_latent_hw))
    if isinstance(edit, PasteEdit):
        ref_grid = edit.reference_size.grid
        place = placement(edit.reference_mask, edit.scale, edit.offset, edit.reference_size, size, "dx/dy",
                          grid_hw=ref_grid, dst_grid_hw=grid)
        ref_latent_hw = _reference_latent_hw(latent_hw, edit.reference_size, size)
        lplace = placement(edit.reference_mask, edit.scale, edit.offset, edit.reference_size, size, "dx/dy",
                           grid_hw=ref_latent_hw, dst_grid_hw=latent_hw)
        new = place.dest if whole_cells else place.target
        lregion = lplace.target | lplace.dest
        lgrad = nearest_on(new, latent_hw) if whole_cells else lregion  # the paper: the placed mask, nearest
        return EditGeometry("paste", grid, latent_hw, new, lregion, lgrad, place=place, whole_cells=whole_cells,
                            latent_place=lplace, keep_mask=~new,
                            reference_mask=mask_to_grid(edit.reference_mask, ref_grid), reference_grid_hw=ref_grid,
                            scale=edit.scale)
    raise DragonInputError("edit", f"unknown edit type {type(edit).__name__}")


def _reference_latent_hw(latent_hw: tuple[int, int], reference_size: ImageSize, size: ImageSize) -> tuple[int, int]:
    return (round(latent_hw[0] * reference_size.height / size.height),
            round(latent_hw[1] * reference_size.width / size.width))

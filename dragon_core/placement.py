"""Placing a mask, scaled about its centroid and shifted, into a destination grid: the whole-cell view the
copy-paste start latent uses and the exact, pixel-accurate view the energies use."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import DragonInputError
from .grids import ImageSize, cell_centres_px, mask_coverage, mask_to_grid, to_sample_grid


@dataclass
class Placement:
    """A mask carried from a source frame (scaled by ``scale``) into a destination frame.

    Two views of the same transform. Whole cells (the copy-paste start latent): ``source`` is the mask
    in the scaled source frame (size ``scaled_hw``), ``dest`` the same cells shifted by a whole number of cells;
    the k-th True cell of one corresponds to the k-th of the other (raster order). Exact (the energies):
    ``target`` are the destination cells the object covers when placed to the pixel, and ``sample_grid`` gives,
    for every destination cell centre, where it comes from in the source image (``grid_sample`` coordinates),
    so a source feature map of any resolution can be carried over with :meth:`carry`. The cell views round
    the offset to whole cells (4 px on the feature grid), which on small images is a visible miss; the exact
    view does not.
    """
    source: Tensor
    dest: Tensor
    scaled_hw: tuple[int, int]
    shift: tuple[int, int]  # (rows, cols) added to scaled-frame coordinates
    target: Tensor          # bool destination grid: the exactly placed object
    sample_grid: Tensor     # [1, rows, cols, 2] (x, y) in [-1, 1] of the source image, for F.grid_sample
    residual: tuple[float, float] = (0.0, 0.0)  # (rows, cols) of a cell that ``shift`` rounded away
    target_cover: Optional[Tensor] = None        # float destination grid: the part of each cell the object covers

    def carry(self, feature: Tensor) -> Tensor:
        """[1, C, h, w] on the source image -> [1, C, rows, cols] on the destination grid (bilinear)."""
        grid = self.sample_grid.to(device=feature.device, dtype=feature.dtype)
        return F.grid_sample(feature, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _source_coordinates(dst_px: Tensor, centre_px: Tensor, offset_px: Tensor, scale: float) -> Tensor:
    """Inverse of "scale about the source centroid, then shift": destination pixel -> source pixel, (x, y)."""
    return centre_px + (dst_px - centre_px - offset_px) / scale


def placement(mask: Tensor, scale: float, offset_px: tuple[float, float], src_size: ImageSize,
              dst_size: ImageSize, field_name: str, grid_hw: Optional[tuple[int, int]] = None,
              dst_grid_hw: Optional[tuple[int, int]] = None) -> Placement:
    """Place ``mask`` (source image pixels) scaled about its centroid and moved by ``offset_px`` into the
    destination grid. Raises when part of the placed object would leave the destination image."""
    src_grid = grid_hw or src_size.grid
    dst_grid = dst_grid_hw or (dst_size.grid if grid_hw is None else grid_hw)
    m_s, dest, scaled_hw, shift, residual = _whole_cell_placement(mask, scale, offset_px, src_size, dst_size,
                                                                  field_name, src_grid, dst_grid)

    # The exact view: the object mask itself is placed to the pixel, then gridded like any mask.
    py, px = torch.nonzero(mask, as_tuple=True)
    centre = torch.stack([px.double().mean(), py.double().mean()]) + 0.5
    offset = torch.tensor(offset_px, dtype=torch.float64)
    dst_pixels = cell_centres_px((dst_size.height, dst_size.width), dst_size)
    src_of_pixels = to_sample_grid(_source_coordinates(dst_pixels, centre, offset, scale), src_size)
    placed = F.grid_sample(mask.float()[None, None], src_of_pixels.float(), mode="bilinear",
                           padding_mode="zeros", align_corners=False)[0, 0] >= 0.5
    if not placed.any():
        placed = _whole_cells_as_pixels(dest, dst_size)
    target = mask_to_grid(placed, dst_grid)
    src_of_cells = _source_coordinates(cell_centres_px(dst_grid, dst_size), centre, offset, scale)
    return Placement(m_s, dest, scaled_hw, shift, target, to_sample_grid(src_of_cells, src_size).float(), residual,
                     mask_coverage(placed, dst_grid))


def check_placement(mask: Tensor, scale: float, offset_px: tuple[float, float], src_size: ImageSize,
                    dst_size: ImageSize, field_name: str) -> None:
    """The error :func:`placement` would raise, without building the placement (edit validation)."""
    _whole_cell_placement(mask, scale, offset_px, src_size, dst_size, field_name, src_size.grid, dst_size.grid)


def _whole_cell_placement(mask: Tensor, scale: float, offset_px: tuple[float, float], src_size: ImageSize,
                          dst_size: ImageSize, field_name: str, src_grid: tuple[int, int],
                          dst_grid: tuple[int, int]
                          ) -> tuple[Tensor, Tensor, tuple[int, int], tuple[int, int], tuple[float, float]]:
    """(source, dest, scaled_hw, shift, residual) of the whole-cell view; raises when the object would leave
    the image. ``residual`` is the exact shift minus the whole-cell one, in cells (each in [-0.5, 0.5])."""
    cell_y = src_size.height / src_grid[0]
    cell_x = src_size.width / src_grid[1]
    m = mask_to_grid(mask, src_grid)
    scaled_hw = (max(1, round(src_grid[0] * scale)), max(1, round(src_grid[1] * scale)))
    m_s = F.interpolate(m.float()[None, None], size=scaled_hw, mode="nearest")[0, 0] > 0.5
    if not m_s.any():
        raise DragonInputError("scale", f"{scale:g} shrinks the object to nothing on the "
                               f"{src_grid[1]}x{src_grid[0]} grid; use a larger scale")
    ys, xs = torch.nonzero(m, as_tuple=True)
    cy, cx = ys.float().mean(), xs.float().mean()
    sys_, sxs = torch.nonzero(m_s, as_tuple=True)
    scy, scx = sys_.float().mean(), sxs.float().mean()
    exact_r = float(cy + offset_px[1] / cell_y - scy)
    exact_c = float(cx + offset_px[0] / cell_x - scx)
    shift_r, shift_c = round(exact_r), round(exact_c)
    dr, dc = sys_ + shift_r, sxs + shift_c
    if (dr < 0).any() or (dr >= dst_grid[0]).any() or (dc < 0).any() or (dc >= dst_grid[1]).any():
        raise DragonInputError(field_name, f"offset ({offset_px[0]:g}, {offset_px[1]:g}) px with scale {scale:g} "
                               f"moves part of the object outside the {dst_size.width}x{dst_size.height} image; "
                               "use a smaller offset or scale")
    dest = torch.zeros(dst_grid, dtype=torch.bool)
    dest[dr, dc] = True
    return m_s, dest, scaled_hw, (shift_r, shift_c), (exact_r - shift_r, exact_c - shift_c)


def _whole_cells_as_pixels(dest: Tensor, size: ImageSize) -> Tensor:
    """The whole-cell destination as a pixel mask (for an object thinner than a pixel once scaled)."""
    return F.interpolate(dest.float()[None, None], size=(size.height, size.width), mode="nearest")[0, 0] > 0.5

"""The image's size and the grids the engine works on: masks and points carried from pixels to grid cells.

Everything a user gives is in image pixels (x right, y down, origin top-left). The energies work on the
feature grid (4 px a cell) and the start latent on the latent grid (the VAE's factor, 8 for SD).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import DragonInputError

FEATURE_CELL_PX = 4


@dataclass(frozen=True)
class ImageSize:
    width: int
    height: int

    def __post_init__(self):
        for name in ("width", "height"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 8 or v % 8:
                raise DragonInputError(f"image {name}", f"must be a positive multiple of 8 pixels, got {v!r} "
                                       "(pad or crop the image, e.g. with ImageScale or ImagePadForOutpaint)")

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the feature grid."""
        return self.height // FEATURE_CELL_PX, self.width // FEATURE_CELL_PX


def mask_to_grid(mask: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """Downsample a bool [H, W] mask to ``grid_hw``: a cell is in when at least half of it is, and a non-empty
    mask never vanishes (cells touched by it are kept when no cell is half covered)."""
    area = mask_coverage(mask, grid_hw)
    out = area >= 0.5
    if mask.any() and not out.any():
        out = area > 0
    return out


def mask_coverage(mask: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """Float ``grid_hw``: the fraction of each cell that the bool [H, W] mask covers."""
    return F.adaptive_avg_pool2d(mask.float()[None, None], grid_hw)[0, 0]


def point_to_cell(points: Tensor, cell_px: float) -> Tensor:
    """[K, 2] pixel (x, y) -> [K, 2] integer (row, col)."""
    return torch.stack([(points[:, 1] / cell_px).floor(), (points[:, 0] / cell_px).floor()], dim=1).long()


def patch_pairs(handle_cells: Tensor, target_cells: Tensor, grid_hw: tuple[int, int], radius: int = 1
                ) -> tuple[Tensor, Tensor, Tensor]:
    """Corresponding (2r+1)^2 patches around each handle and target cell, clipped at the border.

    Returns (handle_idx [K, P], target_idx [K, P], valid [K, P]): flat cell indices into the grid and whether
    the offset lies inside the grid for both points of the pair (so the pairs stay in correspondence).
    """
    rows, cols = grid_hw
    d = torch.arange(-radius, radius + 1)
    offsets = torch.stack(torch.meshgrid(d, d, indexing="ij"), dim=-1).reshape(-1, 2)  # [P, 2]
    h = handle_cells[:, None, :] + offsets[None]
    t = target_cells[:, None, :] + offsets[None]

    def inside(c: Tensor) -> Tensor:
        return (c[..., 0] >= 0) & (c[..., 0] < rows) & (c[..., 1] >= 0) & (c[..., 1] < cols)

    valid = inside(h) & inside(t)
    h_idx = h[..., 0].clamp(0, rows - 1) * cols + h[..., 1].clamp(0, cols - 1)
    t_idx = t[..., 0].clamp(0, rows - 1) * cols + t[..., 1].clamp(0, cols - 1)
    return h_idx, t_idx, valid


def patch_samples(handle_points: Tensor, target_points: Tensor, size: ImageSize, radius: int = 1
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """The exact counterpart of :func:`patch_pairs`: (2r+1)^2 sample points one feature cell apart, centred on
    each handle and target point itself rather than on the cell it falls in (which misses by up to a cell).

    Returns (handle [1, K, P, 2], target [1, K, P, 2]) in ``F.grid_sample`` coordinates of the image and
    valid [K, P]: both points of the pair inside the image.
    """
    d = torch.arange(-radius, radius + 1, dtype=torch.float64) * FEATURE_CELL_PX
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    offsets = torch.stack([dx, dy], dim=-1).reshape(-1, 2)                    # [P, 2] (x, y)
    h = handle_points.double()[:, None, :] + offsets[None]
    t = target_points.double()[:, None, :] + offsets[None]

    def inside(p: Tensor) -> Tensor:
        return (p[..., 0] >= 0) & (p[..., 0] < size.width) & (p[..., 1] >= 0) & (p[..., 1] < size.height)

    return to_sample_grid(h, size).float(), to_sample_grid(t, size).float(), inside(h) & inside(t)


def to_sample_grid(src_px: Tensor, src_size: ImageSize) -> Tensor:
    """[..., 2] (x, y) pixels of ``src_size`` -> [1, ..., 2] ``F.grid_sample`` coordinates in [-1, 1]."""
    extent = torch.tensor([src_size.width, src_size.height], dtype=src_px.dtype)
    return (2.0 * src_px / extent - 1.0)[None]


def cell_centres_px(grid_hw: tuple[int, int], size: ImageSize) -> Tensor:
    """[rows, cols, 2] (x, y) pixel coordinates of the cell centres of a grid laid over ``size``."""
    rows, cols = grid_hw
    ys = (torch.arange(rows, dtype=torch.float64) + 0.5) * (size.height / rows)
    xs = (torch.arange(cols, dtype=torch.float64) + 0.5) * (size.width / cols)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)

"""Typed, validated descriptions of the five edit modes, and their conversion to the grids the engine uses.

Everything a user gives is in image pixels (x right, y down, origin top-left). The energies work on the
feature grid (4 px a cell, SPEC §2) and the start latent on the latent grid (the VAE's factor, 8 for SD).
Invalid input raises :class:`DragonInputError` naming the field and what is allowed.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import DragonInputError

FEATURE_CELL_PX = 4

EDITOR_JSON_MAX_CHARS = 65536
EDITOR_MAX_POINTS = 256
EDITOR_MAX_BOXES = 64
EDITOR_MAX_STROKES = 20000


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


# ----------------------------------------------------------------------------------------------- edits


@dataclass
class MoveEdit:
    """Object moving (scale == 1) or moving + resizing (scale != 1). SPEC §3 "Move / resize"."""
    object_mask: Tensor                 # bool [H, W]
    offset: tuple[float, float]         # (dx, dy) in pixels: where the object's centre goes
    scale: float = 1.0
    fill_mask: Optional[Tensor] = None  # optional "fill the vacated place like this" region
    size: ImageSize = field(default=None)  # type: ignore[assignment]

    @property
    def mode(self) -> str:
        return "move" if self.scale == 1.0 else "resize"


@dataclass
class DragEdit:
    """Content dragging: handle_k -> target_k inside an optional editable region. SPEC §3 "Content drag"."""
    handle_points: Tensor               # float [K, 2] (x, y) pixels
    target_points: Tensor               # float [K, 2]
    region_mask: Optional[Tensor] = None  # bool [H, W]; None = the whole image may change
    size: ImageSize = field(default=None)  # type: ignore[assignment]
    mode: str = "drag"


@dataclass
class AppearanceEdit:
    """Give the base object (base_mask) the appearance of the reference object (reference_mask)."""
    base_mask: Tensor                   # bool [H, W] of the base image
    reference_mask: Tensor              # bool [Hr, Wr] of the reference image
    reference_bank: Any                 # MemoryBank of the reference image
    size: ImageSize = field(default=None)  # type: ignore[assignment]
    reference_size: ImageSize = field(default=None)  # type: ignore[assignment]
    mode: str = "appearance"


@dataclass
class PasteEdit:
    """Paste the reference object (reference_mask) into the base image, moved by offset and scaled."""
    reference_mask: Tensor              # bool [Hr, Wr]
    offset: tuple[float, float]         # (dx, dy) pixels, relative to the object's place in the reference
    scale: float
    reference_bank: Any
    size: ImageSize = field(default=None)  # type: ignore[assignment]
    reference_size: ImageSize = field(default=None)  # type: ignore[assignment]
    mode: str = "paste"


Edit = Union[MoveEdit, DragEdit, AppearanceEdit, PasteEdit]


# ---------------------------------------------------------------------------------------- validation


def _finite_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DragonInputError(name, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # Python ints are unbounded: JSON like 1000...0 (400 digits) parses to one
        raise DragonInputError(name, "must be finite, got an integer too large for a float") from None
    if not math.isfinite(number):
        raise DragonInputError(name, f"must be finite, got {value!r}")
    return number


def check_mask(name: str, mask: Tensor, size: ImageSize, allow_full: bool = True) -> Tensor:
    """A [H, W] (or [1, H, W]) mask of the image's size, returned as bool (> 0.5)."""
    if not isinstance(mask, Tensor):
        raise DragonInputError(name, f"must be a mask tensor, got {type(mask).__name__}")
    if mask.dim() == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.dim() != 2:
        raise DragonInputError(name, f"must be one [H, W] mask, got shape {tuple(mask.shape)} "
                               "(a batch of masks is not supported)")
    if tuple(mask.shape) != (size.height, size.width):
        raise DragonInputError(name, f"is {mask.shape[1]}x{mask.shape[0]} but the image is "
                               f"{size.width}x{size.height}; masks must match the image size")
    if not torch.isfinite(mask.float()).all():
        raise DragonInputError(name, "contains NaN or infinite values")
    binary = mask > 0.5
    if not binary.any():
        raise DragonInputError(name, "is empty: paint or box the region to edit")
    if not allow_full and binary.all():
        raise DragonInputError(name, "covers the whole image: nothing would be left to keep or move into")
    return binary


def check_scale(name: str, scale: Any) -> float:
    s = _finite_number(name, scale)
    if not (0.05 <= s <= 20.0):
        raise DragonInputError(name, f"must be in [0.05, 20] (1 = same size), got {s}")
    return s


def check_points(name: str, points: Tensor, size: ImageSize) -> Tensor:
    pts = torch.as_tensor(points, dtype=torch.float32)
    if pts.dim() != 2 or pts.shape[1] != 2:
        raise DragonInputError(name, f"must be a [K, 2] list of (x, y), got shape {tuple(pts.shape)}")
    if not torch.isfinite(pts).all():
        raise DragonInputError(name, "contains NaN or infinite coordinates")
    bad = (pts[:, 0] < 0) | (pts[:, 0] >= size.width) | (pts[:, 1] < 0) | (pts[:, 1] >= size.height)
    if bad.any():
        k = int(bad.nonzero()[0])
        x, y = pts[k].tolist()
        raise DragonInputError(f"{name}[{k}]", f"({x:g}, {y:g}) lies outside the {size.width}x{size.height} image "
                               f"(0 <= x < {size.width}, 0 <= y < {size.height})")
    return pts


def make_move_edit(object_mask: Tensor, offset: tuple[float, float], size: ImageSize, scale: float = 1.0,
                   fill_mask: Optional[Tensor] = None) -> MoveEdit:
    mask = check_mask("object_mask", object_mask, size, allow_full=False)
    dx = _finite_number("dx", offset[0])
    dy = _finite_number("dy", offset[1])
    scale = check_scale("scale", scale)
    if dx == 0 and dy == 0 and scale == 1.0:
        raise DragonInputError("dx/dy", "the move is empty: give an offset or a scale other than 1")
    fill = check_mask("fill_mask", fill_mask, size) if fill_mask is not None else None
    edit = MoveEdit(mask, (dx, dy), scale, fill, size)
    # Fails early, with the field named, when the moved object would leave the image.
    check_placement(mask, scale, (dx, dy), size, size, "dx/dy")
    return edit


def make_drag_edit(handle_points: Tensor, target_points: Tensor, size: ImageSize,
                   region_mask: Optional[Tensor] = None) -> DragEdit:
    handles = check_points("handle_points", handle_points, size)
    targets = check_points("target_points", target_points, size)
    if len(handles) == 0:
        raise DragonInputError("points", "no handle -> target pair given: click a handle, then its target")
    if len(handles) != len(targets):
        raise DragonInputError("points", f"{len(handles)} handles but {len(targets)} targets: they come in pairs")
    region = check_mask("region_mask", region_mask, size) if region_mask is not None else None
    return DragEdit(handles, targets, region, size)


def make_appearance_edit(base_mask: Tensor, reference_mask: Tensor, reference_bank: Any, size: ImageSize,
                         reference_size: ImageSize) -> AppearanceEdit:
    if reference_bank is None:
        raise DragonInputError("reference_bank", "appearance replacement needs the reference image's memory bank "
                               "(invert the reference image with DragonDDIMInversion and connect it)")
    base = check_mask("base_mask", base_mask, size, allow_full=False)
    ref = check_mask("reference_mask", reference_mask, reference_size)
    return AppearanceEdit(base, ref, reference_bank, size, reference_size)


def make_paste_edit(reference_mask: Tensor, offset: tuple[float, float], scale: float, reference_bank: Any,
                    size: ImageSize, reference_size: ImageSize) -> PasteEdit:
    if reference_bank is None:
        raise DragonInputError("reference_bank", "pasting needs the reference image's memory bank "
                               "(invert the reference image with DragonDDIMInversion and connect it)")
    ref = check_mask("reference_mask", reference_mask, reference_size, allow_full=False)
    dx = _finite_number("dx", offset[0])
    dy = _finite_number("dy", offset[1])
    scale = check_scale("scale", scale)
    check_placement(ref, scale, (dx, dy), reference_size, size, "dx/dy")
    return PasteEdit(ref, (dx, dy), scale, reference_bank, size, reference_size)


# ----------------------------------------------------------------------------------- grid conversions


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

    return _to_sample_grid(h, size).float(), _to_sample_grid(t, size).float(), inside(h) & inside(t)


@dataclass
class Placement:
    """A mask carried from a source frame (scaled by ``scale``) into a destination frame.

    Two views of the same transform. Whole cells (the copy-paste start latent, SPEC §4): ``source`` is the mask
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


def _to_sample_grid(src_px: Tensor, src_size: ImageSize) -> Tensor:
    extent = torch.tensor([src_size.width, src_size.height], dtype=src_px.dtype)
    return (2.0 * src_px / extent - 1.0)[None]


def _cell_centres_px(grid_hw: tuple[int, int], size: ImageSize) -> Tensor:
    """[rows, cols, 2] (x, y) pixel coordinates of the cell centres of a grid laid over ``size``."""
    rows, cols = grid_hw
    ys = (torch.arange(rows, dtype=torch.float64) + 0.5) * (size.height / rows)
    xs = (torch.arange(cols, dtype=torch.float64) + 0.5) * (size.width / cols)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)


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
    dst_pixels = _cell_centres_px((dst_size.height, dst_size.width), dst_size)
    src_of_pixels = _to_sample_grid(_source_coordinates(dst_pixels, centre, offset, scale), src_size)
    placed = F.grid_sample(mask.float()[None, None], src_of_pixels.float(), mode="bilinear",
                           padding_mode="zeros", align_corners=False)[0, 0] >= 0.5
    if not placed.any():
        placed = _whole_cells_as_pixels(dest, dst_size)
    target = mask_to_grid(placed, dst_grid)
    src_of_cells = _source_coordinates(_cell_centres_px(dst_grid, dst_size), centre, offset, scale)
    return Placement(m_s, dest, scaled_hw, shift, target, _to_sample_grid(src_of_cells, src_size).float(), residual,
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


# ------------------------------------------------------------------------------------- editor JSON


@dataclass
class EditorState:
    points: Tensor   # [K, 4] hx, hy, tx, ty
    boxes: Tensor    # [B, 4] x, y, w, h
    strokes: Tensor  # [S, 4] x, y, radius, paint(1)/erase(0)


def parse_editor_json(text: str, size: ImageSize, field_name: str = "editor_json") -> EditorState:
    """Parse the web editor's JSON with limits; never evaluates anything."""
    if not isinstance(text, str):
        raise DragonInputError(field_name, f"must be a JSON string, got {type(text).__name__}")
    if len(text) > EDITOR_JSON_MAX_CHARS:
        raise DragonInputError(field_name, f"is {len(text)} characters; at most {EDITOR_JSON_MAX_CHARS} allowed")
    stripped = text.strip()
    if not stripped:
        data: Any = {}
    else:
        try:
            data = json.loads(stripped, parse_constant=lambda c: _reject_constant(field_name, c))
        except DragonInputError:
            raise
        except (ValueError, RecursionError) as exc:
            raise DragonInputError(field_name, f"is not valid JSON ({exc})") from None
    if isinstance(data, list):  # a bare list of point pairs is accepted for hand editing
        data = {"points": data}
    if not isinstance(data, dict):
        raise DragonInputError(field_name, 'must be a JSON object like {"points": [[hx, hy, tx, ty]], '
                               '"boxes": [[x, y, w, h]], "strokes": [[x, y, r, 1]]}')
    unknown = set(data) - {"version", "points", "boxes", "strokes", "image"}
    if unknown:
        raise DragonInputError(field_name, f"unknown keys {sorted(unknown)}; allowed: version, points, boxes, "
                               "strokes, image")
    points = _number_rows(f"{field_name}.points", data.get("points", []), 4, EDITOR_MAX_POINTS)
    boxes = _number_rows(f"{field_name}.boxes", data.get("boxes", []), 4, EDITOR_MAX_BOXES)
    strokes = _number_rows(f"{field_name}.strokes", data.get("strokes", []), 4, EDITOR_MAX_STROKES)
    if len(points):
        check_points(f"{field_name}.points (handles)", points[:, :2], size)
        check_points(f"{field_name}.points (targets)", points[:, 2:], size)
    for k, (x, y, w, h) in enumerate(boxes.tolist()):
        check_box(f"{field_name}.boxes[{k}]", (x, y, w, h), size)
    if len(strokes) and ((strokes[:, 2] <= 0) | (strokes[:, 2] > max(size.width, size.height))).any():
        raise DragonInputError(f"{field_name}.strokes", "brush radius must be > 0 and at most the image size")
    return EditorState(points, boxes, strokes)


def _reject_constant(field_name: str, name: str) -> None:
    raise DragonInputError(field_name, f"contains {name}; only finite numbers are allowed")


def _number_rows(name: str, rows: Any, width: int, max_rows: int) -> Tensor:
    if not isinstance(rows, list):
        raise DragonInputError(name, f"must be a list of [{width} numbers] rows")
    if len(rows) > max_rows:
        raise DragonInputError(name, f"has {len(rows)} entries; at most {max_rows} allowed")
    out = []
    for k, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise DragonInputError(f"{name}[{k}]", f"must be a list of {width} numbers, got {str(row)[:60]}")
        out.append([_finite_number(f"{name}[{k}]", v) for v in row])
    return torch.tensor(out, dtype=torch.float32).reshape(-1, width)


def check_box(name: str, box: tuple[float, float, float, float], size: ImageSize) -> None:
    x, y, w, h = (_finite_number(name, v) for v in box)
    if w <= 0 or h <= 0:
        raise DragonInputError(name, f"width and height must be > 0, got w={w:g}, h={h:g}")
    if x < 0 or y < 0 or x + w > size.width or y + h > size.height:
        raise DragonInputError(name, f"({x:g}, {y:g}, {w:g}, {h:g}) is not inside the {size.width}x{size.height} "
                               "image (x >= 0, y >= 0, x + w <= width, y + h <= height)")


def box_to_mask(box: tuple[float, float, float, float], size: ImageSize, name: str = "box") -> Tensor:
    check_box(name, box, size)
    x, y, w, h = box
    xs = torch.arange(size.width, dtype=torch.float32) + 0.5
    ys = torch.arange(size.height, dtype=torch.float32) + 0.5
    inside_x = (xs >= x) & (xs < x + w)
    inside_y = (ys >= y) & (ys < y + h)
    return inside_y[:, None] & inside_x[None, :]


def rasterize(state: EditorState, size: ImageSize) -> Optional[Tensor]:
    """Union of the boxes and painted strokes (erase strokes remove), as a bool [H, W] mask; None if neither."""
    if len(state.boxes) == 0 and len(state.strokes) == 0:
        return None
    mask = torch.zeros(size.height, size.width, dtype=torch.bool)
    for k, box in enumerate(state.boxes.tolist()):
        mask |= box_to_mask(tuple(box), size, f"boxes[{k}]")
    if len(state.strokes):
        ys = torch.arange(size.height, dtype=torch.float32)[:, None] + 0.5
        xs = torch.arange(size.width, dtype=torch.float32)[None, :] + 0.5
        for x, y, r, paint in state.strokes.tolist():  # one vectorised disc per dab, in painting order
            y0, y1 = max(0, int(y - r)), min(size.height, int(y + r) + 1)
            x0, x1 = max(0, int(x - r)), min(size.width, int(x + r) + 1)
            if y0 >= y1 or x0 >= x1:
                continue
            disc = (ys[y0:y1] - y) ** 2 + (xs[:, x0:x1] - x) ** 2 <= r * r
            if paint >= 0.5:
                mask[y0:y1, x0:x1] |= disc
            else:
                mask[y0:y1, x0:x1] &= ~disc
    return mask

"""Typed, validated descriptions of the edit modes (move, resize, drag, appearance, paste).

Coordinates are image pixels. Invalid input raises :class:`DragonInputError` naming the field and what is allowed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
from torch import Tensor

from .errors import DragonInputError
from .grids import ImageSize
from .placement import check_placement

MASK_THRESHOLD = 0.5  # a pixel of a MASK is in the region where its value is above this

@dataclass
class MoveEdit:
    """Object moving (scale == 1) or moving + resizing (scale != 1)."""
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
    """Content dragging: handle_k -> target_k inside an optional editable region."""
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


def finite_number(name: str, value: Any) -> float:
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
    """A [H, W] (or [1, H, W]) mask of the image's size, returned as bool (> MASK_THRESHOLD)."""
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
    binary = mask > MASK_THRESHOLD
    if not binary.any():
        raise DragonInputError(name, f"is empty: no value above {MASK_THRESHOLD:g} (its largest is "
                               f"{float(mask.max()):g}; masks are read as in where > {MASK_THRESHOLD:g}): "
                               "paint or box the region to edit")
    if not allow_full and binary.all():
        raise DragonInputError(name, "covers the whole image: nothing would be left to keep or move into")
    return binary


def check_scale(name: str, scale: Any) -> float:
    s = finite_number(name, scale)
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
                   fill_mask: Optional[Tensor] = None, object_name: str = "object_mask") -> MoveEdit:
    """``object_name``: the input(s) the object mask came from, for the errors."""
    mask = check_mask(object_name, object_mask, size, allow_full=False)
    dx = finite_number("dx", offset[0])
    dy = finite_number("dy", offset[1])
    scale = check_scale("scale", scale)
    if dx == 0 and dy == 0 and scale == 1.0:
        raise DragonInputError("dx/dy", "the move is empty: give an offset or a scale other than 1")
    fill = check_mask("fill_mask", fill_mask, size) if fill_mask is not None else None
    edit = MoveEdit(mask, (dx, dy), scale, fill, size)
    # Fails early, with the field named, when the moved object would leave the image.
    check_placement(mask, scale, (dx, dy), size, size, "dx/dy")
    return edit


def make_drag_edit(handle_points: Tensor, target_points: Tensor, size: ImageSize,
                   region_mask: Optional[Tensor] = None, region_name: str = "region_mask") -> DragEdit:
    handles = check_points("handle_points", handle_points, size)
    targets = check_points("target_points", target_points, size)
    if len(handles) == 0:
        raise DragonInputError("points", "no handle -> target pair given: click a handle, then its target")
    if len(handles) != len(targets):
        raise DragonInputError("points", f"{len(handles)} handles but {len(targets)} targets: they come in pairs")
    region = check_mask(region_name, region_mask, size) if region_mask is not None else None
    return DragEdit(handles, targets, region, size)


def make_appearance_edit(base_mask: Tensor, reference_mask: Tensor, reference_bank: Any, size: ImageSize,
                         reference_size: ImageSize, base_name: str = "base_mask") -> AppearanceEdit:
    if reference_bank is None:
        raise DragonInputError("reference_bank", "appearance replacement needs the reference image's memory bank "
                               "(invert the reference image with DragonDDIMInversion and connect it)")
    base = check_mask(base_name, base_mask, size, allow_full=False)
    ref = check_mask("reference_mask", reference_mask, reference_size)
    return AppearanceEdit(base, ref, reference_bank, size, reference_size)


def make_paste_edit(reference_mask: Tensor, offset: tuple[float, float], scale: float, reference_bank: Any,
                    size: ImageSize, reference_size: ImageSize) -> PasteEdit:
    if reference_bank is None:
        raise DragonInputError("reference_bank", "pasting needs the reference image's memory bank "
                               "(invert the reference image with DragonDDIMInversion and connect it)")
    ref = check_mask("reference_mask", reference_mask, reference_size, allow_full=False)
    dx = finite_number("dx", offset[0])
    dy = finite_number("dy", offset[1])
    scale = check_scale("scale", scale)
    check_placement(ref, scale, (dx, dy), reference_size, size, "dx/dy")
    return PasteEdit(ref, (dx, dy), scale, reference_bank, size, reference_size)

"""The web editor's JSON (points, boxes, brush strokes): parsed with limits, and boxes and strokes drawn as a mask.

The format is described in docs/ARCHITECTURE.md "The editor JSON".
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import Tensor

from .edits import check_points, finite_number
from .errors import DragonInputError
from .grids import ImageSize

EDITOR_JSON_MAX_CHARS = 65536
EDITOR_MAX_POINTS = 256
EDITOR_MAX_BOXES = 64
EDITOR_MAX_STROKES = 20000
# Every number of the JSON lies within +-EDITOR_MAX_COORDINATE: far beyond any image ComfyUI handles, and far
# inside float32, so nothing downstream overflows (1e39 would be inf as float32; int(inf) raises).
EDITOR_MAX_COORDINATE = 1e6
# Drawing costs the clipped bounding square of every dab; this bounds the whole drawing to a few seconds of CPU
# (the editor's largest brush, a quarter of the image side, allows hundreds of full-size dabs on a 2048 px image).
EDITOR_MAX_BRUSH_PIXELS = 2 ** 31
# How often (in pixels drawn) rasterize calls its interrupt check.
_INTERRUPT_EVERY_PIXELS = 2 ** 22


@dataclass
class EditorState:
    points: Tensor   # [K, 4] hx, hy, tx, ty
    boxes: Tensor    # [B, 4] x, y, w, h
    strokes: Tensor  # [S, 4] x, y, radius, paint(1)/erase(0)


def parse_editor_json(text: str, size: ImageSize, field_name: str = "editor_json") -> EditorState:
    """Parse the web editor's JSON with limits; never evaluates anything."""
    stripped = checked_text(text, field_name, "a JSON string")
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
    work = brush_pixels(strokes, size)
    if work > EDITOR_MAX_BRUSH_PIXELS:
        raise DragonInputError(f"{field_name}.strokes", f"{len(strokes)} brush dabs cover {work:.3g} pixels in all "
                               f"(each dab's square inside the image, summed); at most {EDITOR_MAX_BRUSH_PIXELS:.3g}: "
                               "use fewer or smaller dabs, a box, or a MASK input")
    return EditorState(points, boxes, strokes)


def checked_text(text: Any, field_name: str, form: str) -> str:
    """``text`` stripped, after the checks every JSON-in-a-string input gets: a string (``form`` says which), and
    not longer than EDITOR_JSON_MAX_CHARS."""
    if not isinstance(text, str):
        raise DragonInputError(field_name, f"must be {form}, got {type(text).__name__}")
    if len(text) > EDITOR_JSON_MAX_CHARS:
        raise DragonInputError(field_name, f"is {len(text)} characters; at most {EDITOR_JSON_MAX_CHARS} allowed")
    return text.strip()


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
        numbers = [finite_number(f"{name}[{k}]", v) for v in row]
        for v in numbers:
            if abs(v) > EDITOR_MAX_COORDINATE:
                raise DragonInputError(f"{name}[{k}]", f"{v:g} is out of range: numbers must be within "
                                       f"+-{EDITOR_MAX_COORDINATE:g}")
        out.append(numbers)
    return torch.tensor(out, dtype=torch.float32).reshape(-1, width)


def check_box(name: str, box: tuple[float, float, float, float], size: ImageSize) -> None:
    x, y, w, h = (finite_number(name, v) for v in box)
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


def _dab_window(x: float, y: float, r: float, size: ImageSize) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the pixels of the image that a dab's bounding square touches (may be empty)."""
    return (max(0, int(y - r)), min(size.height, int(y + r) + 1), max(0, int(x - r)), min(size.width, int(x + r) + 1))


def brush_pixels(strokes: Tensor, size: ImageSize) -> int:
    """The work of drawing ``strokes``: the pixels of every dab's bounding square inside the image, summed."""
    total = 0
    for x, y, r, _ in strokes.tolist():
        y0, y1, x0, x1 = _dab_window(x, y, r, size)
        total += max(0, y1 - y0) * max(0, x1 - x0)
    return total


def rasterize(state: EditorState, size: ImageSize, interrupt: Optional[Callable[[], None]] = None
              ) -> Optional[Tensor]:
    """Union of the boxes and painted strokes (erase strokes remove), as a bool [H, W] mask; None if neither.

    Each dab is drawn inside its bounding square only, and ``interrupt`` (e.g. the host's "stop if the user
    cancelled", which raises) is called every few million pixels drawn."""
    if len(state.boxes) == 0 and len(state.strokes) == 0:
        return None
    mask = torch.zeros(size.height, size.width, dtype=torch.bool)
    for k, box in enumerate(state.boxes.tolist()):
        mask |= box_to_mask(tuple(box), size, f"boxes[{k}]")
    if len(state.strokes):
        ys = torch.arange(size.height, dtype=torch.float32)[:, None] + 0.5
        xs = torch.arange(size.width, dtype=torch.float32)[None, :] + 0.5
        since_check = 0
        for x, y, r, paint in state.strokes.tolist():  # one vectorised disc per dab, in painting order
            y0, y1, x0, x1 = _dab_window(x, y, r, size)
            if y0 >= y1 or x0 >= x1:
                continue
            disc = (ys[y0:y1] - y) ** 2 + (xs[:, x0:x1] - x) ** 2 <= r * r
            if paint >= 0.5:
                mask[y0:y1, x0:x1] |= disc
            else:
                mask[y0:y1, x0:x1] &= ~disc
            since_check += (y1 - y0) * (x1 - x0)
            if interrupt is not None and since_check >= _INTERRUPT_EVERY_PIXELS:
                interrupt()
                since_check = 0
    return mask

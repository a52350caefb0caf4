"""The web editor's JSON (points, boxes, brush strokes): parsed with limits, and boxes and strokes drawn as a mask.

The format is described in docs/ARCHITECTURE.md "The editor JSON".
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor

from .edits import check_points, finite_number
from .errors import DragonInputError
from .grids import ImageSize

EDITOR_JSON_MAX_CHARS = 65536
EDITOR_MAX_POINTS = 256
EDITOR_MAX_BOXES = 64
EDITOR_MAX_STROKES = 20000


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
        out.append([finite_number(f"{name}[{k}]", v) for v in row])
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

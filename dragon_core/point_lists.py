"""Drag points from other nodes: lists of (x, y) image-pixel points given as text, paired into handle -> target drags.

A list comes in one of the forms point-placing nodes write:
- KJNodes' Points Editor ``coordinates``: ``[{"x": 10, "y": 20}, ...]`` (some of its nodes print it with single
  quotes, ``[{'x': 10, 'y': 20}]``, which is read too);
- a plain list of pairs: ``[[10, 20], [30, 40]]``.
Two lists (handles, targets) of the same length give the drag's points: the k-th handle moves to the k-th target.
Coordinates are pixels of the edited image (the Points Editor's ``normalize`` must be off).
"""
from __future__ import annotations

import json
from typing import Any, Optional

import torch
from torch import Tensor

from .editor_json import EDITOR_MAX_POINTS, checked_text
from .edits import check_points, finite_number
from .errors import DragonInputError
from .grids import ImageSize

POINT_LIST_FORM = ('a JSON list of (x, y) image pixels: [{"x": 10, "y": 20}, ...] (KJNodes Points Editor, '
                   'normalize off) or [[10, 20], ...]')


def _load(text: str, name: str) -> Any:
    try:
        return json.loads(text, parse_constant=lambda c: _reject_constant(name, c))
    except DragonInputError:
        raise
    except (ValueError, RecursionError):
        pass
    if "'" in text and '"' not in text:  # Python's str() of a list of dicts, as some KJNodes nodes output it
        try:
            return json.loads(text.replace("'", '"'), parse_constant=lambda c: _reject_constant(name, c))
        except (ValueError, RecursionError):
            pass
    raise DragonInputError(name, f"is not {POINT_LIST_FORM}; got {text[:60]!r}")


def _reject_constant(name: str, constant: str) -> None:
    raise DragonInputError(name, f"contains {constant}; only finite numbers are allowed")


def _point(name: str, item: Any) -> tuple[float, float]:
    if isinstance(item, dict):
        if "x" not in item or "y" not in item:
            raise DragonInputError(name, f'must be {{"x": number, "y": number}}, got {str(item)[:60]}')
        return finite_number(name, item["x"]), finite_number(name, item["y"])
    if isinstance(item, list) and len(item) == 2:
        return finite_number(name, item[0]), finite_number(name, item[1])
    raise DragonInputError(name, f'must be {{"x": x, "y": y}} or [x, y], got {str(item)[:60]}')


def parse_point_list(text: str, name: str) -> Tensor:
    """[K, 2] float32 (x, y) of one point list; an empty or blank text gives no points."""
    stripped = checked_text(text, name, f"{POINT_LIST_FORM} as text")
    if not stripped:
        return torch.zeros(0, 2)
    data = _load(stripped, name)
    if not isinstance(data, list):
        raise DragonInputError(name, f"must be {POINT_LIST_FORM}; got a JSON {type(data).__name__}")
    if len(data) > EDITOR_MAX_POINTS:
        raise DragonInputError(name, f"has {len(data)} points; at most {EDITOR_MAX_POINTS} allowed")
    points = [_point(f"{name}[{k}]", item) for k, item in enumerate(data)]
    return torch.tensor(points, dtype=torch.float32).reshape(-1, 2)


def pair_point_lists(handles: Optional[str], targets: Optional[str], size: ImageSize,
                     handle_name: str = "handle_points", target_name: str = "target_points") -> Tensor:
    """[K, 4] (hx, hy, tx, ty) drag points from a handle list and a target list of the same length, checked to lie
    inside the image. Neither list given: no points. Only one given: an error naming the other."""
    if handles is None and targets is None:
        return torch.zeros(0, 4)
    if handles is None or targets is None:
        missing, given = (handle_name, target_name) if handles is None else (target_name, handle_name)
        raise DragonInputError(missing, f"is not connected but {given} is; connect both: the k-th handle is "
                               "dragged to the k-th target")
    h = parse_point_list(handles, handle_name)
    t = parse_point_list(targets, target_name)
    if len(h) != len(t):
        raise DragonInputError(target_name, f"has {len(t)} points but {handle_name} has {len(h)}; the lists must "
                               "have the same length (the k-th handle is dragged to the k-th target)")
    check_points(handle_name, h, size)
    check_points(target_name, t, size)
    return torch.cat([h, t], dim=1)

"""What a workflow asks its edit node to do, read from the description's own nodes and drawn over the input image:
the card image of a workflow whose weights cannot be had here (the SD-1.5 ones) shows this request, marked as
such, instead of a result it did not produce."""
from __future__ import annotations

import io
import json
import textwrap
from dataclasses import dataclass, field

from .descriptions import Example, Node

BANNER = "EDIT REQUEST - needs an SD-1.5 checkpoint"


@dataclass
class EditRequest:
    """Everything in pixels of the workflow's base image (reference_box: of the reference image)."""
    mode: str
    objects: list = field(default_factory=list)    # (x, y, w, h) boxes the edit takes
    placed: list = field(default_factory=list)     # (x, y, w, h) where the object lands
    arrows: list = field(default_factory=list)     # (x0, y0, x1, y1): drags and moves
    strokes: list = field(default_factory=list)    # (x, y, radius, paint) of the editor's brush
    regions: list = field(default_factory=list)    # (x, y, w, h) mask boxes of the region allowed to change
    reference_box: tuple | None = None


def _box_source(nodes: dict[str, Node], link) -> tuple | None:
    src = nodes[link[0]]
    if src.type != "DragonBoxToMask":
        return None
    return tuple(src.widgets[k] for k in ("x", "y", "width", "height"))


def _point_source(nodes: dict[str, Node], link) -> list:
    """A point list written into a text node (KJNodes' {"x", "y"} form or [x, y] pairs)."""
    items = json.loads(nodes[link[0]].widgets["value"])
    return [(p["x"], p["y"]) if isinstance(p, dict) else tuple(p) for p in items]


def _moved(box: tuple, dx: float, dy: float, scale: float) -> tuple:
    x, y, w, h = box
    cx, cy = x + w / 2 + dx, y + h / 2 + dy
    return (cx - w * scale / 2, cy - h * scale / 2, w * scale, h * scale)


def _centre(box: tuple) -> tuple:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def edit_request(example: Example) -> EditRequest:
    nodes = {n.key: n for n in example.nodes}
    edit = next(n for n in example.nodes if n.type.startswith("DragonEdit"))
    state = json.loads(edit.widgets.get("editor_json") or "{}")
    request = EditRequest(mode=example.mode, objects=[tuple(b) for b in state.get("boxes", [])],
                          strokes=[tuple(s) for s in state.get("strokes", [])])
    request.arrows = [tuple(p) for p in state.get("points", [])]
    links = edit.links
    dx, dy, scale = edit.widgets.get("dx", 0), edit.widgets.get("dy", 0), edit.widgets.get("scale", 1.0)
    if edit.type == "DragonEditMove":
        request.placed = [_moved(b, dx, dy, scale) for b in request.objects]
        request.arrows += [(*_centre(a), *_centre(b)) for a, b in zip(request.objects, request.placed)]
    elif edit.type == "DragonEditDrag":
        if "handle_points" in links:
            handles = _point_source(nodes, links["handle_points"])
            targets = _point_source(nodes, links["target_points"])
            request.arrows += [(*h, *t) for h, t in zip(handles, targets)]
        if "region_mask" in links:
            request.regions.append(_box_source(nodes, links["region_mask"]))
    if "reference_mask" in links:
        request.reference_box = _box_source(nodes, links["reference_mask"])
        if edit.type == "DragonEditPaste":
            request.placed.append(_moved(request.reference_box, dx, dy, scale))
    return request


def request_thumbnail(request: EditRequest, base, reference=None, side: int = 256) -> bytes:
    """JPEG: the base image with the request drawn over it | a panel saying what the card is (and the reference
    image with its object, for appearance / paste)."""
    import numpy as np
    from PIL import Image, ImageDraw

    def to_image(pixels, size):
        return Image.fromarray(np.clip(pixels * 255 + 0.5, 0, 255).astype("uint8")).resize((size, size),
                                                                                           Image.BILINEAR)

    k = side / base.shape[1]
    canvas = Image.new("RGB", (2 * side + 16, side), (24, 24, 28))
    left = to_image(base, side).convert("RGBA")
    layer = Image.new("RGBA", left.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for x, y, r, paint in request.strokes:
        draw.ellipse([(x - r) * k, (y - r) * k, (x + r) * k, (y + r) * k],
                     fill=(80, 220, 120, 70) if paint else (0, 0, 0, 0))
    for x, y, w, h in request.regions:
        draw.rectangle([x * k, y * k, (x + w) * k, (y + h) * k], fill=(80, 220, 120, 60), outline=(80, 220, 120, 255))
    for x, y, w, h in request.objects:
        draw.rectangle([x * k, y * k, (x + w) * k, (y + h) * k], outline=(255, 70, 70, 255), width=3)
    for x, y, w, h in request.placed:
        draw.rectangle([x * k, y * k, (x + w) * k, (y + h) * k], outline=(255, 220, 60, 255), width=2)
    for x0, y0, x1, y1 in request.arrows:
        _arrow(draw, (x0 * k, y0 * k), (x1 * k, y1 * k))
    left = Image.alpha_composite(left, layer).convert("RGB")
    ImageDraw.Draw(left).rectangle([0, 0, side, 18], fill=(20, 20, 24))
    ImageDraw.Draw(left).text((6, 4), BANNER, fill=(255, 220, 60))
    canvas.paste(left, (0, 0))

    text = ImageDraw.Draw(canvas)
    x0 = side + 16
    lines = ["EDIT REQUEST, not a result:", "this workflow runs an SD-1.5", "checkpoint. Its _demo twin's",
             "card shows a real result.", ""] + textwrap.wrap(f"mode: {request.mode}", 36)
    for i, line in enumerate(lines):
        text.text((x0 + 8, 8 + 14 * i), line, fill=(230, 230, 230))
    if reference is not None:
        size = side - 112
        ref = to_image(reference, size)
        if request.reference_box is not None:
            kr = size / reference.shape[1]
            x, y, w, h = request.reference_box
            ImageDraw.Draw(ref).rectangle([x * kr, y * kr, (x + w) * kr, (y + h) * kr], outline=(255, 70, 70),
                                          width=2)
        canvas.paste(ref, (x0 + 8, side - size - 8))
        text.text((x0 + size + 16, side - 20), "reference", fill=(230, 230, 230))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _arrow(draw, start: tuple, end: tuple) -> None:
    import math

    draw.line([start, end], fill=(255, 220, 60, 255), width=3)
    angle = math.atan2(end[1] - start[1], end[0] - start[0])
    head = [end] + [(end[0] - 10 * math.cos(angle + s), end[1] - 10 * math.sin(angle + s)) for s in (0.45, -0.45)]
    draw.polygon(head, fill=(255, 220, 60, 255))
    draw.ellipse([start[0] - 4, start[1] - 4, start[0] + 4, start[1] + 4], fill=(255, 70, 70, 255))

"""Nodes: edit specifications (move/resize, content drag, appearance replacement, paste) and box -> mask.

Each node reads its image only for its size (and as the web editor's background), validates everything, and
outputs a DRAGON_EDIT from dragon_core.edits. Coordinates are image pixels.
"""
from __future__ import annotations

from typing import Optional

import torch

import comfy.model_management

from ..dragon_core.editor_json import box_to_mask, EditorState, parse_editor_json
from ..dragon_core.editor_json import rasterize as draw_boxes_and_strokes
from ..dragon_core.edits import check_mask, make_appearance_edit, make_drag_edit, make_move_edit, make_paste_edit
from ..dragon_core.grids import ImageSize
from ..dragon_core.errors import DragonInputError
from ..dragon_core.point_lists import POINT_LIST_FORM, pair_point_lists
from .node_declaration import node
from .node_errors import user_errors

CATEGORY = "DragonDiffusion/edit"
_MAX_OFFSET = 16384

EDITOR_TOOLTIP = ('Filled by the on-node editor, or by hand. JSON in image pixels: {"points": [[hx, hy, tx, ty], ...], '
                  '"boxes": [[x, y, w, h], ...], "strokes": [[x, y, radius, 1 paint | 0 erase], ...]}')


def image_size(image: torch.Tensor, name: str = "image") -> ImageSize:
    if not isinstance(image, torch.Tensor) or image.dim() != 4:
        raise DragonInputError(name, "must be an IMAGE [B, H, W, C]")
    if image.shape[0] != 1:
        raise DragonInputError(name, f"has a batch of {image.shape[0]}; edit one image at a time")
    return ImageSize(int(image.shape[2]), int(image.shape[1]))


def rasterize(state: EditorState, size: ImageSize) -> Optional[torch.Tensor]:
    """The editor's boxes and strokes as a bool mask (None if there are none), stopped by ComfyUI's interrupt;
    a drawing whose erase strokes remove everything is an error naming editor_json, never an empty region."""
    mask = draw_boxes_and_strokes(state, size, comfy.model_management.throw_exception_if_processing_interrupted)
    if mask is not None and not mask.any():
        raise DragonInputError("editor_json", "the boxes and strokes leave nothing painted (erase strokes remove "
                               "all of it): paint the region again, or clear the strokes")
    return mask


def _mask_input(mask: Optional[torch.Tensor], name: str, size: ImageSize) -> Optional[torch.Tensor]:
    """A connected MASK as bool (> MASK_THRESHOLD), checked on its own: a mask with nothing above the threshold
    is an error naming it, never silently dropped from a union with the painted region."""
    if mask is None:
        return None
    if mask.dim() == 3 and mask.shape[0] > 1:
        raise DragonInputError(name, f"has a batch of {mask.shape[0]} masks; connect one")
    m = mask[0] if mask.dim() == 3 else mask
    if tuple(m.shape) != (size.height, size.width):
        raise DragonInputError(name, f"is {m.shape[-1]}x{m.shape[-2]} but the image is {size.width}x{size.height}; "
                               "masks must match the image size")
    return check_mask(name, m, size)


def _union(name: str, size: ImageSize, *masks: Optional[torch.Tensor]) -> torch.Tensor:
    present = [m.bool() for m in masks if m is not None]
    if not present:
        raise DragonInputError(name, "no region given: draw a box or paint it in the editor, or connect a MASK")
    out = present[0]
    for m in present[1:]:
        out = out | m
    return out.float()


def _source(mask_name: str, painted: Optional[torch.Tensor], given: Optional[torch.Tensor]) -> str:
    """The input(s) a region came from, as errors about it name them."""
    return " + ".join(n for n, m in (("editor_json", painted), (mask_name, given)) if m is not None)


def _offset(dx, dy):
    for name, v in (("dx", dx), ("dy", dy)):
        if not -_MAX_OFFSET <= v <= _MAX_OFFSET:
            raise DragonInputError(name, f"must be within +-{_MAX_OFFSET} px, got {v}")
    return float(dx), float(dy)


def _pixel_offset(tooltip: str) -> tuple:
    return ("INT", {"default": 0, "min": -_MAX_OFFSET, "max": _MAX_OFFSET, "tooltip": tooltip})


def _scale_factor(tooltip: str) -> tuple:
    return ("FLOAT", {"default": 1.0, "min": 0.05, "max": 20.0, "step": 0.01, "tooltip": tooltip})


def _two_image_inputs(image: str, reference_image: str, reference_mask: str) -> dict:
    """The inputs appearance and paste open with, in this order (tooltips given): the base image, then the reference
    image, its memory bank and its object."""
    return {"image": ("IMAGE", {"tooltip": image}),
            "reference_image": ("IMAGE", {"tooltip": reference_image}),
            "reference_bank": ("DRAGON_BANK", {"tooltip": "Memory bank of the reference image (same MODEL, steps)."}),
            "reference_mask": ("MASK", {"tooltip": reference_mask})}


def _no_points(state: EditorState, node: str, instead: str) -> None:
    if len(state.points):
        raise DragonInputError("editor_json.points", f"{node} does not use handle/target points; {instead}")


@node(CATEGORY, "build",
      outputs=[("DRAGON_EDIT", "edit",
                'The move/resize edit: connect to DragonSampler, DragonGuider or DragonStartLatent ("edit").')],
      aliases=["move object", "drag object", "resize object", "object move", "point edit", "dragondiffusion",
               "diffeditor"])
class DragonEditMove:
    """Object moving and resizing: the object (box, painted region and/or mask) is moved by (dx, dy) pixels and
    scaled by `scale`; the place it leaves is filled like its surroundings (or like fill_mask)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE", {"tooltip": "The image being edited (the one VAE-encoded for the inversion); gives the "
                                           "size and the editor's background."}),
            "dx": _pixel_offset("Horizontal move of the object's centre in pixels (+ right)."),
            "dy": _pixel_offset("Vertical move of the object's centre in pixels (+ down)."),
            "scale": _scale_factor("Object size factor (1 = move only; 1.5 = 50% larger)."),
            "editor_json": ("STRING", {"default": "{}", "multiline": True, "tooltip": EDITOR_TOOLTIP +
                                       ". Move uses boxes and strokes for the object; the editor's arrow sets dx, dy."}),
        }, "optional": {
            "object_mask": ("MASK", {"tooltip": "Object mask (added to the editor's box/strokes)."}),
            "fill_mask": ("MASK", {"tooltip": "Optional region whose look should fill the place the object leaves."}),
        }}

    @user_errors
    def build(self, image, dx, dy, scale, editor_json, object_mask=None, fill_mask=None):
        size = image_size(image)
        state = parse_editor_json(editor_json, size)
        _no_points(state, "Move", "set dx and dy (the editor's arrow does it)")
        painted, given = rasterize(state, size), _mask_input(object_mask, "object_mask", size)
        obj = _union("object", size, painted, given)
        return (make_move_edit(obj, _offset(dx, dy), size, scale, _mask_input(fill_mask, "fill_mask", size),
                               _source("object_mask", painted, given)),)


@node(CATEGORY, "build",
      outputs=[("DRAGON_EDIT", "edit",
                'The content drag edit: connect to DragonSampler, DragonGuider or DragonStartLatent ("edit").')],
      aliases=["drag", "drag points", "point edit", "point drag", "dragdiffusion", "draggan", "move object",
               "dragondiffusion"])
class DragonEditDrag:
    """Content dragging: each handle point's content is dragged to its target point. Paint the region allowed to
    change (or connect region_mask) to keep the rest of the image fixed."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE", {"tooltip": "The image being edited; gives the size and the editor's background."}),
            "editor_json": ("STRING", {"default": "{}", "multiline": True, "tooltip": EDITOR_TOOLTIP +
                                       ". Drag uses points (handle -> target pairs) and strokes/boxes for the "
                                       "editable region."}),
        }, "optional": {
            "region_mask": ("MASK", {"tooltip": "Region allowed to change (added to the painted one). Without any "
                                                "region the whole image may change."}),
            "handle_points": ("STRING", {"forceInput": True, "tooltip": "Handle points from another node, e.g. "
                                         "KJNodes Points Editor's coordinates: " + POINT_LIST_FORM + ". Dragged "
                                         "to target_points (same length), in addition to the editor's pairs."}),
            "target_points": ("STRING", {"forceInput": True, "tooltip": "Where each of handle_points goes, in the "
                                         "same order and form: " + POINT_LIST_FORM + "."}),
        }}

    @user_errors
    def build(self, image, editor_json, region_mask=None, handle_points=None, target_points=None):
        size = image_size(image)
        state = parse_editor_json(editor_json, size)
        points = torch.cat([state.points, pair_point_lists(handle_points, target_points, size)])
        if len(points) == 0:
            raise DragonInputError("editor_json.points", "no handle -> target pair: click a handle, then its "
                                   "target, or connect handle_points and target_points")
        painted = rasterize(state, size)
        given = _mask_input(region_mask, "region_mask", size)
        region = None if painted is None and given is None else _union("region", size, painted, given)
        return (make_drag_edit(points[:, :2], points[:, 2:], size, region),)


@node(CATEGORY, "build",
      outputs=[("DRAGON_EDIT", "edit",
                'The appearance replacement edit: connect to DragonSampler, DragonGuider or DragonStartLatent '
                '("edit").')],
      aliases=["appearance replacement", "replace appearance", "texture transfer", "restyle object",
               "dragondiffusion"])
class DragonEditAppearance:
    """Appearance replacement: the base object (box/strokes/base_mask) takes the look of the reference object
    (reference_mask) of a second image, inverted with its own DragonDDIMInversion."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            **_two_image_inputs("The base image being edited.", "The image whose object lends its appearance.",
                                "The reference object (e.g. DragonBoxToMask on reference_image)."),
            "editor_json": ("STRING", {"default": "{}", "multiline": True, "tooltip": EDITOR_TOOLTIP +
                                       ". Appearance uses boxes and strokes for the base object."}),
        }, "optional": {
            "base_mask": ("MASK", {"tooltip": "Base object mask (added to the editor's box/strokes)."}),
        }}

    @user_errors
    def build(self, image, reference_image, reference_bank, reference_mask, editor_json, base_mask=None):
        size = image_size(image)
        ref_size = image_size(reference_image, "reference_image")
        state = parse_editor_json(editor_json, size)
        _no_points(state, "Appearance", "draw a box or paint the base object")
        painted, given = rasterize(state, size), _mask_input(base_mask, "base_mask", size)
        base = _union("base object", size, painted, given)
        ref = _mask_input(reference_mask, "reference_mask", ref_size)
        return (make_appearance_edit(base, ref, reference_bank, size, ref_size, _source("base_mask", painted, given)),)


@node(CATEGORY, "build",
      outputs=[("DRAGON_EDIT", "edit",
                'The paste edit: connect to DragonSampler, DragonGuider or DragonStartLatent ("edit").')],
      aliases=["paste object", "object paste", "insert object", "add object", "dragondiffusion"])
class DragonEditPaste:
    """Object pasting: the reference object (reference_mask of reference_image) is pasted into the base image, moved
    by (dx, dy) from where it is in the reference and scaled by `scale`."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            **_two_image_inputs("The base image receiving the object.", "The image the object comes from.",
                                "The object to paste, on reference_image."),
            "dx": _pixel_offset("Horizontal offset from the object's place in the reference, pixels (+ right)."),
            "dy": _pixel_offset("Vertical offset from the object's place in the reference, pixels (+ down)."),
            "scale": _scale_factor("Size factor of the pasted object."),
        }}

    @user_errors
    def build(self, image, reference_image, reference_bank, reference_mask, dx, dy, scale):
        size = image_size(image)
        ref_size = image_size(reference_image, "reference_image")
        ref = _mask_input(reference_mask, "reference_mask", ref_size)
        return (make_paste_edit(ref, _offset(dx, dy), scale, reference_bank, size, ref_size),)


@node(CATEGORY, "build",
      outputs=[("MASK", "mask", "1 inside the box, 0 elsewhere, at the image's size (batch of 1).")],
      aliases=["box to mask", "rectangle mask", "bbox to mask", "rect mask"])
class DragonBoxToMask:
    """A rectangle (x, y, width, height in pixels) of the image as a MASK."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE", {"tooltip": "Gives the mask's size."}),
            "x": ("INT", {"default": 0, "min": 0, "max": 16384, "tooltip": "Left edge, pixels."}),
            "y": ("INT", {"default": 0, "min": 0, "max": 16384, "tooltip": "Top edge, pixels."}),
            "width": ("INT", {"default": 64, "min": 1, "max": 16384, "tooltip": "Box width, pixels."}),
            "height": ("INT", {"default": 64, "min": 1, "max": 16384, "tooltip": "Box height, pixels."}),
        }}

    @user_errors
    def build(self, image, x, y, width, height):
        size = image_size(image)
        return (box_to_mask((x, y, width, height), size).float()[None],)


NODE_CLASS_MAPPINGS = {"DragonEditMove": DragonEditMove, "DragonEditDrag": DragonEditDrag,
                       "DragonEditAppearance": DragonEditAppearance, "DragonEditPaste": DragonEditPaste,
                       "DragonBoxToMask": DragonBoxToMask}
NODE_DISPLAY_NAME_MAPPINGS = {"DragonEditMove": "Dragon Edit: Move / Resize", "DragonEditDrag": "Dragon Edit: Drag Points",
                              "DragonEditAppearance": "Dragon Edit: Appearance Replacement",
                              "DragonEditPaste": "Dragon Edit: Paste Object", "DragonBoxToMask": "Dragon Box to Mask"}

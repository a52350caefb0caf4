"""The front end's rules for a node in a saved workflow: which inputs become widgets (and in what order), which are
sockets, what a widget's default value is, and how big the front end draws each node.

Read from comfyui-frontend-package 1.32.9 and checked in a browser by tests/e2e/test_example_workflows.py: a node's
widgets are its required, then optional, inputs of a widget type (INT, FLOAT, STRING, BOOLEAN, COMBO) in
``input_order``; an INT input declared with ``control_after_generate``, or *named* ``seed`` or ``noise_seed`` unless
it says ``control_after_generate: False``, gets a second widget right after it (fixed / increment / decrement /
randomize, default "randomize") whose value is saved in widgets_values; a COMBO with ``image_upload`` (LoadImage)
gets an "upload" button whose value "image" is saved after the node's required widgets. Widgets with
``serialize = false`` (this pack's editor and bank info panels) are not saved.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Nodes the front end defines itself (not in /object_info).
FRONTEND_NODES = {"Note": ["text"], "MarkdownNote": ["text"]}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
UPLOAD_FLAGS = ("image_upload", "animated_image_upload", "video_upload", "audio_upload")

# Sizes the 1.32 front end gives these nodes (measured in chromium; at least node.computeSize()). A workflow may
# state a bigger size; the front end only ever grows a node to its computed size on load.
NODE_SIZES = {
    "CheckpointLoaderSimple": (315, 98), "CLIPTextEncode": (400, 160), "LoadImage": (315, 314),
    "VAEEncode": (140, 46), "VAEDecode": (140, 46), "SaveImage": (315, 270), "PreviewImage": (315, 270),
    "LoraLoaderModelOnly": (315, 82), "ControlNetLoader": (315, 58), "ControlNetApplyAdvanced": (315, 186),
    "SamplerCustomAdvanced": (240, 106), "DisableNoise": (160, 26), "KSamplerSelect": (315, 58),
    "Canny": (315, 82), "EmptyImage": (315, 130), "ImageCompositeMasked": (315, 146),
    "DragonDemoModel": (350, 138), "DragonDDIMInversion": (360, 162), "DragonBankOptions": (300, 178),
    "DragonEditMove": (420, 600), "DragonEditDrag": (420, 600), "DragonEditAppearance": (420, 600),
    "DragonEditPaste": (420, 560), "DragonBoxToMask": (315, 130), "DragonGuidanceOptions": (300, 370),
    "DragonSampler": (290, 206), "DragonGuider": (290, 158), "DragonBankSigmas": (180, 26),
    "DragonStartLatent": (180, 66), "DragonDDIMSampler": (315, 82),
}


@dataclass(frozen=True)
class Widget:
    name: str       # input name; "control_after_generate" / "upload" for the extra widgets
    kind: str       # "value" (an input of the node), "control" (after a seed) or "upload" (LoadImage's button)
    spec: tuple     # (type, options) of the input, for "value"


def _input_spec(info: dict, group: str, name: str) -> tuple[str, dict, list | None]:
    raw = info["input"][group][name]
    kind, options = raw[0], (raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {})
    if isinstance(kind, list):  # classic COMBO: the option list itself
        return "COMBO", options, list(kind)
    if kind == "COMBO":
        return "COMBO", options, list(options.get("options", []))
    return kind, options, None


def frontend_widgets(info: dict) -> list[Widget]:
    """The widgets the 1.32 front end creates for a node, in widgets_values order, from its /object_info entry."""
    widgets, uploads = [], []
    order = info.get("input_order") or {g: list(info["input"].get(g, {})) for g in ("required", "optional")}
    for group in ("required", "optional"):
        for name in order.get(group, []):
            kind, options, choices = _input_spec(info, group, name)
            if kind not in WIDGET_TYPES or options.get("forceInput") or options.get("rawLink"):
                continue
            widgets.append(Widget(name, "value", (kind, options, tuple(choices) if choices is not None else None)))
            control = options.get("control_after_generate")
            if kind == "INT" and (control if control is not None else name in ("seed", "noise_seed")):
                widgets.append(Widget("control_after_generate", "control", ()))
            if kind == "COMBO" and any(options.get(flag) for flag in UPLOAD_FLAGS) and group == "required":
                uploads.append(Widget("upload", "upload", ()))
    return widgets + uploads


def socket_inputs(info: dict) -> list[tuple[str, str, bool]]:
    """(name, type, optional) of the inputs the front end draws as sockets only (non-widget inputs)."""
    out = []
    order = info.get("input_order") or {g: list(info["input"].get(g, {})) for g in ("required", "optional")}
    for group in ("required", "optional"):
        for name in order.get(group, []):
            kind, options, _ = _input_spec(info, group, name)
            if kind in WIDGET_TYPES and not options.get("forceInput") and not options.get("rawLink"):
                continue
            out.append((name, kind, group == "optional"))
    return out


def default_value(widget: Widget) -> Any:
    if widget.kind == "control":
        return "fixed"  # examples must reproduce: the front end's own default would be "randomize"
    if widget.kind == "upload":
        return "image"
    kind, options, choices = widget.spec
    if "default" in options:
        return options["default"]
    if kind == "COMBO":
        return choices[0] if choices else ""
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[kind]


def output_index(info: dict, output) -> int:
    """The slot of ``output`` (an index, an output name, or a type the node outputs once)."""
    if isinstance(output, int):
        return output
    names = list(info.get("output_name") or info["output"])
    if output in names:
        return names.index(output)
    if output in info["output"] and list(info["output"]).count(output) == 1:
        return list(info["output"]).index(output)
    raise KeyError(f"{info['name']} has no output {output!r} (outputs: {names})")

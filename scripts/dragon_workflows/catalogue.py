"""The example catalogue: one function per shipped workflow, written once for both variants (SD-1.5 and the demo
twin), and ``examples()``, which expands each into its two ``Example``s."""
from __future__ import annotations

import json
from typing import Callable

from .descriptions import (BLUE_SQUARE, DEMO_CONTROLNET, DEMO_LORA, RED_DISC, SD_CONTROLNET,
                           SD_CONTROLNET_URL, SD_LORA, SD_SIZE, SD_STEPS, STAR, YELLOW_DISC, Example, Node, Variant,
                           editor_json)
from .notes import note_text

TWO_PROMPT = "a red ball and a blue box on a smooth grey gradient background, simple flat illustration"
DISC_PROMPT = "a red ball on a smooth beige gradient background, simple flat illustration"
STAR_PROMPT = "a yellow star on a grey striped background, simple flat illustration"
THREE_PROMPT = ("a green triangle, a blue hexagon and a yellow ball on a mottled grey background, "
                "simple flat illustration")


def edit_and_sample(v: Variant, h: dict, bank, node_type: str, widgets: dict, name: str,
                    links: dict | None = None, **sampler) -> None:
    """An example's edit node (id "edit", column 4) on the base image (plus ``links``), sampled by the guided
    sampler from ``bank`` into the result ``name``; ``sampler``: the sampler's other settings (cfg)."""
    v.add(Node("edit", node_type, 4, widgets, links={"image": h["image"], **(links or {})}))
    v.finish(h, v.sampler(h, bank, ("edit", "edit"), 5, **sampler), name, 6)


def reference_edit(v: Variant, h: dict, box, title: str, node_type: str, widgets: dict, name: str,
                   **sampler) -> None:
    """A two-image example (appearance, paste): both images inverted, the reference object cut out by ``box``
    (its node titled ``title``), and the edit fed the reference image, bank and mask."""
    bank = v.invert(h)
    ref_bank, ref_mask = v.reference_object(h, box, title)
    edit_and_sample(v, h, bank, node_type, widgets, name, {"reference_image": h["ref_image"],
                                                           "reference_bank": ref_bank, "reference_mask": ref_mask},
                    **sampler)


def two_image_groups(v: Variant) -> dict:
    return {1: "Demo model: base and reference scenes" if v.demo else "Model and images",
            3: "Invert both images: memory banks"}


def ex_move(v: Variant):
    h = v.sources("two objects", TWO_PROMPT)
    bank = v.invert(h)
    edit_and_sample(v, h, bank, "DragonEditMove", {"dx": v.s(16), "dy": v.s(-4), "scale": 1.0,
                                                   "editor_json": editor_json(boxes=[v.s(*RED_DISC)])}, "move")
    return dict(mode="move", base_scene="two objects",
                shows="Moves the red disc 16 px right and 4 px up (demo pixels; 128/32 at 512 px); the place it "
                      "leaves is filled like its surroundings.",
                regions=[RED_DISC, (26, 10, 20, 20)])


def ex_resize(v: Variant):
    h = v.sources("two objects", TWO_PROMPT)
    bank = v.invert(h)
    edit_and_sample(v, h, bank, "DragonEditMove", {"dx": v.s(4), "dy": 0, "scale": 1.4,
                                                   "editor_json": editor_json(boxes=[v.s(*RED_DISC)])}, "resize")
    return dict(mode="resize (move with scale)", base_scene="two objects",
                shows="Enlarges the red disc 1.4x (scale widget) and shifts it slightly right.",
                regions=[RED_DISC, (11, 11, 26, 26)])


def ex_appearance(v: Variant):
    h = v.sources("two objects", TWO_PROMPT, reference="three objects on noise", reference_prompt=THREE_PROMPT)
    reference_edit(v, h, YELLOW_DISC, "Reference object (box to mask)", "DragonEditAppearance",
                   {"editor_json": editor_json(boxes=[v.s(*RED_DISC)])}, "appearance", cfg=5.0)
    return dict(mode="appearance replacement", groups=two_image_groups(v), base_scene="two objects",
                reference_scene="three objects on noise",
                shows="The red disc takes the look of the yellow disc of a second image (its own inversion gives "
                      "the reference bank).",
                regions=[RED_DISC])


def ex_drag(v: Variant):
    h = v.sources("two objects", TWO_PROMPT)
    bank = v.invert(h)
    edit_and_sample(v, h, bank, "DragonEditDrag", {"editor_json": editor_json(points=[v.s(20, 24, 34, 22)],
                                                                              strokes=[v.s(27, 24, 15) + (1,)])},
                    "drag")
    return dict(mode="content drag", base_scene="two objects",
                shows="Drags the red disc's content from its handle point to the target point; only the painted "
                      "region may change.",
                regions=[(12, 9, 30, 30)])


def ex_paste(v: Variant):
    h = v.sources("disc on gradient", DISC_PROMPT, reference="star on stripes", reference_prompt=STAR_PROMPT)
    reference_edit(v, h, STAR, "Object to paste (box to mask)", "DragonEditPaste",
                   {"dx": v.s(12), "dy": v.s(4), "scale": 1.0}, "paste")
    return dict(mode="object paste", groups=two_image_groups(v), base_scene="disc on gradient",
                reference_scene="star on stripes",
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
    edit_and_sample(v, h, bank, "DragonEditDrag", {"editor_json": editor_json(points=[v.s(44, 42, 50, 34)],
                                                                              strokes=[v.s(46, 38, 14) + (1,)])},
                    "drag_lora")
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
    size = v.size
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


def ex_drag_points(v: Variant):
    h = v.sources("two objects", TWO_PROMPT)
    bank = v.invert(h)
    handles = [v.s(16, 24), v.s(24, 24)]
    targets = [v.s(28, 22), v.s(36, 22)]
    # The two forms DragonEditDrag reads: KJNodes Points Editor's coordinates, and a plain list of pairs.
    v.add(Node("handles", "PrimitiveStringMultiline", 4, {"value": json.dumps([{"x": x, "y": y} for x, y in handles])},
               title="Handle points (KJNodes Points Editor form)"))
    v.add(Node("targets", "PrimitiveStringMultiline", 4, {"value": json.dumps([list(p) for p in targets])},
               title="Target points (list of [x, y] pairs)"))
    v.add(Node("edit", "DragonEditDrag", 4, {"editor_json": editor_json(strokes=[v.s(27, 24, 15) + (1,)])},
               links={"image": h["image"], "handle_points": ("handles", "STRING"),
                      "target_points": ("targets", "STRING")}))
    v.finish(h, v.sampler(h, bank, ("edit", "edit"), 5), "drag_points", 6)
    return dict(mode="content drag from point lists", base_scene="two objects",
                groups={4: "Points from other nodes, the edit"},
                shows="A drag whose handle and target points come from other nodes' outputs instead of the editor: "
                      "two handles on the red disc go 12 px right and 2 px up. The editor only paints the region "
                      "allowed to change.",
                how="The two text nodes stand in for point-placing nodes: connect KJNodes' Points Editor "
                    "(positive_coords, with normalize off) or any node writing a JSON list of [x, y] pairs in "
                    "image pixels to handle_points and target_points (same length; the k-th handle goes to the "
                    "k-th target).",
                regions=[(12, 9, 30, 30)])


EXAMPLES: dict[str, Callable[[Variant], dict]] = {
    "dragon_move": ex_move,
    "dragon_resize": ex_resize,
    "dragon_appearance": ex_appearance,
    "dragon_drag": ex_drag,
    "dragon_paste": ex_paste,
    "dragon_drag_lora": ex_drag_lora,
    "dragon_drag_controlnet": ex_drag_controlnet,
    "dragon_move_guider": ex_guider,
    "dragon_drag_points": ex_drag_points,
}
GROUPS = {1: "Model and image", 2: "Prompts", 3: "Invert once: memory bank", 4: "The edit", 5: "Guided sampling"}
DEMO_GROUPS = {**GROUPS, 1: "Embedded demo model (built-in scenes)"}


def examples(sd_size: int = SD_SIZE, sd_steps: int = SD_STEPS) -> list[Example]:
    """Every shipped workflow's description: for each example its SD-1.5 version (at ``sd_size`` px, ``sd_steps``
    steps; the shipped files use the defaults) and its demo twin."""
    out = []
    for name, make in EXAMPLES.items():
        for demo in (False, True):
            v = Variant(demo, sd_size, sd_steps)
            info = make(v)
            full = f"{name}_demo" if demo else name
            regions = [tuple(c * v.scale for c in r) for r in info["regions"]]
            groups = {**(DEMO_GROUPS if demo else GROUPS), **info.get("groups", {})}
            out.append(Example(name=full, mode=info["mode"], shows=info["shows"], nodes=v.nodes, demo=demo,
                               twin=name if demo else f"{name}_demo", base_scene=info["base_scene"],
                               reference_scene=info.get("reference_scene"), regions=regions, groups=groups,
                               note=note_text(full, info, demo, v)))
    return out

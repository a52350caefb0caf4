"""Bad input through the real ComfyUI server's POST /prompt, on the embedded demo model (64x64, CPU).

Each case mutates one thing of a valid API-format prompt (tests/helpers/prompts.py: DragonDemoModel ->
VAEEncode -> DragonDDIMInversion -> DragonEdit* -> DragonSampler -> VAEDecode -> SaveImage) and checks that the
user gets ComfyUI's normal node error, either
 - /prompt's 400 validation error (widget min/max, COMBO lists, missing inputs: ComfyUI checks those before
   anything runs), naming the input and the allowed range, or
 - an ``execution_error`` in /history's status messages, raised by the failing node as DragonNodeError with a
   one-line message that names the input and what is allowed, with no torch exception text and no traceback
   frame below the pack's node_errors wrapper (the engine's chain is cut there),
quickly (no hang), and that the server keeps editing: a valid prompt re-running the sampler succeeds every
``CHECK_EVERY`` cases and once at the end.

The in-process node-level refusals are in tests/comfy/test_edit_pipeline.py; this file is about what a user of
the server sees. Most cases fail in the edit node or before the sampling loop, so with ComfyUI's cache keeping
the model and the inversion of the base prompt, a case costs milliseconds of compute.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import pytest

from dragon_test_helpers.prompts import (DRAG_JSON, assert_success, cached_nodes, demo_edit_prompt,
                                         execution_error, post, saved_images)

STEPS = 3            # the base prompt's inversion steps (the edit samples over the same steps)
CHECK_EVERY = 12     # a valid edit after every CHECK_EVERY bad prompts (and once at the end)
CASE_TIMEOUT = 120   # seconds; a refusal takes well under a second of compute, this only guards against hangs
IMG = 64             # the demo scene is 64x64 (a 16x16 latent: the demo VAE downscales 4x)
NAN = float("nan")   # json.dumps writes NaN, ComfyUI's /prompt (json.loads) reads it back

# What a user must never see as the message: exception text from torch or Python internals.
FORBIDDEN = re.compile(r"RuntimeError|size mismatch|Traceback|IndexError|KeyError|AttributeError|TypeError|"
                       r"ZeroDivisionError|Expected .* got|torch\.|\.py\b|<built-in|object at 0x")


# ------------------------------------------------------------------------------------------ case builders


@dataclass
class Case:
    id: str
    mutate: Callable[[dict], None]
    node: str                        # the node whose error the user sees
    texts: tuple[str, ...]           # substrings of the message: the input's name first, then what is allowed
    validation_input: str | None = None  # set: a 400 from /prompt naming this input
    stock_node: bool = False         # raised inside a stock ComfyUI node (by our guider): DragonInputError itself
    extra: dict = field(default_factory=dict)


def ej(p: dict, value) -> None:
    """Set the edit node's editor_json (a dict/list is serialised; a str is used as is)."""
    p["edit"]["inputs"]["editor_json"] = value if isinstance(value, str) else json.dumps(value)


def solid(p: dict, name: str, value: float, width: int = IMG, height: int = IMG) -> list:
    p[name] = {"class_type": "SolidMask", "inputs": {"value": value, "width": width, "height": height}}
    return [name, 0]


def move(p: dict, dx: int = 16, dy: int = -4, scale: float = 1.0, editor=None, **masks) -> None:
    p["edit"] = {"class_type": "DragonEditMove",
                 "inputs": {"image": ["model", 4], "dx": dx, "dy": dy, "scale": scale,
                            "editor_json": json.dumps({"boxes": [[10, 14, 20, 20]]} if editor is None else editor),
                            **masks}}


def drag(p: dict, editor=None, **masks) -> None:
    p["edit"] = {"class_type": "DragonEditDrag",
                 "inputs": {"image": ["model", 4], "editor_json": json.dumps(editor or DRAG_JSON), **masks}}


def second_inversion(p: dict, size: int = 32, steps: int = STEPS, prefix: str = "ref") -> list:
    """Invert the demo scene scaled to ``size`` px: a memory bank of another image size."""
    p[f"{prefix}_scale"] = {"class_type": "ImageScale", "inputs": {"image": ["model", 4], "upscale_method": "area",
                                                                   "width": size, "height": size, "crop": "disabled"}}
    p[f"{prefix}_encode"] = {"class_type": "VAEEncode", "inputs": {"pixels": [f"{prefix}_scale", 0],
                                                                   "vae": ["model", 1]}}
    p[f"{prefix}_invert"] = {"class_type": "DragonDDIMInversion",
                             "inputs": {"model": ["model", 0], "latent": [f"{prefix}_encode", 0],
                                        "positive": ["model", 2], "steps": steps}}
    return [f"{prefix}_invert", 0]


def same_size_reference(p: dict, steps: int) -> list:
    """Invert the demo scene itself again with another step count."""
    p["ref_invert"] = {"class_type": "DragonDDIMInversion",
                       "inputs": {"model": ["model", 0], "latent": ["encode", 0], "positive": ["model", 2],
                                  "steps": steps}}
    return ["ref_invert", 0]


def appearance(p: dict, reference_bank: list | None, reference_mask: list | None = None) -> None:
    p["ref_mask"] = {"class_type": "DragonBoxToMask",
                     "inputs": {"image": ["model", 4], "x": 36, "y": 34, "width": 16, "height": 16}}
    inputs = {"image": ["model", 4], "reference_image": ["model", 4], "reference_mask": reference_mask or ["ref_mask", 0],
              "editor_json": json.dumps({"boxes": [[10, 14, 20, 20]]})}
    if reference_bank is not None:
        inputs["reference_bank"] = reference_bank
    p["edit"] = {"class_type": "DragonEditAppearance", "inputs": inputs}


def paste(p: dict, reference_bank: list | None, dx: int = 4, dy: int = 4, scale: float = 1.0,
          reference_mask: list | None = None) -> None:
    p["ref_mask"] = {"class_type": "DragonBoxToMask",
                     "inputs": {"image": ["model", 4], "x": 36, "y": 34, "width": 16, "height": 16}}
    inputs = {"image": ["model", 4], "reference_image": ["model", 4], "reference_mask": reference_mask or ["ref_mask", 0],
              "dx": dx, "dy": dy, "scale": scale}
    if reference_bank is not None:
        inputs["reference_bank"] = reference_bank
    p["edit"] = {"class_type": "DragonEditPaste", "inputs": inputs}


def guidance(p: dict, **over) -> None:
    options = dict(schedule="DragonDiffusion", energy_scale=-1.0, w_edit=-1.0, w_content=-1.0, w_contrast=-1.0,
                   w_inpaint=-1.0, attention_start_step=-1, attention_end_step=-1, cross_branch_attention=True,
                   regional_sde=True, sde_eta_inside=0.4, sde_eta_outside=0.0, time_travel=True, keep_background=1.0,
                   keep_object=1.0)
    options.update(over)
    p["guidance"] = {"class_type": "DragonGuidanceOptions", "inputs": options}
    p["sampler"]["inputs"]["guidance"] = ["guidance", 0]


def model_through(p: dict, class_type: str, **inputs) -> None:
    """Route the MODEL through a stock node (e.g. ModelSamplingDiscrete) for the inversion and the sampler."""
    p["patched"] = {"class_type": class_type, "inputs": {"model": ["model", 0], **inputs}}
    p["invert"]["inputs"]["model"] = ["patched", 0]
    p["sampler"]["inputs"]["model"] = ["patched", 0]


def scaled_image(p: dict, size: int) -> list:
    p["scaled"] = {"class_type": "ImageScale", "inputs": {"image": ["model", 4], "upscale_method": "area",
                                                          "width": size, "height": size, "crop": "disabled"}}
    return ["scaled", 0]


def guider_with_scheduler(p: dict, steps: int) -> None:
    """DragonGuider under the stock SamplerCustomAdvanced, with BasicScheduler sigmas of ``steps`` steps
    instead of DragonBankSigmas."""
    p["guider"] = {"class_type": "DragonGuider", "inputs": {k: v for k, v in p["sampler"]["inputs"].items()
                                                            if k != "seed"}}
    p["start"] = {"class_type": "DragonStartLatent",
                  "inputs": {"model": ["model", 0], "memory_bank": ["invert", 0], "edit": ["edit", 0]}}
    p["noise"] = {"class_type": "DisableNoise", "inputs": {}}
    p["ksampler"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "ddim"}}
    p["sigmas"] = {"class_type": "BasicScheduler",
                   "inputs": {"model": ["model", 0], "scheduler": "ddim_uniform", "steps": steps, "denoise": 1.0}}
    p["sampler"] = {"class_type": "SamplerCustomAdvanced",
                    "inputs": {"noise": ["noise", 0], "guider": ["guider", 0], "sampler": ["ksampler", 0],
                               "sigmas": ["sigmas", 0], "latent_image": ["start", 0]}}


def set_inputs(node: str, **values) -> Callable[[dict], None]:
    return lambda p: p[node]["inputs"].update(values)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _(fn, *args, **kwargs) -> Callable[[dict], None]:
    return lambda p: fn(p, *args, **kwargs)


OUTSIDE = "lies outside the 64x64 image"
CASES = [
    # -- editor_json: points ---------------------------------------------------------------------------
    Case("point x outside the image", _(ej, {"points": [[200, 24, 34, 22]]}), "edit",
         ("editor_json.points (handles)[0]", OUTSIDE, "0 <= x < 64")),
    Case("target y negative", _(ej, {"points": [[20, 24, 34, -3]]}), "edit",
         ("editor_json.points (targets)[0]", OUTSIDE, "0 <= y < 64")),
    Case("point coordinate is a string", _(ej, {"points": [["20", 24, 34, 22]]}), "edit",
         ("editor_json.points[0]", "must be a number")),
    Case("point coordinate is a boolean", _(ej, {"points": [[True, 24, 34, 22]]}), "edit",
         ("editor_json.points[0]", "must be a number")),
    Case("point row of three numbers", _(ej, {"points": [[20, 24, 34]]}), "edit",
         ("editor_json.points[0]", "must be a list of 4 numbers")),
    Case("257 points", _(ej, {"points": [[20, 24, 34, 22]] * 257}), "edit",
         ("editor_json.points", "has 257 entries; at most 256")),
    Case("drag without points", _(ej, "{}"), "edit", ("editor_json.points", "no handle -> target pair")),
    # -- editor_json: syntax and limits ----------------------------------------------------------------
    Case("malformed JSON", _(ej, '{"points": [[20, 24, 34, 22]'), "edit", ("editor_json", "is not valid JSON")),
    Case("oversized JSON (300 KB)", _(ej, {"points": [[20, 24, 34, 22]] * 20000}), "edit",
         ("editor_json", "at most 65536 allowed")),
    Case("deeply nested JSON (30000 levels)", _(ej, _nested(30000)), "edit", ("editor_json", "is not valid JSON")),
    Case("nested lists inside points (200 levels)", _(ej, '{"points": [' + _nested(200) + "]}"), "edit",
         ("editor_json.points[0]", "must be a list of 4 numbers")),
    Case("NaN coordinate", _(ej, '{"points": [[NaN, 24, 34, 22]]}'), "edit",
         ("editor_json", "contains NaN; only finite numbers are allowed")),
    Case("Infinity coordinate", _(ej, '{"points": [[20, 24, Infinity, 22]]}'), "edit",
         ("editor_json", "contains Infinity; only finite numbers are allowed")),
    Case("1e999 overflows to infinity", _(ej, '{"points": [[20, 24, 1e999, 22]]}'), "edit",
         ("editor_json.points[0]", "must be finite")),
    Case("integer too large for a float", _(ej, '{"points": [[1' + "0" * 400 + ", 24, 34, 22]]}"), "edit",
         ("editor_json.points[0]", "must be finite")),
    Case("unknown keys", _(ej, {"points": [[20, 24, 34, 22]], "__class__": "os.system", "exec": "print(1)"}), "edit",
         ("editor_json", "unknown keys ['__class__', 'exec']", "allowed: version, points, boxes, strokes, image")),
    Case("not a JSON object", _(ej, '"drag the disc"'), "edit", ("editor_json", "must be a JSON object")),
    Case("editor_json sent as an object, not a string",
         lambda p: p["edit"]["inputs"].update(editor_json={"points": [[20, 24, 34, 22]]}), "edit",
         ("editor_json", "is not valid JSON")),
    Case("stroke centre 1e39 (beyond float32)", _(ej, {"points": [[20, 24, 34, 22]], "strokes": [[1e39, 24, 4, 1]]}),
         "edit", ("editor_json.strokes[0]", "is out of range", "within +-1e+06")),
    Case("stroke centre 1e300", _(ej, {"points": [[20, 24, 34, 22]], "strokes": [[20, 1e300, 4, 1]]}), "edit",
         ("editor_json.strokes[0]", "is out of range")),
    Case("strokes erased to nothing", _(ej, {"points": [[20, 24, 34, 22]],
                                            "strokes": [[27, 24, 5, 1], [27, 24, 9, 0]]}), "edit",
         ("editor_json", "leave nothing painted")),
    Case("brush radius 0", _(ej, {"points": [[20, 24, 34, 22]], "strokes": [[27, 24, 0, 1]]}), "edit",
         ("editor_json.strokes", "brush radius must be > 0")),
    # -- regions, masks, boxes -------------------------------------------------------------------------
    Case("empty object mask", lambda p: move(p, editor={}, object_mask=solid(p, "mask", 0.0)), "edit",
         ("object_mask", "is empty")),
    Case("empty drag region mask", lambda p: drag(p, {"points": [[20, 24, 34, 22]]}, region_mask=solid(p, "mask", 0.0)),
         "edit", ("region_mask", "is empty")),
    Case("soft 0.5 region mask next to painted strokes", lambda p: drag(p, region_mask=solid(p, "mask", 0.5)), "edit",
         ("region_mask", "no value above 0.5", "its largest is 0.5")),
    Case("all-ones object mask", lambda p: move(p, editor={}, object_mask=solid(p, "mask", 1.0)), "edit",
         ("object_mask", "covers the whole image")),
    Case("mask of another size", lambda p: move(p, object_mask=solid(p, "mask", 1.0, 32, 32)), "edit",
         ("object_mask", "is 32x32 but the image is 64x64", "masks must match the image size")),
    Case("move without any object", _(move, editor={}), "edit", ("object", "no region given")),
    Case("box with negative width", _(move, editor={"boxes": [[10, 14, -20, 20]]}), "edit",
         ("editor_json.boxes[0]", "width and height must be > 0")),
    Case("box beyond the image", _(move, editor={"boxes": [[50, 50, 30, 30]]}), "edit",
         ("editor_json.boxes[0]", "is not inside the 64x64 image", "x + w <= width")),
    Case("DragonBoxToMask box beyond the image",
         lambda p: move(p, editor={}, object_mask=["box", 0]) or p.update(box={
             "class_type": "DragonBoxToMask",
             "inputs": {"image": ["model", 4], "x": 60, "y": 8, "width": 20, "height": 20}}), "box",
         ("box", "is not inside the 64x64 image")),
    Case("points given to a move", _(move, editor={"boxes": [[10, 14, 20, 20]], "points": [[1, 2, 3, 4]]}), "edit",
         ("editor_json.points", "Move does not use handle/target points")),
    # -- move / resize / scale -------------------------------------------------------------------------
    Case("move pushes the object out", _(move, dx=60, dy=0), "edit",
         ("dx/dy", "moves part of the object outside the 64x64 image", "smaller offset or scale")),
    Case("resize pushes the object out", _(move, dx=0, dy=0, scale=4.0), "edit",
         ("dx/dy", "scale 4 moves part of the object outside")),
    Case("empty move", _(move, dx=0, dy=0, scale=1.0), "edit", ("dx/dy", "the move is empty")),
    Case("scale 0", _(move, scale=0.0), "edit", ("smaller than min of 0.05",), validation_input="scale"),
    Case("scale negative", _(move, scale=-1.5), "edit", ("smaller than min of 0.05",), validation_input="scale"),
    Case("paste scale 0", _(paste, None, scale=0.0), "edit", ("smaller than min of 0.05",), validation_input="scale"),
    # -- steps -----------------------------------------------------------------------------------------
    Case("steps 0", set_inputs("invert", steps=0), "invert", ("smaller than min of 1",), validation_input="steps"),
    Case("steps above the widget's max", set_inputs("invert", steps=5000), "invert", ("bigger than max of 1000",),
         validation_input="steps"),
    Case("steps beyond the model's schedule", set_inputs("invert", steps=1000), "invert",
         ("steps", "must be 1..999 for this model")),
    Case("bank options record nothing", lambda p: p.update(bank_options={
             "class_type": "DragonBankOptions",
             "inputs": {"dtype": "int8", "storage": "offload device", "record_attention": True,
                        "attention_from_step": 7, "record_features": False, "feature_until_step": 2}})
         or p["invert"]["inputs"].update(bank_options=["bank_options", 0]), "invert",
         ("bank_options.attention_from_step", f"records nothing with {STEPS} steps", f"use 0..{STEPS - 1}")),
    Case("guider sampled with more steps than the inversion", _(guider_with_scheduler, STEPS + 7), "sampler",
         ("memory_bank", f"was inverted over {STEPS} steps with other sigmas", "same step count"), stock_node=True),
    # -- memory banks ----------------------------------------------------------------------------------
    Case("memory bank of another image size",
         lambda p: p["sampler"]["inputs"].update(memory_bank=second_inversion(p)), "sampler",
         ("edit", "was drawn on a 64x64 image but the latent is 8x8", "connect the image that was VAE-encoded")),
    Case("appearance: reference bank of another image size", lambda p: appearance(p, second_inversion(p)), "sampler",
         ("reference_bank", "32x32 image", "reference_image is 64x64")),
    Case("paste: reference bank of another image size", lambda p: paste(p, second_inversion(p)), "sampler",
         ("reference_bank", "32x32 image", "reference_image is 64x64")),
    Case("paste: reference bank with other steps", lambda p: paste(p, same_size_reference(p, STEPS + 1)), "sampler",
         ("reference_bank", f"was inverted over {STEPS + 1} steps", "same step count")),
    Case("appearance without a reference bank", _(appearance, None), "edit", ("Required input is missing",),
         validation_input="reference_bank"),
    Case("paste pushes the object out", lambda p: paste(p, ["invert", 0], dx=30, dy=0), "edit",
         ("dx/dy", "moves part of the object outside the 64x64 image")),
    Case("paste: all-ones reference mask", lambda p: paste(p, ["invert", 0], reference_mask=solid(p, "mask", 1.0)),
         "edit", ("reference_mask", "covers the whole image")),
    # -- latents and images ----------------------------------------------------------------------------
    Case("60 px image (not a multiple of 8)",
         lambda p: p["encode"]["inputs"].update(pixels=scaled_image(p, 60)) or p["edit"]["inputs"].update(
             image=["scaled", 0]), "edit",
         ("image width", "must be a positive multiple of 8 pixels, got 60")),
    Case("60 px latent, 64 px edit image", lambda p: p["encode"]["inputs"].update(pixels=scaled_image(p, 60)),
         "sampler", ("edit", "was drawn on a 64x64 image but the latent is 15x15")),
    Case("latent batch of 2", lambda p: p.update(batch={"class_type": "RepeatLatentBatch",
                                                        "inputs": {"samples": ["encode", 0], "amount": 2}})
         or p["invert"]["inputs"].update(latent=["batch", 0]), "invert",
         ("latent", "has a batch of 2", "one image at a time")),
    Case("image batch of 2", lambda p: p.update(batch={"class_type": "RepeatImageBatch",
                                                       "inputs": {"image": ["model", 4], "amount": 2}})
         or p["edit"]["inputs"].update(image=["batch", 0]), "edit", ("image", "has a batch of 2")),
    Case("latent with a noise_mask", lambda p: p.update(masked={
             "class_type": "SetLatentNoiseMask", "inputs": {"samples": ["encode", 0], "mask": solid(p, "mask", 1.0, 16, 16)}})
         or p["invert"]["inputs"].update(latent=["masked", 0]), "invert", ("latent", "has a noise_mask")),
    # -- sampler and guidance --------------------------------------------------------------------------
    Case("cfg above its max", set_inputs("sampler", cfg=500.0), "sampler", ("bigger than max of 100.0",),
         validation_input="cfg"),
    Case("cfg negative", set_inputs("sampler", cfg=-4.0), "sampler", ("smaller than min of 0.0",),
         validation_input="cfg"),
    Case("seed negative", set_inputs("sampler", seed=-1), "sampler", ("smaller than min of 0",),
         validation_input="seed"),
    Case("attention window start after end", _(guidance, attention_start_step=2, attention_end_step=1), "sampler",
         ("attention_start_step/attention_end_step", "window 2..1 is empty", f"0 <= start <= end < {STEPS}")),
    Case("attention window beyond the steps", _(guidance, attention_start_step=STEPS + 2), "sampler",
         ("attention_start_step/attention_end_step", "is empty for 3 steps")),
    Case("negative energy scale", _(guidance, energy_scale=-0.5), "sampler",
         ("energy_scale", "must be a finite number >= 0 (or -1 for the mode default)")),
    # NaN passes ComfyUI's min/max check of FLOAT widgets (every comparison with NaN is false): ours must catch it
    Case("energy_scale NaN", _(guidance, energy_scale=NAN), "sampler",
         ("energy_scale", "must be a finite number >= 0")),
    Case("sde_eta_inside NaN", _(guidance, sde_eta_inside=NAN), "sampler", ("sde_eta_inside", "must be in [0, 1]")),
    Case("keep_background NaN", _(guidance, keep_background=NAN), "sampler", ("keep_background", "must be in [0, 1]")),
    Case("keep_object NaN", _(guidance, keep_object=NAN), "sampler", ("keep_object", "must be in [0, 1]")),
    Case("cfg NaN", set_inputs("sampler", cfg=NAN), "sampler", ("cfg", "must be in [0, 100]")),
    Case("scale NaN", _(move, scale=NAN), "edit", ("scale", "must be finite")),
    Case("unknown guidance schedule", _(guidance, schedule="__import__('os')"), "guidance", ("not in list",),
         validation_input="schedule"),
    # -- models ----------------------------------------------------------------------------------------
    Case("v-prediction model (ModelSamplingDiscrete)", _(model_through, "ModelSamplingDiscrete",
                                                         sampling="v_prediction", zsnr=False), "invert",
         ("model", "V_PREDICTION", "eps")),
    Case("flow model (ModelSamplingSD3)", _(model_through, "ModelSamplingSD3", shift=3.0), "invert",
         ("model", "CONST", "eps")),
    Case("demo example outside the list (path)", set_inputs("model", example="../../../etc/passwd"), "model",
         ("not in list",), validation_input="example"),
]

_ids = [c.id for c in CASES]
assert len(set(_ids)) == len(_ids) >= 25


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def server(comfy_server):
    """The session server with the base prompt run once (the model and the base inversion in its cache)."""
    entry, _ = _run(comfy_server, demo_edit_prompt(STEPS, seed=0, prefix="bad_input_base"))
    assert_success(entry)
    return comfy_server


_valid_runs = {"count": 0}


def assert_server_still_edits(server) -> None:
    """A valid prompt with a seed not used before: the sampler re-executes and an image comes out."""
    _valid_runs["count"] += 1
    seed = 1000 + _valid_runs["count"]
    entry, seconds = _run(server, demo_edit_prompt(STEPS, seed=seed, prefix="bad_input_valid"))
    assert_success(entry)
    assert "sampler" not in cached_nodes(entry)
    assert len(saved_images(entry)) == 1


def keep_base_inversion(prompt: dict) -> dict:
    """Add the base prompt's VAEEncode and inversion as unconnected nodes. ComfyUI runs only what outputs need,
    but its classic cache keeps every node of the current prompt and forgets the rest: with these, a case that
    changes the inversion does not evict the base one, and the next case does not invert again."""
    base = demo_edit_prompt(STEPS)
    prompt["keep_encode"] = base["encode"]
    prompt["keep_invert"] = dict(base["invert"], inputs=dict(base["invert"]["inputs"], latent=["keep_encode", 0]))
    return prompt


def _run(server, prompt: dict) -> tuple[dict, float]:
    start = time.monotonic()
    status, body = post(server, prompt)
    assert status == 200, f"POST /prompt -> {status}: {json.dumps(body)[:3000]}"
    entry = server.wait_history(body["prompt_id"], timeout=CASE_TIMEOUT, expect_success=False)
    return entry, time.monotonic() - start


# ------------------------------------------------------------------------------------------ tests


def check_message(message: str, case: Case) -> None:
    for text in case.texts:
        assert text in message, f"{case.id}: {text!r} not in the message {message!r}"
    assert not FORBIDDEN.search(message), f"{case.id}: internal error text in the message {message!r}"
    assert "\n" not in message.strip() and len(message) < 400, f"{case.id}: not a one-line message: {message!r}"


@pytest.mark.parametrize("index", range(len(CASES)), ids=_ids)
def test_bad_input_is_a_node_error_naming_the_input(server, index):
    case = CASES[index]
    prompt = demo_edit_prompt(STEPS, seed=0, prefix="bad_input")
    case.mutate(prompt)
    keep_base_inversion(prompt)
    start = time.monotonic()
    status, body = post(server, prompt)
    if case.validation_input is not None:
        assert status == 400, f"{case.id}: expected /prompt to refuse it, got {status}: {json.dumps(body)[:1500]}"
        errors = body["node_errors"][case.node]["errors"]
        named = [e for e in errors if e.get("extra_info", {}).get("input_name") == case.validation_input
                 or e.get("details", "").startswith(case.validation_input)]
        assert named, f"{case.id}: no error names {case.validation_input!r}: {errors}"
        check_message(f"{named[0]['message']}: {named[0]['details']}", case)
    else:
        assert status == 200, f"{case.id}: /prompt refused it ({status}): {json.dumps(body)[:1500]}"
        entry = server.wait_history(body["prompt_id"], timeout=CASE_TIMEOUT, expect_success=False)
        error = execution_error(entry)
        assert error is not None, f"{case.id}: expected a node error, got {entry.get('status')}"
        assert error["node_id"] == case.node, f"{case.id}: failed in {error['node_id']} ({error['node_type']}): " \
                                              f"{error['exception_message']}"
        check_message(error["exception_message"].strip(), case)
        frames = [frame.split("\n")[0] for frame in error["traceback"]]
        if case.stock_node:  # our guider raised it inside ComfyUI's sampler node: the refusal itself, unwrapped
            assert error["exception_type"].endswith("DragonInputError"), (case.id, error["exception_type"])
            assert "comfyui-dragondiffusion" in frames[-1], frames[-1]
        else:  # the node wrapper cut the engine's traceback: nothing below it
            assert error["exception_type"].endswith("DragonNodeError"), (case.id, error["exception_type"],
                                                                         error["exception_message"])
            assert "node_errors.py" in frames[-1], frames[-1]
        assert not any("/torch/" in frame for frame in frames), frames
    assert time.monotonic() - start < CASE_TIMEOUT
    if index % CHECK_EVERY == CHECK_EVERY - 1:
        assert_server_still_edits(server)


def test_the_server_still_edits_after_every_bad_prompt(server):
    assert_server_still_edits(server)
    assert server.running

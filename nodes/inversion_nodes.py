"""Nodes: DDIM inversion with memory-bank capture."""
from __future__ import annotations

import torch

import comfy.model_management

from ..dragon_core.errors import DragonInputError
from ..dragon_core.memory_bank import BankPolicy, default_policy
from .input_checks import check_latent
from .unet_layout import unet_layout
from .samplers import INVERSION_ENDS, run_inversion
from .node_declaration import node
from .node_errors import user_errors

_DTYPES = {"float16": torch.float16, "int8": torch.int8, "bfloat16": torch.bfloat16, "float32": torch.float32}


def _toggle(default: bool, tooltip: str) -> tuple:
    return ("BOOLEAN", {"default": default, "tooltip": tooltip})


def _step(default: int, tooltip: str) -> tuple:
    """A sampling-step index input (0 to 1000)."""
    return ("INT", {"default": default, "min": 0, "max": 1000, "tooltip": tooltip})


@node("DragonDiffusion/inversion", "build",
      outputs=[("DRAGON_BANK_OPTIONS", "bank_options",
                "What DragonDDIMInversion records: connect to its bank_options.")],
      aliases=["memory bank options", "inversion options", "dragondiffusion"])
class DragonBankOptions:
    """Decides what DDIM inversion records into the memory bank, in the same UNet passes as the inversion: decoder
    self-attention inputs (identity/background for cross-branch attention) and decoder features (targets of the
    energy). Connect to DragonDDIMInversion; without it the defaults below are used."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "dtype": (list(_DTYPES), {"default": "int8",
                                      "tooltip": "Storage precision of the bank. float16 halves float32; int8 "
                                                 "quantises attention tokens per token (half of float16, error <= "
                                                 "0.4% of each token's largest value; features stay float16)."}),
            "storage": (["offload device", "compute device"], {"default": "offload device",
                        "tooltip": "Where the bank lives between steps: ComfyUI's offload device (usually CPU RAM, "
                                   "saves VRAM) or the GPU (faster, uses VRAM)."}),
            "record_attention": _toggle(True, "Record the inversion branch's decoder self-attention inputs for "
                                              "cross-branch attention (keeps identity and background). Off = lean: the "
                                              "inversion branch is recomputed at each edit step instead (one more UNet "
                                              "pass per step, almost no bank memory)."),
            "attention_from_step": _step(0, "First sampling step whose attention is stored. Move/drag use steps >= "
                                            "10% of the steps; raise this to save memory."),
            "record_features": _toggle(False, "Record the decoder features the energy compares against during the "
                                              "inversion (faster edits, more bank memory; taken at the neighbouring "
                                              "inversion level). Off: recomputed on the inverted latent at each guided "
                                              "step (a UNet pass that stops after the last feature block)."),
            "feature_until_step": _step(30, "Features are stored for steps below this (the guided steps: 30 of 50 by "
                                            "default; scale it if you change the step count)."),
        }}

    def build(self, dtype, storage, record_attention, attention_from_step, record_features, feature_until_step):
        device = (comfy.model_management.unet_offload_device() if storage == "offload device"
                  else comfy.model_management.get_torch_device())
        return ({"dtype": dtype, "device": str(device), "record_attention": record_attention,
                 "attention_from_step": attention_from_step, "record_features": record_features,
                 "feature_until_step": feature_until_step},)


def policy_from_options(options: dict | None, steps: int, model=None, latent: dict | None = None) -> BankPolicy:
    """The policy of explicit DragonBankOptions; without options, DragonBankOptions' defaults, restricted to the
    decoder levels that fit the default budget for this MODEL and latent when they are given (SDXL at 1024 px:
    dragon_core.memory_bank.default_policy, docs/LAYER_MAP.md)."""
    if options is None:
        device = str(comfy.model_management.unet_offload_device())
        if model is None or latent is None:
            return BankPolicy(dtype=torch.int8, device=device, record_features=False)
        return default_policy(unet_layout(model).attention_layers, tuple(check_latent(latent).shape), steps, device)
    if options["attention_from_step"] >= steps:
        raise DragonInputError("bank_options.attention_from_step",
                               f"{options['attention_from_step']} records nothing with {steps} steps; use 0..{steps - 1}")
    return BankPolicy(dtype=_DTYPES[options["dtype"]], device=options["device"],
                      attention_steps=frozenset(range(options["attention_from_step"], steps)),
                      feature_steps=frozenset(range(min(options["feature_until_step"], steps))),
                      record_attention=options["record_attention"], record_features=options["record_features"])


@node("DragonDiffusion/inversion", "invert",
      outputs=[("DRAGON_BANK", "memory_bank",
                "The memory bank every edit of this image samples from (its inversion trajectory and recorded attention); "
                "reused while image, model, prompt and steps stay the same."),
               ("LATENT", "z_T", "The fully inverted latent z_T (the start noise), for inspection or other samplers.")],
      aliases=["ddim inversion", "invert image", "image inversion", "memory bank", "dragondiffusion", "drag"])
class DragonDDIMInversion:
    """Inverts an encoded image with deterministic DDIM (positive prompt only, no CFG) and records the memory bank
    in the same UNet passes. Outputs the bank and z_T, the inverted noise as the sampler holds it at the first
    sigma. Invert once, edit many: changing only the edit does not re-run this node."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "An eps-prediction UNet (SD-1.x, SD-2.x base, SDXL, LoRA applied or not). "
                                           "Use the same MODEL for the edit."}),
            "latent": ("LATENT", {"tooltip": "The image to edit, from VAEEncode (batch of 1, sides multiples of 8 px)."}),
            "positive": ("CONDITIONING", {"tooltip": "A prompt describing the image; used for the inversion and the edit."}),
            "steps": ("INT", {"default": 50, "min": 1, "max": 1000,
                              "tooltip": "DDIM steps. The edit samples over exactly these steps (50 in the paper)."}),
        }, "optional": {
            "bank_options": ("DRAGON_BANK_OPTIONS", {"tooltip": "What to record (DragonBankOptions). Default: "
                                                                "attention at every step as int8 on the offload "
                                                                "device, every decoder layer while the bank fits 1 GB "
                                                                "(else the finest levels that fit, e.g. SDXL at 1024 px); "
                                                                "energy features recomputed at edit time."}),
            "inversion_end": (list(INVERSION_ENDS), {"default": INVERSION_ENDS[0],
                              "tooltip": "Where the inversion starts and the edit ends: a clean latent (sigma 0, "
                                         "ComfyUI's DDIM), or alpha_bar_0 as the authors' scheduler does. The "
                                         "paper presets of DragonGuidanceOptions need 'alpha_bar_0 (paper)'."}),
        }}

    @user_errors
    def invert(self, model, latent, positive, steps, bank_options=None, inversion_end=INVERSION_ENDS[0]):
        policy = policy_from_options(bank_options, steps, model, latent)
        bank, z_T = run_inversion(model, latent, positive, steps, policy, inversion_end)
        return {"ui": {"text": [bank.describe()]}, "result": (bank, z_T)}


NODE_CLASS_MAPPINGS = {"DragonBankOptions": DragonBankOptions, "DragonDDIMInversion": DragonDDIMInversion}
NODE_DISPLAY_NAME_MAPPINGS = {"DragonBankOptions": "Dragon Memory Bank Options",
                              "DragonDDIMInversion": "Dragon DDIM Inversion (+ memory bank)"}

"""Nodes: guidance options, the guided sampler (KSampler replacement), the GUIDER for SamplerCustomAdvanced,
and the helpers that feed it (bank sigmas, start latent, the dragon_ddim SAMPLER)."""
from __future__ import annotations

import math
from dataclasses import replace

import torch

import comfy.samplers
import comfy.utils
import latent_preview

from ..dragon_core.energy import EnergyWeights
from ..dragon_core.errors import DragonInputError
from ..dragon_core.guidance import (DEFAULT_KEEP_BACKGROUND, DEFAULT_KEEP_OBJECT, PACK, PRESETS, SCHEDULES,
                                    GuidanceConfig, guidance_for, lock_step_schedule, without_idle_time_travel)
from ..dragon_core.memory_bank import MemoryBank
from ..dragon_core.start_latent import start_latent
from ..dragon_core.geometry import build_geometry
from .guiders import DragonGuider
from .input_checks import check_edit_matches_latent, check_reference_bank
from .samplers import dragon_ddim_function
from .unet_layout import vae_factor
from .node_declaration import node
from .node_errors import user_errors

CATEGORY = "DragonDiffusion/sampling"
AUTO = -1.0

_AUTO_NOTE = " -1 = the authors' default for the edit mode."


@node(CATEGORY, "build",
      outputs=[("DRAGON_GUIDANCE", "guidance",
                "Guidance settings: connect to DragonSampler's or DragonGuider's guidance input.")],
      aliases=["guidance options", "energy guidance", "drag settings", "diffeditor schedule", "dragondiffusion"])
class DragonGuidanceOptions:
    """Energy guidance and cross-branch attention settings. Every -1 means the authors' default for the edit's mode.
    DiffEditor = guide fewer steps, plus regional SDE and time travel. preset: the pack's method, or the authors'
    algorithm exactly (DragonDiffusion / DiffEditor paper)."""

    @classmethod
    def INPUT_TYPES(cls):
        def weight(tip):
            return ("FLOAT", {"default": AUTO, "min": -1.0, "max": 1000.0, "step": 0.01, "tooltip": tip + _AUTO_NOTE})

        return {"required": {
            "schedule": (list(SCHEDULES), {"default": "DragonDiffusion",
                         "tooltip": "DragonDiffusion: guide every step of the first 60%. DiffEditor: the first 20%, "
                                    "then every other step to 60%, with regional SDE and time travel."}),
            "energy_scale": weight("Strength of the energy gradient (authors' UI value: move 0.5, drag 2, appearance 2, "
                                   "paste 1.5). 0 turns energy guidance off."),
            "w_edit": weight("Weight of the edit term (object at its target)."),
            "w_content": weight("Weight of the content-consistency term (the rest unchanged)."),
            "w_contrast": weight("Move: push the vacated place away from the old object."),
            "w_inpaint": weight("Move: make the vacated place look like its fill region; drag: handle content leaves."),
            "attention_start_step": ("INT", {"default": -1, "min": -1, "max": 1000,
                                     "tooltip": "First step with cross-branch attention." + _AUTO_NOTE}),
            "attention_end_step": ("INT", {"default": -1, "min": -1, "max": 1000,
                                   "tooltip": "Last step with cross-branch attention." + _AUTO_NOTE}),
            "cross_branch_attention": ("BOOLEAN", {"default": True,
                                       "tooltip": "Feed the inversion branch's keys/values into the edit (keeps "
                                                  "identity and background)."}),
            "regional_sde": ("BOOLEAN", {"default": True, "tooltip": "DiffEditor schedule only: stochastic steps inside "
                                                                     "the edit region (dragon_ddim sampler)."}),
            "sde_eta_inside": ("FLOAT", {"default": 0.4, "min": 0.0, "max": 1.0, "step": 0.01,
                                         "tooltip": "DDIM eta inside the edit region during regional SDE."}),
            "sde_eta_outside": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                          "tooltip": "DDIM eta outside the edit region (paper 0.2, code 0)."}),
            "time_travel": ("BOOLEAN", {"default": True, "tooltip": "DiffEditor schedule only: repeat some steps with "
                                                                    "re-inversion in between (dragon_ddim sampler)."}),
        }, "optional": {  # optional: API-format prompts saved before it existed still validate
            "keep_background": ("FLOAT", {"default": DEFAULT_KEEP_BACKGROUND, "min": 0.0, "max": 1.0, "step": 0.05,
                                "tooltip": "Beyond the paper: for this fraction of the steps (from the first), the "
                                           "latent outside the edit region follows the inversion, so the background "
                                           "stays as it was. 0 = the paper (background kept only by the content "
                                           "energy and the attention)."}),
            "keep_object": ("FLOAT", {"default": DEFAULT_KEEP_OBJECT, "min": 0.0, "max": 1.0, "step": 0.05,
                            "tooltip": "Beyond the paper: for this fraction of the steps (from the first), the "
                                       "moved, resized, pasted or dragged content follows its own inversion, "
                                       "carried to the target, so it arrives whole and where asked, and a moved "
                                       "object's old place starts from the background around it; appearance: "
                                       "the object takes the reference object's mean colour. The free edit "
                                       "region around it blends it in; lower this to let the last steps redraw "
                                       "the object too. 0 = the paper."}),
            "preset": (list(PRESETS), {"default": PACK,
                       "tooltip": "pack: the settings above, with the pack's locks and sub-cell placement. "
                                  "'DragonDiffusion (paper)' / 'DiffEditor (paper)': the authors' algorithm and "
                                  "nothing else; the preset then decides the schedule, the attention steps, regional "
                                  "SDE and time travel, turns both locks off, and uses the authors' CFG for the "
                                  "mode (appearance 5, else 4) instead of the sampler's cfg input. energy_scale, "
                                  "the four weights and the SDE etas (the authors' demo sliders) still apply. "
                                  "Needs a bank from DragonDDIMInversion with inversion_end 'alpha_bar_0 (paper)'."}),
        }}

    def build(self, **options):
        return (options,)


def guidance_option_defaults() -> dict:
    """What DragonGuidanceOptions outputs with every widget at its default (for scripts, benchmarks, tests)."""
    spec = DragonGuidanceOptions.INPUT_TYPES()
    return {name: options["default"] for group in spec.values() for name, (_, options) in group.items()}


def resolve_guidance(mode: str, steps: int, options: dict | None) -> GuidanceConfig:
    """The chosen preset's defaults for the mode, with the user's explicit values on top (a paper preset takes
    only the energy scale, the weights and the SDE etas: the authors' demo sliders)."""
    options = options or {}
    preset = options.get("preset", PACK)  # options saved before the preset existed: the pack's
    if preset not in PRESETS:
        raise DragonInputError("preset", f"must be one of {PRESETS}, got {preset!r}")
    cfg = guidance_for(mode, steps, preset, options.get("schedule", "DragonDiffusion"))
    if not options:
        return without_idle_time_travel(cfg)
    w = cfg.weights
    weights = EnergyWeights(*(cfg_v if options[k] == AUTO else _non_negative(k, options[k])
                              for k, cfg_v in (("w_edit", w.w_edit), ("w_content", w.w_content),
                                               ("w_contrast", w.w_contrast), ("w_inpaint", w.w_inpaint))))
    scale = cfg.energy_scale if options["energy_scale"] == AUTO else _non_negative("energy_scale", options["energy_scale"])
    cfg = replace(cfg, weights=weights, energy_scale=scale,
                  sde_eta_inside=_unit("sde_eta_inside", options["sde_eta_inside"]),
                  sde_eta_outside=_unit("sde_eta_outside", options["sde_eta_outside"]))
    if preset != PACK:
        return without_idle_time_travel(cfg)
    attention_steps = cfg.attention_steps
    start, end = options["attention_start_step"], options["attention_end_step"]
    if start != -1 or end != -1:
        lo = min(attention_steps) if start == -1 else start
        hi = max(attention_steps) if end == -1 else end
        if lo > hi or lo >= steps:
            raise DragonInputError("attention_start_step/attention_end_step",
                                   f"window {lo}..{hi} is empty for {steps} steps; use 0 <= start <= end < {steps}")
        attention_steps = frozenset(range(lo, min(hi, steps - 1) + 1))
    if not options["cross_branch_attention"]:
        attention_steps = frozenset()
    cfg = replace(cfg, attention_steps=attention_steps)
    if not options["regional_sde"]:
        cfg = replace(cfg, sde_steps=frozenset())
    if not options["time_travel"]:
        cfg = replace(cfg, time_travel_steps=frozenset())
    # options saved before this setting existed have no key: the default applies
    keep = options.get("keep_background", DEFAULT_KEEP_BACKGROUND)
    keep_object = options.get("keep_object", DEFAULT_KEEP_OBJECT)
    return without_idle_time_travel(replace(cfg, background_steps=lock_step_schedule(steps, keep),
                                            object_steps=lock_step_schedule(steps, keep_object, "keep_object")))


def _non_negative(name: str, value: float) -> float:
    # `not value >= 0` also refuses NaN, which passes ComfyUI's min/max check of FLOAT widgets ("nan" in a prompt)
    if not (value >= 0 and math.isfinite(value)):
        raise DragonInputError(name, f"must be a finite number >= 0 (or -1 for the mode default), got {value}")
    return float(value)


def _unit(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:  # NaN included
        raise DragonInputError(name, f"must be in [0, 1], got {value}")
    return float(value)


def _reference_bank(edit):
    return getattr(edit, "reference_bank", None)


def _check_bank(bank, name: str = "memory_bank") -> MemoryBank:
    if not isinstance(bank, MemoryBank):
        raise DragonInputError(name, "must come from DragonDDIMInversion")
    return bank


def make_guider(model, positive, negative, bank, edit, cfg, guidance) -> DragonGuider:
    bank = _check_bank(bank)
    if edit is None or not hasattr(edit, "mode"):
        raise DragonInputError("edit", "must come from a DragonEdit node")
    if not (0.0 <= cfg <= 100.0):
        raise DragonInputError("cfg", f"must be in [0, 100], got {cfg}")
    config = resolve_guidance(edit.mode, bank.steps, guidance)
    reference = _reference_bank(edit)
    if reference is not None:
        _check_bank(reference, "reference_bank")
    if config.cfg is not None:  # a paper preset: the authors' CFG for the mode (documented on the preset input)
        cfg = config.cfg
    return DragonGuider(model, positive, negative, cfg, bank, edit, config, reference)


def start_latent_for(guider: DragonGuider) -> torch.Tensor:
    """The copy-paste start latent, in the LATENT convention (before the model's process_latent_in)."""
    bank = guider.bank
    ref = guider.reference_bank.latents[0] if guider.reference_bank is not None else None
    x = start_latent(bank.latents[0], guider.run.geometry, ref)
    return guider.model_patcher.model.process_latent_out(x.clone())


_MODEL_INPUTS = {
    "model": ("MODEL", {"tooltip": "The MODEL used for the inversion (LoRA/ControlNet-conditioned models welcome). "
                                   "It is cloned, never modified."}),
    "positive": ("CONDITIONING", {"tooltip": "Prompt of the edited image (usually the inversion's prompt)."}),
    "negative": ("CONDITIONING", {"tooltip": "Negative prompt for CFG."}),
    "memory_bank": ("DRAGON_BANK", {"tooltip": "From DragonDDIMInversion of the image being edited."}),
    "edit": ("DRAGON_EDIT", {"tooltip": "From a DragonEdit node."}),
}


@node(CATEGORY, "sample",
      outputs=[("LATENT", "latent", "The edited latent: decode it with VAE Decode.")],
      aliases=["drag sampler", "edit sampler", "move object", "point edit", "dragondiffusion", "diffeditor"])
class DragonSampler:
    """Guided KSampler replacement: samples the edit from the inverted noise with energy guidance and cross-branch
    attention, over the inversion's steps. Output LATENT goes to VAEDecode."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {**_MODEL_INPUTS,
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                             "tooltip": "Seed of the regional SDE noise (DiffEditor schedule); the rest is deterministic."}),
            "cfg": ("FLOAT", {"default": 4.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                              "tooltip": "Classifier-free guidance scale (authors: 4, appearance 5)."}),
        }, "optional": {
            "guidance": ("DRAGON_GUIDANCE", {"tooltip": "DragonGuidanceOptions; default: the authors' settings for the "
                                                        "edit's mode, DragonDiffusion schedule."}),
        }}

    @user_errors
    def sample(self, model, positive, negative, memory_bank, edit, seed, cfg, guidance=None):
        guider = make_guider(model, positive, negative, memory_bank, edit, cfg, guidance)
        return ({"samples": run_edit(guider, seed).cpu()},)


def run_edit(guider: DragonGuider, seed: int) -> torch.Tensor:
    """Sample the edit from its copy-paste start latent with the dragon_ddim sampler, with preview and progress."""
    latent = start_latent_for(guider)
    sampler = comfy.samplers.KSAMPLER(dragon_ddim_function, extra_options={"seed": seed})
    sigmas = guider.bank.sigmas
    callback = latent_preview.prepare_callback(guider.model_patcher, len(sigmas) - 1)
    return guider.sample(torch.zeros_like(latent), latent, sampler, sigmas, callback=callback,
                         disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)


@node(CATEGORY, "build",
      outputs=[("GUIDER", "guider",
                "The edit as a GUIDER for SamplerCustomAdvanced (with DragonBankSigmas, DragonStartLatent, "
                "DisableNoise).")],
      aliases=["drag guider", "dragondiffusion guider", "guider", "samplercustomadvanced"])
class DragonGuiderNode:
    """DragonDiffusion as a GUIDER for SamplerCustomAdvanced. Requires: sigmas = DragonBankSigmas of the same bank,
    noise = DisableNoise, latent = DragonStartLatent, and sampler = euler or ddim (KSamplerSelect) or
    DragonDDIMSampler (regional SDE / time travel); other samplers are refused."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {**_MODEL_INPUTS,
            "cfg": ("FLOAT", {"default": 4.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                              "tooltip": "Classifier-free guidance scale (authors: 4, appearance 5)."}),
        }, "optional": {
            "guidance": ("DRAGON_GUIDANCE", {"tooltip": "DragonGuidanceOptions; default: the authors' settings."}),
        }}

    @user_errors
    def build(self, model, positive, negative, memory_bank, edit, cfg, guidance=None):
        return (make_guider(model, positive, negative, memory_bank, edit, cfg, guidance),)


@node(CATEGORY, "get",
      outputs=[("SIGMAS", "sigmas",
                "The inversion's sigmas, highest first: SamplerCustomAdvanced's sigmas for DragonGuider.")],
      aliases=["bank sigmas", "inversion sigmas", "sigmas"])
class DragonBankSigmas:
    """The sampling sigmas of a memory bank's inversion (what DragonGuider must be sampled with)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"memory_bank": ("DRAGON_BANK", {"tooltip": "From DragonDDIMInversion."})}}

    @user_errors
    def get(self, memory_bank):
        return (_check_bank(memory_bank).sigmas.clone(),)


@node(CATEGORY, "get",
      outputs=[("LATENT", "latent", "The edit's start latent: SamplerCustomAdvanced's latent_image for DragonGuider.")],
      aliases=["start latent", "inverted noise", "edit start latent"])
class DragonStartLatent:
    """The edit's start latent: the inverted noise with the object's noise copied to its new place (move, resize,
    drag, paste). Feed SamplerCustomAdvanced with DisableNoise."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": _MODEL_INPUTS["model"], "memory_bank": _MODEL_INPUTS["memory_bank"],
                             "edit": _MODEL_INPUTS["edit"]},
                "optional": {"guidance": ("DRAGON_GUIDANCE", {
                    "tooltip": "The same DragonGuidanceOptions as the DragonGuider's: a paper preset copies whole "
                               "latent cells as the authors do; without it, the pack's sub-cell copy."})}}

    @user_errors
    def get(self, model, memory_bank, edit, guidance=None):
        bank = _check_bank(memory_bank)
        if edit is None or not hasattr(edit, "mode"):
            raise DragonInputError("edit", "must come from a DragonEdit node")
        check_edit_matches_latent(edit.size, tuple(bank.latent_shape[-2:]), vae_factor(model))
        ref = _reference_bank(edit)
        if ref is not None:
            check_reference_bank(edit, _check_bank(ref, "reference_bank"), model)
        config = resolve_guidance(edit.mode, bank.steps, guidance)
        geometry = build_geometry(edit, tuple(bank.latent_shape[-2:]), whole_cells=config.whole_cells)
        x = start_latent(bank.latents[0], geometry, ref.latents[0] if ref is not None else None)
        return ({"samples": model.model.process_latent_out(x.clone()).cpu()},)


@node(CATEGORY, "get",
      outputs=[("SAMPLER", "sampler", "A SAMPLER for SamplerCustomAdvanced with DragonGuider.")],
      aliases=["ddim sampler", "regional sde", "time travel", "diffeditor sampler"])
class DragonDDIMSampler:
    """SAMPLER for DragonGuider: DDIM with DiffEditor's regional SDE and time travel (as set in
    DragonGuidanceOptions). Plain ddim/euler samplers work too, without those two."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                              "tooltip": "Seed of the regional SDE noise."})}}

    def get(self, seed):
        return (comfy.samplers.KSAMPLER(dragon_ddim_function, extra_options={"seed": seed}),)


NODE_CLASS_MAPPINGS = {"DragonGuidanceOptions": DragonGuidanceOptions, "DragonSampler": DragonSampler,
                       "DragonGuider": DragonGuiderNode, "DragonBankSigmas": DragonBankSigmas,
                       "DragonStartLatent": DragonStartLatent, "DragonDDIMSampler": DragonDDIMSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"DragonGuidanceOptions": "Dragon Guidance Options", "DragonSampler": "Dragon Sampler (guided edit)",
                              "DragonGuider": "Dragon Guider", "DragonBankSigmas": "Dragon Bank Sigmas",
                              "DragonStartLatent": "Dragon Start Latent", "DragonDDIMSampler": "Dragon DDIM Sampler"}

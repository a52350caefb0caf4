"""The UNet's layer map: which decoder blocks give the features and which self-attention layers read the bank."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import comfy.model_base
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

from ..dragon_core.errors import DragonInputError
from ..dragon_core.memory_bank import AttentionLayer


@dataclass(frozen=True)
class UNetLayout:
    architecture: str
    feature_blocks: tuple[int, int]   # output blocks whose input h is the (semantic, geometric) feature
    decoder_attention: tuple[str, ...]  # "block.index" of every decoder self-attention layer
    attention_layers: tuple[AttentionLayer, ...] = ()  # the same layers with their resolution and width


def unet_layout(model) -> UNetLayout:
    """The layer map of a ComfyUI MODEL, or a DragonInputError naming what is unsupported."""
    base = model.model
    arch = type(base).__name__
    model_type = getattr(base, "model_type", None)
    if model_type != comfy.model_base.ModelType.EPS:
        name = getattr(model_type, "name", str(model_type))
        raise DragonInputError("model", f"{arch} is a {name} model; DragonDiffusion's DDIM inversion needs an "
                               "eps-prediction UNet (SD-1.x, SD-2.x base, SDXL)")
    prediction = _patched_prediction(model)
    if prediction is not None:
        raise DragonInputError("model", f"{arch} samples as {prediction} here (its model_sampling is patched, e.g. by "
                               "ModelSamplingDiscrete or ModelSamplingSD3); DragonDiffusion's DDIM inversion needs "
                               "eps prediction: remove that node or set its sampling to eps")
    unet = getattr(base, "diffusion_model", None)
    if not isinstance(unet, UNetModel):
        raise DragonInputError("model", f"{arch} ({type(unet).__name__}) is not a UNet; supported: SD-1.x, SD-2.x "
                               "base, SDXL and other eps-prediction UNets of ComfyUI's UNetModel family")
    per_level = [n + 1 for n in reversed(list(unet.num_res_blocks))]
    starts = [sum(per_level[:k]) for k in range(len(per_level))]
    if len(starts) < 2:
        raise DragonInputError("model", f"{arch} has a single-level UNet; multi-scale features need two levels")
    attn = []
    for b, block in enumerate(unet.output_blocks):
        level = max(k for k, start in enumerate(starts) if start <= b)  # 0 = coarsest decoder level
        downscale = 2 ** (len(starts) - 1 - level)  # latent cells per token side
        for module in block:
            if isinstance(module, SpatialTransformer):
                attn += [AttentionLayer(f"{b}.{k}", downscale, module.in_channels)
                         for k in range(len(module.transformer_blocks))]
    if not attn:
        raise DragonInputError("model", f"{arch} has no self-attention in its decoder; cross-branch attention "
                               "needs one")
    return UNetLayout(arch, (starts[-2], starts[-1]), tuple(a.name for a in attn), tuple(attn))


def _patched_prediction(model) -> Optional[str]:
    """None when the MODEL's effective model_sampling (object patches included) is ComfyUI's eps parametrisation;
    otherwise the class that defines what it predicts (V_PREDICTION, EDM, CONST = flow, X0, LCM ...)."""
    import comfy.model_sampling

    sampling = model.get_model_object("model_sampling")
    for method in ("calculate_denoised", "calculate_input", "noise_scaling"):
        owner = next((c for c in type(sampling).__mro__ if method in vars(c)), None)
        if owner is not comfy.model_sampling.EPS:
            return getattr(owner, "__name__", type(sampling).__name__)
    return None


def vae_factor(model) -> int:
    """Image pixels per latent cell. ComfyUI 0.3.75's latent formats don't say (newer ones have
    spacial_downscale_ratio); every UNet family it ships uses 8."""
    return int(getattr(model.model.latent_format, "spacial_downscale_ratio", 8))

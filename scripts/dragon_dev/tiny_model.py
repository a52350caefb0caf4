"""ComfyUI models without a checkpoint, built the way ComfyUI's own loader builds them.

``build_tiny_model()`` gives a small SD-1.5-like UNet (4 latent channels, cross-attention at both levels of the
encoder and the decoder and in the middle block) that samples in milliseconds on the CPU.
``build_model(sd15_config())`` gives the real SD-1.5 UNet architecture (860 M parameters, ≈12 s to build).

Weights are deterministic functions of ``seed``: ComfyUI's ``comfy.ops.disable_weight_init`` layers leave
their parameters uninitialised (and their ``reset_parameters`` does nothing), so a seeded state dict is
generated and loaded through ``BaseModel.load_model_weights``, as comfy.sd does with a checkpoint.

Every function here needs the in-process host: ``bootstrap.setup_host`` (tests: the ``comfy_host`` fixture) first.
"""
from __future__ import annotations

import math

from .bootstrap import require_host

TINY_CONTEXT_DIM = 64
TINY_TOKENS = 8

# Full UNetModel keyword set, in the format of comfy/model_detection.py (see SD15 there).
# Input blocks: one res block per level -> transformer_depth has 2 entries; output blocks: two per level
# (num_res_blocks + 1) -> transformer_depth_output has 4 entries, all 1: the decoder attends at both levels.
TINY_UNET_CONFIG = {
    "use_checkpoint": False,
    "image_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 32,
    "num_res_blocks": [1, 1],
    "channel_mult": [1, 2],
    "transformer_depth": [1, 1],
    "transformer_depth_output": [1, 1, 1, 1],
    "transformer_depth_middle": 1,
    "use_spatial_transformer": True,
    "use_linear_in_transformer": False,
    "legacy": False,
    "context_dim": TINY_CONTEXT_DIM,
    "adm_in_channels": None,
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}

# Copied from comfy/model_detection.py (ComfyUI 0.3.75, ``SD15 = {``), where it is a local variable.
SD15_UNET_CONFIG = {
    "use_checkpoint": False,
    "image_size": 32,
    "out_channels": 4,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "in_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [2, 2, 2, 2],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "channel_mult": [1, 2, 4, 4],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": False,
    "context_dim": 768,
    "num_heads": 8,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}


def tiny_config(num_head_channels: int = 16, **unet_overrides):
    """A ``comfy.supported_models_base.BASE`` instance for the tiny UNet (SD-1.5 latent format, EPS)."""
    require_host()
    from comfy import latent_formats, supported_models_base

    class TinySD(supported_models_base.BASE):
        unet_config = {"context_dim": TINY_CONTEXT_DIM, "model_channels": 32}  # keys used for matching only
        unet_extra_config = {"num_heads": -1, "num_head_channels": num_head_channels}
        latent_format = latent_formats.SD15
        memory_usage_factor = 1.0

    return TinySD({**TINY_UNET_CONFIG, **unet_overrides})


def sd15_config():
    """``comfy.supported_models.SD15`` with the full SD-1.5 UNet config (8 heads, context 768)."""
    require_host()
    import comfy.supported_models

    return comfy.supported_models.SD15(dict(SD15_UNET_CONFIG))


# Copied from comfy/model_detection.py (ComfyUI 0.3.75, ``SDXL = {``), where it is a local variable.
SDXL_UNET_CONFIG = {
    "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True, "legacy": False,
    "num_classes": "sequential", "adm_in_channels": 2816, "in_channels": 4, "model_channels": 320,
    "num_res_blocks": [2, 2, 2], "transformer_depth": [0, 0, 2, 2, 10, 10], "channel_mult": [1, 2, 4],
    "transformer_depth_middle": 10, "use_linear_in_transformer": True, "context_dim": 2048, "num_head_channels": 64,
    "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10], "use_temporal_attention": False,
    "use_temporal_resblock": False,
}


def sdxl_config():
    """``comfy.supported_models.SDXL`` with the full SDXL UNet config (2.6 G parameters)."""
    require_host()
    import comfy.supported_models

    return comfy.supported_models.SDXL(dict(SDXL_UNET_CONFIG))


def build_narrow_sdxl(seed: int = 0):
    """SDXL narrowed for tests: channels 320 -> 32 (levels 32/64/128, heads of 64 channels), transformer depths
    [0,0,2,2,10,10] -> [0,0,1,1,2,2] (decoder [0,0,0,2,2,2,10,10,10] -> [0,0,0,1,1,1,2,2,2]), context 2048 -> 64.
    Levels, attention placement, several transformer blocks per decoder block and the label embedding
    (adm_in_channels 2816 = pooled 1280 + six 256-d size embeddings) are SDXL's."""
    require_host()
    import comfy.supported_models

    config = dict(SDXL_UNET_CONFIG, model_channels=32, transformer_depth=[0, 0, 1, 1, 2, 2], transformer_depth_middle=2,
                  context_dim=64, transformer_depth_output=[0, 0, 0, 1, 1, 1, 2, 2, 2])
    return build_model(comfy.supported_models.SDXL(config), seed=seed)


def sdxl_conditioning(seed: int, pooled_seed: int, tokens: int = 8, context_dim: int = 64, size: int = 128):
    """CONDITIONING as CLIPTextEncodeSDXL gives it: tokens plus pooled_output and the size fields of encode_adm."""
    import torch

    g = torch.Generator().manual_seed(seed)
    pooled = torch.randn(1, 1280, generator=torch.Generator().manual_seed(pooled_seed))
    return [[torch.randn(1, tokens, context_dim, generator=g),
             {"pooled_output": pooled, "width": size, "height": size, "crop_w": 0, "crop_h": 0,
              "target_width": size, "target_height": size}]]


def layout_only_model(model_config):
    """A ModelPatcher whose UNet has the real module tree but no storage (the ``meta`` device): for reading a
    full-size architecture's layer map without its gigabytes. It cannot run."""
    require_host()
    import torch
    import comfy.model_patcher

    model_config.set_inference_dtype(torch.float16, None)
    model = model_config.get_model({}, "", device=torch.device("meta"))
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


def seeded_values(module, seed: int):
    """(name, value) for every entry of ``module``'s state dict, one at a time, deterministically: fan-in scaled
    normals for weights of rank >= 2, ones for norm scales, zeros for biases."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(seed)
    for name, value in module.state_dict().items():
        shape, dtype = tuple(value.shape), value.dtype
        if not dtype.is_floating_point:
            yield name, value.clone()
        elif len(shape) >= 2:
            fan_in = math.prod(shape[1:])
            yield name, (torch.randn(shape, generator=gen) / math.sqrt(fan_in)).to(dtype)
        elif name.endswith("weight"):
            yield name, torch.ones(shape, dtype=dtype)
        else:
            yield name, torch.zeros(shape, dtype=dtype)


def seeded_state_dict(module, seed: int) -> dict:
    """``seeded_values`` as one state dict."""
    return dict(seeded_values(module, seed))


def build_model(model_config, seed: int = 0, dtype=None, in_place: bool = False):
    """A ``comfy.model_patcher.ModelPatcher`` around ``model_config.get_model`` with seeded weights, built
    like ``comfy.sd.load_state_dict_guess_config`` builds a checkpoint's model (fp32 by default).

    ``in_place``: write the seeded values into the model's own tensors one at a time instead of loading a state
    dict, so that building never holds two copies of the weights (SDXL in fp32: 10 GB instead of 20)."""
    require_host()
    import torch
    import comfy.model_management as model_management
    import comfy.model_patcher

    model_config.set_inference_dtype(dtype or torch.float32, None)
    model = model_config.get_model({}, "")
    if in_place:
        targets = model.diffusion_model.state_dict(keep_vars=True)
        with torch.no_grad():
            for name, value in seeded_values(model.diffusion_model, seed):
                targets[name].copy_(value)
    else:
        model.load_model_weights(seeded_state_dict(model.diffusion_model, seed), "")
    return comfy.model_patcher.ModelPatcher(
        model,
        load_device=model_management.get_torch_device(),
        offload_device=model_management.unet_offload_device(),
    )


def build_tiny_model(seed: int = 0, **unet_overrides):
    """The tiny UNet as a ModelPatcher (MODEL). ``unet_overrides`` replace keys of TINY_UNET_CONFIG."""
    return build_model(tiny_config(**unet_overrides), seed=seed)


def conditioning(seed: int, tokens: int = TINY_TOKENS, context_dim: int = TINY_CONTEXT_DIM, batch: int = 1):
    """A CONDITIONING value ``[[tensor(batch, tokens, context_dim), {}]]`` from a seeded generator."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(seed)
    return [[torch.randn(batch, tokens, context_dim, generator=gen), {}]]


def empty_latent(height: int = 16, width: int = 16, batch: int = 1):
    """A LATENT value of zeros, as EmptyLatentImage gives (latent pixels: image size / 8)."""
    import torch

    return {"samples": torch.zeros(batch, 4, height, width)}

"""The demo model's architecture and weight file, built with ComfyUI's own classes.

Shared by the training script and the loader node so both build exactly the same model. ComfyUI is imported
inside the functions only: importing this module needs torch and safetensors, not a ComfyUI host.

Weight file layout (safetensors, fp16): ``vae.<AutoencoderKL key>``, ``unet.<UNetModel key>`` (the keys of
``BaseModel.diffusion_model``), ``context.positive`` / ``context.negative`` ([1, CONTEXT_TOKENS, CONTEXT_DIM]).
Metadata (all strings): ``unet_config`` and ``vae_ddconfig`` (JSON), ``latent_scale_factor``,
``latent_rgb_factors`` / ``latent_rgb_factors_bias`` (JSON, for ComfyUI's Latent2RGB previews) and the
training record (recipe, seed, steps, losses).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "dragon_demo.safetensors"
FORMAT_VERSION = "1"

IMAGE_SIZE = 64
LATENT_DOWNSCALE = 4
CONTEXT_TOKENS = 4
CONTEXT_DIM = 64

# Three levels (16x16, 8x8, 4x4 for a 64x64 image), 64 channels each. Attention (self + cross) sits in the encoder
# at 8x8, in the middle block, and in every decoder (output) block of the 8x8 and 16x16 levels: the layers
# DragonDiffusion reads features from and swaps keys/values in.
UNET_CONFIG: dict[str, Any] = {
    "image_size": IMAGE_SIZE // LATENT_DOWNSCALE,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 64,
    "channel_mult": [1, 1, 1],
    "num_res_blocks": [1, 1, 1],
    "transformer_depth": [0, 1, 0],
    "transformer_depth_middle": 1,
    "transformer_depth_output": [0, 0, 1, 1, 1, 1],
    "use_spatial_transformer": True,
    "use_linear_in_transformer": True,
    "context_dim": CONTEXT_DIM,
    "num_heads": -1,
    "num_head_channels": 32,
    "legacy": False,
    "adm_in_channels": None,
    "use_checkpoint": False,
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}

# The next demo model's UNet (issue: a model the paper's method works on): twice the width at the two coarser
# levels, two res blocks at 8x8, and self + cross attention at 16x16 and at 8x8 in the encoder and the decoder
# and in the 4x4 middle block: the paper reads features from and swaps keys/values in attention at more than one
# resolution, as SD-1.5 has them. Sized so that it and the autoencoder fit a 20 MB fp16 file
# (tests/comfy/test_demo_training.py). Trained by ``train_demo_model.py --unet large`` (the default).
UNET_CONFIG_LARGE: dict[str, Any] = dict(
    UNET_CONFIG,
    model_channels=64,
    channel_mult=[1, 2, 2],
    num_res_blocks=[1, 2, 1],
    transformer_depth=[1, 1, 1, 0],
    transformer_depth_output=[0, 0, 1, 1, 1, 1, 1],  # deepest level first, one more block per level
    num_head_channels=32,
)
UNET_CONFIGS: dict[str, dict[str, Any]] = {"small": UNET_CONFIG, "large": UNET_CONFIG_LARGE}

# ch_mult has three entries: two 2x downsamplings, so 64x64x3 -> 16x16x4. ComfyUI's Encoder/Decoder end with
# GroupNorm(32 groups) before their output convolution; with one channel per group that norm erases every
# channel's per-image mean and scale, i.e. absolute colour (a first 32-channel run came out grey). Hence 96
# channels (3 per group) at the full-resolution level (the decoder's end) and at the latent level (the
# encoder's end); the middle level, whose norms sit inside residual branches, stays at 32.
VAE_DDCONFIG: dict[str, Any] = {
    "double_z": True,
    "z_channels": 4,
    "resolution": IMAGE_SIZE,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [3, 1, 3],
    "num_res_blocks": 1,
    "attn_resolutions": [],
    "dropout": 0.0,
}
VAE_EMBED_DIM = 4  # the committed model's latent channels (z_channels)


def vae_ddconfig(latent_channels: int = VAE_EMBED_DIM) -> dict[str, Any]:
    """The autoencoder's config with ``latent_channels`` channels in its latent (``z_channels``)."""
    return dict(VAE_DDCONFIG, z_channels=int(latent_channels))


def unet_config(name: str, latent_channels: int = VAE_EMBED_DIM) -> dict[str, Any]:
    """``UNET_CONFIGS[name]`` reading and predicting ``latent_channels``-channel latents."""
    return dict(UNET_CONFIGS[name], in_channels=int(latent_channels), out_channels=int(latent_channels))


@dataclass
class DemoWeights:
    vae: dict[str, torch.Tensor]
    unet: dict[str, torch.Tensor]
    positive: torch.Tensor
    negative: torch.Tensor
    metadata: dict[str, str]

    @property
    def unet_config(self) -> dict[str, Any]:
        return json.loads(self.metadata["unet_config"])

    @property
    def vae_ddconfig(self) -> dict[str, Any]:
        return json.loads(self.metadata["vae_ddconfig"])

    @property
    def latent_scale_factor(self) -> float:
        return float(self.metadata["latent_scale_factor"])


def save_demo_weights(path: Path | str, weights: DemoWeights) -> None:
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for prefix, sd in (("vae.", weights.vae), ("unet.", weights.unet)):
        for key, value in sd.items():
            tensors[prefix + key] = value.detach().to(torch.float16).contiguous().cpu()
    tensors["context.positive"] = weights.positive.detach().to(torch.float16).contiguous().cpu()
    tensors["context.negative"] = weights.negative.detach().to(torch.float16).contiguous().cpu()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format_version": FORMAT_VERSION, **weights.metadata})


def read_demo_weights(path: Path | str = WEIGHTS_PATH) -> DemoWeights:
    """Read a weight file written by ``save_demo_weights`` (tensors as stored, fp16)."""
    from safetensors import safe_open

    vae: dict[str, torch.Tensor] = {}
    unet: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        if metadata.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: not a DragonDiffusion demo weight file (format {metadata.get('format_version')!r})")
        for key in f.keys():
            if key.startswith("vae."):
                vae[key[4:]] = f.get_tensor(key)
            elif key.startswith("unet."):
                unet[key[5:]] = f.get_tensor(key)
        positive, negative = f.get_tensor("context.positive"), f.get_tensor("context.negative")
    return DemoWeights(vae=vae, unet=unet, positive=positive, negative=negative, metadata=metadata)


@functools.cache
def _model_config_class() -> type:
    import comfy.latent_formats
    import comfy.supported_models_base

    class DragonDemoLatentFormat(comfy.latent_formats.LatentFormat):
        """Latents of the demo autoencoder; ``scale_factor`` is set per weight file (unit variance).
        ``spacial_downscale_ratio`` (newer ComfyUI's name; the pack reads it) tells image pixels per latent cell."""
        spacial_downscale_ratio = LATENT_DOWNSCALE

    class DragonDemoConfig(comfy.supported_models_base.BASE):
        unet_config: dict[str, Any] = {}
        unet_extra_config: dict[str, Any] = {}  # the stored config is complete
        latent_format = DragonDemoLatentFormat
        memory_usage_factor = 1.0

    return DragonDemoConfig


def make_model_config(unet_config: dict[str, Any], scale_factor: float,
                      rgb_factors: list[list[float]] | None = None,
                      rgb_bias: list[float] | None = None) -> Any:
    """A ``supported_models_base.BASE`` instance describing the demo UNet and its latent format."""
    config = _model_config_class()(unet_config)
    config.latent_format.latent_channels = int(unet_config["in_channels"])
    config.latent_format.scale_factor = float(scale_factor)
    config.latent_format.latent_rgb_factors = rgb_factors
    config.latent_format.latent_rgb_factors_bias = rgb_bias
    return config


def build_base_model(model_config: Any, device: torch.device | None = None) -> Any:
    """``comfy.model_base.BaseModel`` (eps prediction, SD-1.5 scaled-linear schedule), weights uninitialised."""
    import comfy.model_base

    return comfy.model_base.BaseModel(model_config, model_type=comfy.model_base.ModelType.EPS, device=device)


def build_autoencoder(ddconfig: dict[str, Any]) -> torch.nn.Module:
    """ComfyUI's AutoencoderKL (the class ``comfy.sd.VAE`` builds from a config), weights uninitialised; its
    latent has ``ddconfig["z_channels"]`` channels."""
    from comfy.ldm.models.autoencoder import AutoencoderKL

    return AutoencoderKL(ddconfig=dict(ddconfig), embed_dim=ddconfig["z_channels"])


def make_vae(state_dict: dict[str, torch.Tensor], ddconfig: dict[str, Any],
             device: torch.device | None = None, dtype: torch.dtype | None = None) -> Any:
    """``comfy.sd.VAE`` of the demo autoencoder, usable by the stock VAEEncode/VAEDecode nodes."""
    import comfy.sd

    config = {"params": {"ddconfig": dict(ddconfig), "embed_dim": ddconfig["z_channels"]}}
    vae = comfy.sd.VAE(sd=dict(state_dict), device=device, config=config, dtype=dtype)
    # comfy.sd.VAE assumes 8x for a config-built AutoencoderKL; these attributes drive pixel cropping, tiling
    # and spacial_compression_encode(), so they must state the real factor.
    factor = 2 ** (len(ddconfig["ch_mult"]) - 1)
    vae.downscale_ratio = factor
    vae.upscale_ratio = factor
    vae.latent_channels = ddconfig["z_channels"]  # the tiled (low-memory) encode allocates by it
    return vae

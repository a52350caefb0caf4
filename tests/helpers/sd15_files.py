"""SD-1.5 model files as users download them, with random weights: a checkpoint (UNet, VAE and CLIP-L text encoder
under the original key names), a kohya LoRA and a ControlNet. Written at test time (never committed) for runs of
the SD-1.5 example workflows through ComfyUI's stock loaders.

Shapes come from ComfyUI's own modules built on the ``meta`` device (no storage); values are generated tensor by
tensor and streamed into the safetensors file, so a 2 GB checkpoint never sits in memory whole. Weights are
fan-in scaled normals (ones for norm scales, zeros for biases), which keeps activations finite through the full
architecture. Needs the in-process host (``comfy_host``).
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Callable, Iterable

from dragon_dev.bootstrap import require_host
from dragon_dev.tiny_model import SD15_UNET_CONFIG, layout_only_model, sd15_config

# ComfyUI's SD VAE (comfy/sd.py, the AutoencoderKL branch)
SD_VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                   "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
_DTYPE_NAMES = {"torch.float16": "F16", "torch.float32": "F32", "torch.int64": "I64"}


def _value(name: str, shape: tuple, dtype, gen):
    import torch

    if not dtype.is_floating_point:  # position ids
        return torch.arange(shape[-1], dtype=torch.int64).expand(shape).contiguous()
    if len(shape) >= 2:
        return (torch.randn(shape, generator=gen) / math.sqrt(math.prod(shape[1:]))).to(torch.float16)
    if name.endswith("weight"):
        return torch.ones(shape, dtype=torch.float16)
    return torch.zeros(shape, dtype=torch.float16)


def write_safetensors(path: Path, entries: Iterable[tuple[str, tuple, object, Callable]]) -> Path:
    """A safetensors file from (name, shape, dtype, make) entries; ``make()`` gives each tensor as it is written."""
    entries = list(entries)
    header, offset = {}, 0
    for name, shape, dtype, _ in entries:
        nbytes = math.prod(shape) * dtype.itemsize
        header[name] = {"dtype": _DTYPE_NAMES[str(dtype)], "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name, shape, dtype, make in entries:
            tensor = make()
            assert tuple(tensor.shape) == tuple(shape) and tensor.dtype == dtype, name
            f.write(tensor.contiguous().view(-1).numpy().tobytes() if tensor.dim() else tensor.numpy().tobytes())
    return path


def _seeded(prefix: str, shapes: dict, seed: int, scale: Callable[[str], float] = lambda name: 1.0):
    """Entries whose values depend only on (seed, name)."""
    import torch
    import zlib

    def maker(name, shape, dtype):
        def make():
            gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            value = _value(name, shape, dtype, gen)
            factor = scale(name)
            return value if factor == 1.0 or not value.dtype.is_floating_point else value * factor
        return make

    return [(prefix + name, shape, dtype if not dtype.is_floating_point else torch.float16, maker(name, shape, dtype))
            for name, (shape, dtype) in sorted(shapes.items())]


def _shapes(module) -> dict:
    return {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}


def unet_shapes() -> dict:
    return _shapes(layout_only_model(sd15_config()).model.diffusion_model)


def vae_shapes() -> dict:
    require_host()
    import torch
    from comfy.ldm.models.autoencoder import AutoencoderKL

    with torch.device("meta"):
        return _shapes(AutoencoderKL(ddconfig=SD_VAE_DDCONFIG, embed_dim=4))


def clip_l_shapes() -> dict:
    """The CLIP-L text model's weights, as SD-1.5 checkpoints store them (no projection, no logit scale)."""
    require_host()
    import torch
    import comfy.sd1_clip

    with torch.device("meta"):
        clip = comfy.sd1_clip.SDClipModel(device="meta", dtype=torch.float16)
    return {k: v for k, v in _shapes(clip).items() if k.startswith("transformer.text_model.")}


def write_sd15_checkpoint(path: Path, seed: int = 0) -> Path:
    """model.diffusion_model.* (UNet), first_stage_model.* (VAE), cond_stage_model.transformer.text_model.* (CLIP-L):
    the layout of v1-5-pruned-emaonly, in fp16."""
    entries = (_seeded("model.diffusion_model.", unet_shapes(), seed)
               + _seeded("first_stage_model.", vae_shapes(), seed + 1)
               + _seeded("cond_stage_model.", clip_l_shapes(), seed + 2))
    return write_safetensors(path, entries)


def write_sd15_lora(path: Path, seed: int = 5, rank: int = 4) -> Path:
    """A kohya LoRA (lora_unet_*.lora_up / lora_down / alpha) on the attention projections of the SD-1.5 UNet's
    decoder, keys from ComfyUI's own comfy.lora.model_lora_keys_unet."""
    require_host()
    import torch
    import comfy.lora

    model = layout_only_model(sd15_config()).model
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    key_map = comfy.lora.model_lora_keys_unet(model, {})
    targets = {k: w for k, w in key_map.items() if k.startswith("lora_unet_output_blocks_")
               and k.rsplit("_attn", 1)[-1][2:] in ("to_q", "to_k", "to_v", "to_out_0")}
    assert targets, "no decoder attention projection in the SD-1.5 LoRA key map"
    entries = []
    for i, key in enumerate(sorted(targets)):
        out_features, in_features = shapes[targets[key]][:2]
        gen_seed = seed * 10_007 + i
        entries += [
            (f"{key}.alpha", (), torch.float16, lambda: torch.tensor(float(rank), dtype=torch.float16)),
            (f"{key}.lora_down.weight", (rank, in_features), torch.float16, lambda s=gen_seed, n=in_features: (
                torch.randn(rank, n, generator=torch.Generator().manual_seed(s)) / n ** 0.5).half()),
            (f"{key}.lora_up.weight", (out_features, rank), torch.float16, lambda s=gen_seed, n=out_features: (
                torch.randn(n, rank, generator=torch.Generator().manual_seed(s + 1)) * 0.1).half()),
        ]
    return write_safetensors(path, entries)


def write_sd15_controlnet(path: Path, seed: int = 11, residual_scale: float = 0.05) -> Path:
    """An SD-1.5 ControlNet in the ldm/cldm layout of control_v11p_sd15_*_fp16 (3-channel hint), its zero
    convolutions scaled by ``residual_scale`` so that it steers without drowning the UNet."""
    require_host()
    import torch
    import comfy.cldm.cldm
    import comfy.ops

    config = {k: v for k, v in SD15_UNET_CONFIG.items() if k != "out_channels"}
    with torch.device("meta"):
        net = comfy.cldm.cldm.ControlNet(hint_channels=3, operations=comfy.ops.disable_weight_init,
                                         dtype=torch.float16, device="meta", **config)

    def scale(name):
        return residual_scale if name.startswith(("zero_convs.", "middle_block_out.")) else 1.0

    return write_safetensors(path, _seeded("", _shapes(net), seed, scale))

"""The demo add-ons the *_lora_demo / *_controlnet_demo twins load: a LoRA and a ControlNet in the formats ComfyUI's
stock loaders read, shaped for the demo UNet, with random (untrained) weights."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from . import REPO_ROOT
from .bootstrap import load_repo_module
from .descriptions import DEMO_CONTROLNET, DEMO_LORA


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


def write_addons_in_subprocess(models_dir: Path) -> None:
    """The add-ons need ComfyUI in-process; this process must stay free of it (it only talks to the server)."""
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "make_workflows.py"), "--demo-addons",
                    str(models_dir)], check=True)

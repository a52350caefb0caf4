"""The embedded demo model: a tiny latent diffusion model trained on synthetic scenes (demo/README.md).

It lets every example workflow run a real edit on a CPU-only ComfyUI without downloading weights. It is a
toy yardstick, not an image generator: real checkpoints load through ComfyUI's own loaders as usual.
"""
from __future__ import annotations

import functools
import io
import json
import os
import threading
from typing import Any

import torch

import comfy.model_management
import comfy.model_patcher
import comfy.sd
import folder_paths
from PIL import Image

from ..demo import architecture, synthetic
from .node_declaration import node

_LOCK = threading.Lock()
_BUILT: dict[str, tuple[comfy.model_patcher.ModelPatcher, comfy.sd.VAE]] = {}


@functools.cache
def _demo_weights() -> architecture.DemoWeights:
    return architecture.read_demo_weights(architecture.WEIGHTS_PATH)


def _build(weights: architecture.DemoWeights, load_device: torch.device) -> tuple[comfy.model_patcher.ModelPatcher,
                                                                                   comfy.sd.VAE]:
    mm = comfy.model_management
    config = architecture.make_model_config(
        weights.unet_config, weights.latent_scale_factor,
        json.loads(weights.metadata["latent_rgb_factors"]), json.loads(weights.metadata["latent_rgb_factors_bias"]))
    n_params = sum(t.numel() for t in weights.unet.values())
    unet_dtype = mm.unet_dtype(device=load_device, model_params=n_params,
                               supported_dtypes=config.supported_inference_dtypes)
    config.set_inference_dtype(unet_dtype, mm.unet_manual_cast(unet_dtype, load_device,
                                                                 config.supported_inference_dtypes))
    offload_device = mm.unet_offload_device()
    base = architecture.build_base_model(config).to(offload_device)
    base.load_model_weights(dict(weights.unet), "")
    patcher = comfy.model_patcher.ModelPatcher(base, load_device=load_device, offload_device=offload_device)
    vae = architecture.make_vae({k: v.float() for k, v in weights.vae.items()}, weights.vae_ddconfig,
                                device=load_device)
    return patcher, vae


def load_demo_model(device: torch.device | None = None) -> tuple[comfy.model_patcher.ModelPatcher, comfy.sd.VAE,
                                                                   list, list]:
    """The demo model as (MODEL, VAE, positive, negative), the CONDITIONINGs being ``[[tensor(1, 4, 64), {}]]``.

    ``device`` is the load device (default: ComfyUI's torch device); dtypes follow ComfyUI's usual choice for
    that device. The weights are built once per process and device; each call returns a fresh
    ``ModelPatcher.clone()`` (patches on it do not leak into other callers) and the shared VAE.
    """
    load_device = torch.device(device) if device is not None else comfy.model_management.get_torch_device()
    with _LOCK:
        weights = _demo_weights()
        key = str(load_device)
        if key not in _BUILT:
            # Outside inference mode, so that guidance can backpropagate through these weights later.
            with torch.inference_mode(False):
                _BUILT[key] = _build(weights, load_device)
        patcher, vae = _BUILT[key]
    positive = [[weights.positive.float().clone(), {}]]
    negative = [[weights.negative.float().clone(), {}]]
    return patcher.clone(), vae, positive, negative


def render_example(name: str) -> torch.Tensor:
    """A built-in example scene as a ComfyUI IMAGE [1, 64, 64, 3] in [0, 1]."""
    scenes = synthetic.example_scenes()
    if name not in scenes:
        raise ValueError(f"unknown example {name!r}; expected one of {sorted(scenes)}")
    return torch.from_numpy(synthetic.render_scene(scenes[name]).image).unsqueeze(0)


@node("DragonDiffusion/demo", "load",
      outputs=[("MODEL", "model",
                "The demo UNet (eps prediction, SD-1.5 noise schedule, 16x16x4 latents for 64x64 images)."),
               ("VAE", "vae",
                "The demo autoencoder (4x downscale): use it with the stock VAE Encode / VAE Decode nodes."),
               ("CONDITIONING", "positive",
                "The learned 'scene' conditioning the model was trained with (there is no text encoder)."),
               ("CONDITIONING", "negative", "The learned null conditioning, for classifier-free guidance."),
               ("IMAGE", "example_image",
                "The chosen built-in example scene (64x64), an image the model knows how to edit.")],
      aliases=["dragondiffusion demo", "drag demo", "tiny model", "cpu demo model", "example scenes"])
class DragonDemoModel:
    """Loads the embedded demo model: a tiny latent diffusion model (eps UNet + small AutoencoderKL, about 10 MB)
    trained by demo/train_demo_model.py on synthetic 64x64 scenes of coloured shapes. It runs DragonDiffusion edits
    on a CPU without downloading anything. A toy yardstick, not an image generator: load real checkpoints with
    ComfyUI's checkpoint loader as usual."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        names = list(synthetic.example_scenes())
        return {"required": {"example": (names, {
            "default": names[0],
            "tooltip": "Built-in synthetic scene returned as example_image (rendered by demo/synthetic.py).",
        })}}

    def load(self, example: str) -> dict[str, Any]:
        """The outputs under "result", and under "ui" a preview of the example (a temp file, as PreviewImage
        shows one), so the node and the editors it feeds show the image after a run; before a run the
        editors get it from the route below."""
        model, vae, positive, negative = load_demo_model()
        image = render_example(example)
        return {"ui": {"images": [save_preview(image)]}, "result": (model, vae, positive, negative, image)}


def _pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray((image[0].cpu().numpy() * 255.0).round().clip(0, 255).astype("uint8"))


def save_preview(image: torch.Tensor) -> dict[str, str]:
    """Save a [1, H, W, 3] IMAGE as a PNG in ComfyUI's temp folder; the /view item a ui "images" list holds."""
    height, width = image.shape[1:3]
    folder, stem, counter, subfolder, _ = folder_paths.get_save_image_path(
        "DragonDemoExample", folder_paths.get_temp_directory(), width, height)
    name = f"{stem}_{counter:05}_.png"
    _pil(image).save(os.path.join(folder, name))
    return {"filename": name, "subfolder": subfolder, "type": "temp"}


def example_png(name: str) -> bytes:
    """The example scene `name` as PNG bytes (what the demo example route serves)."""
    buffer = io.BytesIO()
    _pil(render_example(name)).save(buffer, format="PNG")
    return buffer.getvalue()


def register_example_route() -> bool:
    """Serve GET /dragondiffusion/demo_example?name=<example> on ComfyUI's server (web/editor/image_source.js),
    so that the editors show the demo image before the first run. False when there is no server (in-process
    use of the nodes)."""
    try:
        from aiohttp import web
        from server import PromptServer
    except ImportError:
        return False
    instance = getattr(PromptServer, "instance", None)
    if instance is None:
        return False

    @instance.routes.get(EXAMPLE_ROUTE)
    async def demo_example(request):
        name = request.query.get("name", "")
        if name not in synthetic.example_scenes():
            return web.json_response({"error": f"unknown example {name!r}",
                                      "allowed": sorted(synthetic.example_scenes())}, status=404)
        return web.Response(body=example_png(name), content_type="image/png",
                            headers={"Cache-Control": "max-age=3600"})

    return True


EXAMPLE_ROUTE = "/dragondiffusion/demo_example"
register_example_route()


NODE_CLASS_MAPPINGS = {"DragonDemoModel": DragonDemoModel}
NODE_DISPLAY_NAME_MAPPINGS = {"DragonDemoModel": "Dragon Demo Model (embedded, CPU)"}

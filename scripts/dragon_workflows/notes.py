"""The Note node each workflow opens with: what it shows and how to run it (files to download, or the demo twin)."""
from __future__ import annotations

from .descriptions import (DEMO_CONTROLNET, DEMO_LORA, DEMO_STEPS, SD_CHECKPOINT, SD_CONTROLNET, SD_LORA, SD_SIZE,
                           SD_STEPS, Variant, input_image_name)

def note_text(name: str, info: dict, demo: bool, v: Variant) -> str:
    base = name[:-5] if demo else name
    lines = [f"DragonDiffusion example: {info['mode']}", "", info["shows"], ""]
    if info.get("how"):
        lines += [info["how"], ""]
    if demo:
        lines += [
            "This is the DEMO TWIN of '" + base + "': it runs on the embedded demo model (Dragon Demo Model, a tiny "
            "model bundled with the pack) on a CPU" + (
                ". " if ("lora" in name or "controlnet" in name) else ", with nothing to download. ") +
            "Its images are the model's built-in "
            f"64x64 scenes and it uses {DEMO_STEPS} DDIM steps.", ""]
        if "lora" in name:
            lines += [f"It loads '{DEMO_LORA}' from models/loras: a random LoRA shaped for the demo UNet (it only "
                      "shows the wiring). Write it from the ComfyUI folder, with ComfyUI's Python:  python custom_nodes/"
                      "comfyui-dragondiffusion/scripts/make_workflows.py --demo-addons models", ""]
        if "controlnet" in name:
            lines += [f"It loads '{DEMO_CONTROLNET}' from models/controlnet: a random ControlNet shaped for the demo "
                      "UNet (it only shows the wiring). Write it from the ComfyUI folder, with ComfyUI's Python:  python "
                      "custom_nodes/comfyui-dragondiffusion/scripts/make_workflows.py --demo-addons models", ""]
        lines += [
            f"For real images open '{base}' (same graph with an SD-1.5 checkpoint). To switch by hand: replace "
            "Dragon Demo Model by Load Checkpoint (MODEL, VAE), two CLIP Text Encode (positive / negative) and "
            "Load Image (image), then redraw the edit in the editor (coordinates scale with the image: x8 for 512 px)."]
    else:
        lines += [
            "To run it:",
            f"1. Download an SD-1.5 checkpoint, e.g. {SD_CHECKPOINT} (Comfy-Org/stable-diffusion-v1-5-archive on "
            "Hugging Face), into ComfyUI/models/checkpoints, and select it in Load Checkpoint.",
        ]
        step = 2
        if "lora" in name:
            lines.append(f"{step}. Put any SD-1.5 LoRA into ComfyUI/models/loras and select it in the LoRA loader "
                         f"('{SD_LORA}' is a placeholder name).")
            step += 1
        if "controlnet" in name:
            lines.append(f"{step}. Download the SD-1.5 canny ControlNet {SD_CONTROLNET} (comfyanonymous/"
                         "ControlNet-v1-1_fp16_safetensors on Hugging Face) into ComfyUI/models/controlnet.")
            step += 1
        images = [input_image_name(info["base_scene"], SD_SIZE)]
        if info.get("reference_scene"):
            images.append(input_image_name(info["reference_scene"], SD_SIZE))
        lines += [
            f"{step}. Copy {', '.join(images)} from custom_nodes/comfyui-dragondiffusion/example_workflows/input/ "
            "into ComfyUI/input (or upload your own image in Load Image; sides must be multiples of 8 px; then "
            "redraw the box / points in the edit node's editor and describe the new image in the prompt).",
            f"{step + 1}. Queue. The inversion runs once ({SD_STEPS} DDIM steps); change only the edit and queue "
            "again: ComfyUI reuses the memory bank.",
            "",
            f"No GPU, nothing downloaded? Open '{name}_demo': the same graph on the embedded demo model.",
        ]
    return "\n".join(lines)

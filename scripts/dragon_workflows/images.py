"""The example images: demo/synthetic.py's built-in scenes rendered at 64 px (what DragonDemoModel renders) and at
512 px (the SD-1.5 workflows' Load Image files in example_workflows/input/)."""
from __future__ import annotations

import dataclasses
import io

from .bootstrap import demo_module
from .descriptions import DEMO_SIZE, SCENES, SD_SIZE, input_image_name


def synthetic():
    return demo_module("synthetic")


def render(scene_name: str, size: int):
    """float32 [size, size, 3] of an example scene; at 512 px the scene is scaled (not a bigger canvas)."""
    syn = synthetic()
    scene = syn.example_scenes()[scene_name]
    k = size / scene.size
    scaled = dataclasses.replace(scene, size=size, objects=tuple(
        dataclasses.replace(o, center=(o.center[0] * k, o.center[1] * k), size=o.size * k) for o in scene.objects))
    return syn.render_scene(scaled).image


def to_png_bytes(image) -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(image * 255.0 + 0.5, 0, 255).astype("uint8")).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def input_images() -> dict[str, bytes]:
    """example_workflows/input/: every example scene at 64 px (what DragonDemoModel renders) and at 512 px."""
    return {input_image_name(scene, size): to_png_bytes(render(scene, size))
            for scene in SCENES for size in (DEMO_SIZE, SD_SIZE)}

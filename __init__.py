"""DragonDiffusion for ComfyUI: drag-style image editing on diffusion models, no fine-tuning.

ComfyUI imports this file from ``custom_nodes/<folder>/``. It registers the node classes of ``nodes/`` and the
front-end extension in ``web/``. Nothing heavy happens at import time, and a failure is logged in one line
instead of taking ComfyUI's start-up down.
"""
import logging

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
WEB_DIRECTORY = "./web"

try:
    from .nodes import NODE_CLASS_MAPPINGS as _classes, NODE_DISPLAY_NAME_MAPPINGS as _names

    NODE_CLASS_MAPPINGS.update(_classes)
    NODE_DISPLAY_NAME_MAPPINGS.update(_names)
except Exception as exc:  # never break ComfyUI's start-up because of this pack
    logging.getLogger(__name__).error("DragonDiffusion nodes not loaded: %s: %s", type(exc).__name__, exc)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]

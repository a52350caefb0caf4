"""The ComfyUI layer: one module per family of nodes, each exporting NODE_CLASS_MAPPINGS and
NODE_DISPLAY_NAME_MAPPINGS. A family that fails to import is skipped with one log line."""
import importlib
import logging

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}

_FAMILIES = ("inversion_nodes", "edit_nodes", "sampling_nodes", "demo_nodes")

for _family in _FAMILIES:
    try:
        _module = importlib.import_module(f".{_family}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{_family}":
            continue  # family not present in this checkout
        logging.getLogger(__name__).error("DragonDiffusion: %s not loaded: %s", _family, exc)
        continue
    except Exception as exc:
        logging.getLogger(__name__).error("DragonDiffusion: %s not loaded: %s: %s", _family, type(exc).__name__, exc)
        continue
    NODE_CLASS_MAPPINGS.update(getattr(_module, "NODE_CLASS_MAPPINGS", {}))
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_module, "NODE_DISPLAY_NAME_MAPPINGS", {}))

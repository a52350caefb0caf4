"""What makes two MODELs the same for a memory bank: base weights, weight patches, object patches, options.

A bank holds one model's inversion (latents, attention, features); sampling it with a model whose UNet output
differs (a LoRA added or re-weighted, a model_sampling patch such as zsnr, an attention patch) silently mixes two
models. The tag covers what ComfyUI's ModelPatcher may change about the UNet's output; it is computed on the
MODEL given to the node, before the pack's own patches. It compares identities, not weight contents: the same
MODEL output (and its clones) matches, while two separate loaders of the same LoRA do not.
"""
from __future__ import annotations

import hashlib
from typing import Any

from ..dragon_core.errors import DragonInputError

_PARTS = ("weights", "objects", "options")
_WHAT = {"base": "another checkpoint", "weights": "other weight patches (a LoRA added, removed or re-weighted)",
         "objects": "other object patches (e.g. ModelSamplingDiscrete / zsnr, a replaced module)",
         "options": "other model options (attention patches, wrappers, CFG functions)"}


def _token(value: Any, out: list, depth: int = 0) -> None:
    """A stable, readable walk of a patch structure: numbers and strings by value, containers by content, every
    other object (tensors, functions, patch objects) by identity. Deep-copied options keep their functions
    (Python copies functions by reference); objects inside them are compared by type."""
    if depth > 12:
        out.append("...")
    elif value is None or isinstance(value, (bool, int, float, str)):
        out.append(repr(value))
    elif isinstance(value, dict):
        out.append("{")
        for key in sorted(value, key=repr):
            out.append(repr(key))
            _token(value[key], out, depth + 1)
        out.append("}")
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        out.append(f"{type(value).__name__}[")
        for item in items:
            _token(item, out, depth + 1)
        out.append("]")
    elif callable(value) and hasattr(value, "__code__"):  # plain functions and closures: by identity
        out.append(f"fn:{value.__qualname__}@{id(value):x}")
    elif hasattr(value, "__func__"):  # bound methods: deep copies rebind them, so the function and the class
        out.append(f"method:{value.__func__.__qualname__}:{type(value.__self__).__qualname__}")
    else:
        out.append(type(value).__qualname__)


def _digest(value: Any) -> str:
    out: list = []
    _token(value, out)
    return hashlib.sha256("\x1f".join(out).encode()).hexdigest()[:12]


def _weight_patches(model) -> list:
    """Per patched key: (strength_patch, id of the patch data, strength_model, offset, function) of each entry.
    Clones share the entries, so identities are stable across model.clone()."""
    rows = []
    for key in sorted(getattr(model, "patches", {}) or {}):
        for entry in model.patches[key]:
            strength_patch, patch, strength_model = entry[0], entry[1], entry[2]
            rest = [repr(e) if isinstance(e, (int, float, str, type(None), tuple)) else f"{type(e).__name__}@{id(e):x}"
                    for e in entry[3:]]
            rows.append((key, float(strength_patch), f"{id(patch):x}", float(strength_model), *rest))
    return rows


def model_tag(model) -> str:
    """``Arch@base;weights=..;objects=..;options=..``: the base module's identity and digests of the patches."""
    objects = {k: f"{type(v).__qualname__}@{id(v):x}" for k, v in (getattr(model, "object_patches", {}) or {}).items()}
    parts = {
        "weights": _digest([_weight_patches(model), sorted(getattr(model, "weight_wrapper_patches", {}) or {})]),
        "objects": _digest(objects),
        "options": _digest(getattr(model, "model_options", {}) or {}),
    }
    return f"{type(model.model).__name__}@{id(model.model):x};" + ";".join(f"{k}={parts[k]}" for k in _PARTS)


def _split(tag: str) -> dict:
    base, _, rest = tag.partition(";")
    parts = dict(p.split("=", 1) for p in rest.split(";") if "=" in p)
    return {"base": base, **parts}


def check_same_model(bank_tag: str, model, field_name: str, image_input: str) -> None:
    """Refuse a bank inverted with another MODEL, naming what differs."""
    tag = model_tag(model)
    if bank_tag == tag:
        return
    mine, theirs = _split(tag), _split(bank_tag)
    differs = [_WHAT[k] for k in ("base", *_PARTS) if mine.get(k) != theirs.get(k)]
    differs = differs[:1] if mine["base"] != theirs["base"] else differs  # other weights: the rest is moot
    raise DragonInputError(field_name, f"was inverted with a different MODEL than the model input here: "
                           f"{'; '.join(differs)}. Connect the same MODEL output to DragonDDIMInversion and to this "
                           f"node, or invert {image_input} again with this MODEL")

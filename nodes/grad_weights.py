"""Weights that autograd can save: nodes run under inference mode, the energy gradient needs backward.

ComfyUI runs every node under ``torch.inference_mode()``, so the loaded UNet's weights (and those ComfyUI
re-patches for a LoRA, and a ControlNet's) are inference tensors, which autograd refuses to save for backward.
The energy gradient needs a backward through the feature pass. ``inference_tensors_as_normal`` makes that
possible without copying a single weight and without touching the model: while it is active (the feature pass
and its backward only), every inference tensor that a torch operation receives is handed over as a *normal*
tensor on the same storage. Autograd then saves that alias; the weights' memory is the model's own.

Why not the other routes:
- a copy of the weights swapped into the modules (the previous route) doubled the UNet in memory and changed
  parameters of the shared MODEL for the length of a pass, behind ComfyUI's model management;
- ComfyUI's weight wrappers (``ModelPatcher.add_weight_wrapper``, as its training node uses them) force
  ``comfy.ops.cast_bias_weight`` to copy each layer's weight in every pass of the patched model, and the copies
  made in the feature pass are saved for backward until it ends: most of the UNet again, per guided step.
The aliases need no loading and no patching, so lowvram / partial loading and offloading work unchanged: a layer
that ComfyUI casts per layer onto the compute device is already a normal tensor and is saved as it comes (held
until the pass's backward, like any activation: under lowvram the grad pass keeps the casts of the layers it ran).

Only non-mutating operations get aliases. An in-place operation on an inference tensor keeps failing as torch
makes it fail outside inference mode, instead of writing into the shared model's weights through an alias.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

_INPLACE_DUNDERS = frozenset({"__setitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__",
                              "__imod__", "__ipow__", "__iand__", "__ior__", "__ixor__", "__ilshift__",
                              "__irshift__", "__imatmul__"})


def _mutates(func, kwargs: dict) -> bool:
    name = getattr(func, "__name__", "")
    return ("out" in kwargs or name in _INPLACE_DUNDERS
            or (name.endswith("_") and not name.endswith("__")))


def normal_alias(t: torch.Tensor) -> torch.Tensor:
    """A normal (not inference) tensor viewing exactly the storage, offset, size and strides of ``t``: no copy."""
    alias = torch.empty(0, dtype=t.dtype, device=t.device)
    with torch.no_grad():
        alias.set_(t.untyped_storage(), t.storage_offset(), t.size(), t.stride())
    return alias


class _AliasInferenceTensors(TorchFunctionMode):
    """Torch function mode: inference tensors among an operation's arguments become normal aliases."""

    def __init__(self):
        super().__init__()
        # id -> (the inference tensor, its alias); holding the tensor keeps its id from being reused
        self._aliases: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.aliased_bytes = 0

    def _alias(self, t):
        if not isinstance(t, torch.Tensor) or not t.is_inference():
            return t
        cached = self._aliases.get(id(t))
        if cached is None or cached[0] is not t:
            cached = (t, normal_alias(t))
            self._aliases[id(t)] = cached
            self.aliased_bytes += t.numel() * t.element_size()
        return cached[1]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not _mutates(func, kwargs):
            args, kwargs = tree_map(self._alias, args), tree_map(self._alias, kwargs)
        return func(*args, **kwargs)

    def release(self) -> None:
        self._aliases.clear()


@contextmanager
def inference_tensors_as_normal() -> Iterator[_AliasInferenceTensors]:
    """Within the block, operations see inference tensors as normal aliases (see the module's docstring).

    Enter it around the forward pass *and* its backward: the aliases are dropped when the block ends (autograd's
    graph keeps the ones it saved alive as long as it lives)."""
    mode = _AliasInferenceTensors()
    try:
        with torch.inference_mode(False), mode:
            yield mode
    finally:
        mode.release()


def normal_tensor(t: torch.Tensor) -> torch.Tensor:
    """A normal tensor with ``t``'s values: ``t`` itself, or a clone when it is an inference tensor (small inputs
    such as latents, which the gradient is taken with respect to)."""
    return t.clone() if t.is_inference() else t

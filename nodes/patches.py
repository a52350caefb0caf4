"""The ModelPatcher patches of an edit: bank attention, feature capture, and which pass is running.

Which pass is running (inversion recording, edited sampling, feature extraction, plain) travels in
``transformer_options["dragon_pass"]``, so the same patches, registered on a ``model.clone()``, serve every pass
without global state.
"""
from __future__ import annotations

from typing import Optional

import torch

import comfy.model_patcher

from ..dragon_core.memory_bank import MemoryBank

PASS_KEY = "dragon_pass"
RECORD, EDIT, FEATURES, PLAIN = "record", "edit", "features", "plain"

class FeaturesReady(Exception):
    """Stops a feature pass once the last needed decoder block has been reached."""


class _PatchBase:
    def __init__(self, run):
        self.run = run

    def __deepcopy__(self, memo):  # ModelPatcher.clone deep-copies model_options; the run is shared state
        return self


class BankAttentionPatch(_PatchBase):
    """attn1_patch: records the inversion branch's tokens (RECORD) or feeds them to the edit (EDIT)."""

    def __call__(self, n, context, value, extra_options):
        kind = extra_options.get(PASS_KEY)
        block = extra_options.get("block")
        if kind not in (RECORD, EDIT) or block is None or block[0] != "output":
            return n, context, value
        layer = f"{block[1]}.{extra_options.get('block_index', 0)}"
        if kind == RECORD:
            self.run.record_attention(n, layer, extra_options)
            return n, context, value
        injected = self.run.attention_context(n, layer, extra_options)
        if injected is None:
            return n, context, value
        return n, injected, injected


class FeatureCapturePatch(_PatchBase):
    """output_block_patch: takes the decoder features (RECORD, FEATURES); a FEATURES pass stops there."""

    def __call__(self, h, hsp, transformer_options):
        kind = transformer_options.get(PASS_KEY)
        if kind not in (RECORD, FEATURES):
            return h, hsp
        block = transformer_options["block"][1]
        blocks = self.run.layout.feature_blocks
        if block in blocks:
            self.run.feature_sink.append(h)
            if block == blocks[-1]:
                if kind == FEATURES:
                    raise FeaturesReady()
                self.run.commit_features(transformer_options)
        return h, hsp


class SkipCopyPatch(_PatchBase):
    """input_block_patch_after_skip: in a FEATURES pass with grad, the next encoder block gets a copy of h.

    ComfyUI's UNet adds ControlNet residuals to the skip tensors in place when the decoder pops them
    (openaimodel.apply_control: ``hsp += ctrl``). Without the copy, the next encoder block has saved that same
    tensor for backward and autograd fails with "modified by an inplace operation"; with it, the tensor kept in
    the skip list is saved by nobody. Costs one copy of each encoder output, in the grad pass only."""

    def __call__(self, h, transformer_options):
        if transformer_options.get(PASS_KEY) == FEATURES and h.requires_grad:
            return h.clone()
        return h


def with_pass(model_options: dict, kind: str) -> dict:
    options = comfy.model_patcher.create_model_options_clone(model_options)
    options.setdefault("transformer_options", {})[PASS_KEY] = kind
    return options


def step_of(bank: MemoryBank, options: dict) -> Optional[int]:
    sigmas = options.get("sigmas")
    return None if sigmas is None else bank.step_index(float(sigmas.flatten()[0]))


def cond_rows(x: torch.Tensor, options: dict) -> torch.Tensor:
    """The rows of a batched UNet input that belong to the positive (cond) chunk."""
    chunks = options.get("cond_or_uncond") or [0]
    per = x.shape[0] // len(chunks)
    k = chunks.index(0) if 0 in chunks else 0
    return x[k * per:(k + 1) * per][:1]


def patched_clone(model, run, kind: str):
    patched = model.clone()
    patched.set_model_attn1_patch(BankAttentionPatch(run))
    patched.set_model_output_block_patch(FeatureCapturePatch(run))
    patched.set_model_input_block_patch_after_skip(SkipCopyPatch(run))
    patched.model_options.setdefault("transformer_options", {})[PASS_KEY] = kind
    return patched

"""The state of one run (an inversion recording its bank, or an edit) that the patches read and fill."""
from __future__ import annotations

from typing import Optional

from ..dragon_core.attention import InjectionMode, self_attention_context, token_grid, token_mask
from ..dragon_core.geometry import EditGeometry
from ..dragon_core.guidance import GuidanceConfig, GuidanceStats
from ..dragon_core.memory_bank import MemoryBank
from .patches import cond_rows, step_of
from .unet_layout import UNetLayout


class RecordRun:
    """State of one inversion: fills a MemoryBank while the UNet runs."""

    def __init__(self, bank: MemoryBank, layout: UNetLayout):
        self.bank = bank
        self.layout = layout
        self.feature_sink: list = []

    def record_attention(self, n, layer, options):
        step = step_of(self.bank, options)
        if step is not None:
            self.bank.record_attention(step, layer, cond_rows(n, options))

    def commit_features(self, options):
        step = step_of(self.bank, options)
        feats, self.feature_sink = self.feature_sink, []
        if step is not None:
            self.bank.record_features(step, [cond_rows(f, options) for f in feats])


class EditRun:
    """State of one guided edit: the bank, the geometry on this latent, the guidance, and counters."""

    def __init__(self, bank: MemoryBank, reference_bank: Optional[MemoryBank], geometry: EditGeometry,
                 guidance: GuidanceConfig, layout: UNetLayout):
        self.bank = bank
        self.reference_bank = reference_bank
        self.geometry = geometry
        self.guidance = guidance
        self.layout = layout
        self.feature_sink: list = []
        self.stats = GuidanceStats()
        self._token_masks: dict = {}
        # Inversion-branch passes recomputed at edit time when a bank did not record a step (lean banks):
        # one-step scratch banks keyed by id(bank), and the one being filled by the running RECORD pass.
        self.scratch: dict[int, MemoryBank] = {}
        self.recording: Optional[MemoryBank] = None

    def attention_for(self, bank: MemoryBank, step: int, layer: str):
        stored = bank.attention_at(step, layer)
        if stored is not None:
            return stored
        scratch = self.scratch.get(id(bank))
        return scratch.attention_at(step, layer) if scratch is not None else None

    def record_attention(self, n, layer, options):
        if self.recording is not None:
            step = step_of(self.recording, options)
            if step is not None:
                self.recording.record_attention(step, layer, cond_rows(n, options))

    def attention_context(self, n, layer, options):
        step = step_of(self.bank, options)
        if step is None or step not in self.guidance.attention_steps:
            return None
        own = self.attention_for(self.bank, step, layer)
        if own is None or own.shape[1] != n.shape[1]:
            return None
        mode = self.guidance.attention_mode
        if mode is not InjectionMode.COMPOSE:
            return self_attention_context(n, mode, own)
        ref = self.attention_for(self.reference_bank, step, layer) if self.reference_bank is not None else None
        if ref is None:
            return None
        keep_base, keep_ref = self._compose_masks(n.shape[1], ref.shape[1])
        if not keep_ref.any():
            return None
        return self_attention_context(n, mode, own, ref, keep_base, keep_ref)

    def _compose_masks(self, n_base: int, n_ref: int):
        key = (n_base, n_ref)
        if key not in self._token_masks:
            g = self.geometry
            base_hw = token_grid(g.latent_hw, n_base)
            ref_latent = self.reference_bank.latent_shape[-2:]
            ref_hw = token_grid(tuple(ref_latent), n_ref)
            self._token_masks[key] = (token_mask(g.keep_mask, base_hw), token_mask(g.reference_mask, ref_hw))
        return self._token_masks[key]

    def commit_features(self, options):
        feats, self.feature_sink = self.feature_sink, []
        if self.recording is not None:
            step = step_of(self.recording, options)
            if step is not None:
                self.recording.record_features(step, [cond_rows(f, options) for f in feats])

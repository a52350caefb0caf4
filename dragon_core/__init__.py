"""DragonDiffusion engine: plain PyTorch (+ einops), no ComfyUI. The algorithm: docs/SPEC.md; the layers and
what lies beyond the papers: docs/ARCHITECTURE.md.

Modules, one idea each: schedule (DDIM in sigma space), inversion, memory_bank, grids (image size, pixels to grid
cells), placement (a mask scaled and moved onto a grid), edits (typed, validated edits), editor_json (the web
editor's points, boxes and strokes), geometry (edits on the feature/latent grids), energy, attention (cross-branch
policies), guidance (presets, defaults, schedules, energy gradient), start_latent (copy-paste init), background
and object_lock (beyond the paper: regions that follow the inversion), step (one edit step's x0: blend, CFG,
energy gradient, fold), sampling (the guided loop). A host gives the core callables: the CFG x0 prediction, and
the decoder features of a cond-only UNet pass, differentiable with respect to the latent.
"""
from .errors import DragonInputError

__all__ = ["DragonInputError"]

"""Cross-branch self-attention (docs/SPEC.md §5) as pure functions.

The bank stores, for each decoder self-attention layer and step, the layer's normalised input ``n`` of the
inversion branch (the tensor the K and V projections read). Feeding a different "context" to those projections
is therefore the same as replacing or extending K and V, at half the memory of storing K and V, and it keeps
any LoRA on the projections in effect.
"""
from __future__ import annotations

import math
from enum import Enum
from typing import Optional

import torch
from torch import Tensor

from .grids import mask_to_grid


class InjectionMode(str, Enum):
    REPLACE = "replace"   # K, V from the reference only (move, resize)
    CONCAT = "concat"     # [own ; reference] (drag)
    COMPOSE = "compose"   # base tokens outside the base mask + reference tokens inside the reference mask


def token_grid(latent_hw: tuple[int, int], n_tokens: int) -> tuple[int, int]:
    """(rows, cols) of a layer with ``n_tokens`` tokens in a UNet whose input is ``latent_hw``.

    Each UNet level halves the size with a stride-2 convolution (rounding up)."""
    h, w = latent_hw
    for _ in range(8):
        if h * w == n_tokens:
            return h, w
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    raise ValueError(f"{n_tokens} tokens do not match any level of a {latent_hw[1]}x{latent_hw[0]} latent")


def self_attention_context(n: Tensor, mode: InjectionMode, bank: Tensor, bank_ref: Optional[Tensor] = None,
                           keep_base: Optional[Tensor] = None, keep_ref: Optional[Tensor] = None) -> Tensor:
    """The context that the K and V projections of a self-attention layer should read.

    n: [B, N, C] the generation branch's own normalised tokens. bank: [1, N, C] the inversion branch's tokens
    of the same layer and step. For COMPOSE, bank is the base image's and bank_ref the reference image's, and
    keep_base / keep_ref are flat bool token masks selecting which of their tokens stay.
    """
    batch = n.shape[0]
    bank = bank.to(device=n.device, dtype=n.dtype)
    if mode is InjectionMode.REPLACE:
        return bank.expand(batch, -1, -1)
    if mode is InjectionMode.CONCAT:
        return torch.cat([n, bank.expand(batch, -1, -1)], dim=1)
    if mode is InjectionMode.COMPOSE:
        if bank_ref is None or keep_base is None or keep_ref is None:
            raise ValueError("COMPOSE needs the reference bank and both token masks")
        bank_ref = bank_ref.to(device=n.device, dtype=n.dtype)
        parts = torch.cat([bank[:, keep_base.to(bank.device)], bank_ref[:, keep_ref.to(bank.device)]], dim=1)
        return parts.expand(batch, -1, -1)
    raise ValueError(f"unknown injection mode {mode!r}")


def token_mask(grid_mask: Tensor, token_hw: tuple[int, int]) -> Tensor:
    """A bool grid mask downsampled to a layer's token grid, flattened in token order (row-major)."""
    return mask_to_grid(grid_mask, token_hw).flatten()


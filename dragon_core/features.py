"""The feature-extraction contract the host implements (docs/SPEC.md §2).

The core never runs a UNet: a host gives it callables. ``FeatureExtractor(x, sigma)`` returns the decoder
feature maps (semantic first, then geometric; [B, C, h, w] each) of a cond-only UNet pass on the sigma-space
latent x at sigma, without bank attention, differentiable with respect to x. It may stop the UNet after the
last block it needs.
"""
from __future__ import annotations

from typing import Protocol

from torch import Tensor


class FeatureExtractor(Protocol):
    def __call__(self, x: Tensor, sigma: Tensor) -> list[Tensor]: ...


def feature_blocks(num_levels: int, blocks_per_level: int) -> tuple[int, int]:
    """Output-block indices whose *input* h is the feature we want: the starts of the last two decoder levels.

    h at the start of output block b is the output of block b - 1: for SD-1.x/2.x (4 levels, 3 output blocks
    each) blocks 6 and 9 see the outputs of blocks 5 and 8 (diffusers up_blocks[1] and [2]); for SDXL
    (3 levels) blocks 3 and 6. A 2-level UNet gets the middle block's output and its first level's.
    """
    if num_levels < 2:
        raise ValueError("a UNet needs at least 2 levels for multi-scale features")
    return (num_levels - 2) * blocks_per_level, (num_levels - 1) * blocks_per_level

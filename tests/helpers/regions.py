"""How much an edit's result differs from its input inside the edit's regions and away from them."""
from __future__ import annotations

import numpy as np


def difference_inside_outside(result: np.ndarray, source: np.ndarray, regions, margin: int) -> tuple[float, float]:
    """Mean |result - source| over the (x, y, w, h) regions, and over the pixels more than ``margin`` px from
    every region. Images are float [H, W, 3]."""
    h, w = source.shape[:2]
    inside = np.zeros((h, w), bool)
    near = np.zeros((h, w), bool)
    for x, y, bw, bh in regions:
        inside[max(y, 0):y + bh, max(x, 0):x + bw] = True
        near[max(y - margin, 0):y + bh + margin, max(x - margin, 0):x + bw + margin] = True
    diff = np.abs(result - source).mean(axis=2)
    return float(diff[inside].mean()), float(diff[~near].mean())

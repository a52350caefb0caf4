"""Anti-aliased rasterisation by supersampling, for both scene families (synthetic.py, scenes.py).

The pixels a shape may touch, their sub-pixel sample points, and the mean of the samples per pixel.

Pixel (i, j) covers [j, j+1) x [i, i+1); its SUPERSAMPLE x SUPERSAMPLE samples sit at the centres of its cells.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

SUPERSAMPLE = 4  # per axis
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, exclusive end


def sample_points(center: tuple[float, float], radius: float, height: int,
                  width: int) -> Optional[tuple[Box, np.ndarray, np.ndarray]]:
    """The pixels within ``radius`` of ``center`` (a square, clipped to the image) and the (x, y) coordinates of
    their samples, each [rows * SUPERSAMPLE, columns * SUPERSAMPLE]; None when the square misses the image."""
    x0, x1 = max(int(math.floor(center[0] - radius)), 0), min(int(math.ceil(center[0] + radius)), width)
    y0, y1 = max(int(math.floor(center[1] - radius)), 0), min(int(math.ceil(center[1] + radius)), height)
    if x0 >= x1 or y0 >= y1:
        return None
    offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    xs = (np.arange(x0, x1)[:, None] + offsets[None, :]).reshape(-1)
    ys = (np.arange(y0, y1)[:, None] + offsets[None, :]).reshape(-1)
    px, py = np.meshgrid(xs, ys)
    return (x0, y0, x1, y1), px, py


def pixel_means(samples: np.ndarray, box: Box) -> np.ndarray:
    """Per pixel of ``box``, the mean of its samples (``samples`` as laid out by ``sample_points``, with any
    trailing channel axes)."""
    x0, y0, x1, y1 = box
    grid = samples.reshape(y1 - y0, SUPERSAMPLE, x1 - x0, SUPERSAMPLE, *samples.shape[2:])
    return grid.mean(axis=(1, 3))

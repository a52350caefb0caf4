"""The structured scenes' backgrounds: two-colour textures, how one is rendered and how one is picked at random.

Textures: stripes, checks, noise, wood, fabric, gradient, between two muted colours.

A background with structure is what lets the benchmarks tell a true edit from a smooth fill of the place an
object left (demo/scenes.py). numpy only; a pure function of its arguments (seeds included).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .colours import Color, TwoColourFill, hsv

TEXTURES: tuple[str, ...] = ("stripes", "checks", "noise", "wood", "fabric", "gradient")


@dataclass(frozen=True)
class Texture(TwoColourFill):
    """A background: ``kind`` in TEXTURES between two muted colours; ``scale`` is the pattern's period in
    pixels, ``angle`` its orientation, ``seed`` its randomness (noise, wood rings, fabric threads)."""

    KINDS = TEXTURES
    WHAT = "texture"

    scale: float = 8.0
    angle: float = 0.0
    seed: int = 0


def _value_noise(seed: int, cells: int, height: int, width: int) -> np.ndarray:
    """Smooth value noise in [0, 1] with ``cells`` features per side (bilinear in a cosine-eased grid)."""
    cells = max(int(cells), 1)
    grid = np.random.default_rng(seed).random((cells + 2, cells + 2))
    gy = (np.arange(height) + 0.5) / height * cells
    gx = (np.arange(width) + 0.5) / width * cells
    iy, ix = np.floor(gy).astype(int), np.floor(gx).astype(int)
    fy, fx = gy - iy, gx - ix
    fy, fx = (1 - np.cos(np.pi * fy)) / 2, (1 - np.cos(np.pi * fx)) / 2
    a, b = grid[np.ix_(iy, ix)], grid[np.ix_(iy, ix + 1)]
    c, d = grid[np.ix_(iy + 1, ix)], grid[np.ix_(iy + 1, ix + 1)]
    top = a + (b - a) * fx[None, :]
    bottom = c + (d - c) * fx[None, :]
    return top + (bottom - top) * fy[:, None]


def render_texture(texture: Texture, height: int, width: int) -> np.ndarray:
    """float32 [height, width, 3] in [0, 1]."""
    y, x = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    c, s = math.cos(texture.angle), math.sin(texture.angle)
    u, v = x * c + y * s, -x * s + y * c
    period = max(texture.scale, 2.0)
    if texture.kind == "stripes":
        t = 0.5 + 0.5 * np.tanh(3 * np.sin(2 * np.pi * u / period))
    elif texture.kind == "checks":
        t = 0.5 + 0.5 * np.tanh(3 * np.sin(np.pi * u / period) * np.sin(np.pi * v / period) * 2)
    elif texture.kind == "noise":
        coarse = _value_noise(texture.seed, max(2, round(width / (2 * period))), height, width)
        fine = _value_noise(texture.seed + 1, max(4, round(width / period) * 2), height, width)
        t = 0.65 * coarse + 0.35 * fine
    elif texture.kind == "wood":
        # rings about a centre far outside the image, their radius wobbled by noise; fine grain on top
        wobble = _value_noise(texture.seed, 3, height, width)
        rng = np.random.default_rng(texture.seed)
        ox, oy = rng.uniform(-2, -1) * width, rng.uniform(-0.5, 1.5) * height
        r = np.hypot(x - ox, (y - oy) * 0.35) + 6 * wobble
        rings = 0.5 + 0.5 * np.sin(2 * np.pi * r / period)
        grain = _value_noise(texture.seed + 2, width // 2, height, width)
        t = 0.8 * rings ** 2 + 0.2 * grain
    elif texture.kind == "fabric":
        # a weave: two thread directions alternating over and under, with irregular thread brightness
        rng = np.random.default_rng(texture.seed)
        pitch = max(period / 2, 2.0)
        iu, iv = np.floor(u / pitch).astype(int), np.floor(v / pitch).astype(int)
        fu, fv = u / pitch - iu, v / pitch - iv
        over = (iu + iv) % 2 == 0
        thread_u = rng.uniform(0.6, 1.0, 4096)[iv % 4096]
        thread_v = rng.uniform(0.6, 1.0, 4096)[iu % 4096]
        shade_u = np.sin(np.pi * fv) ** 0.5 * thread_u
        shade_v = np.sin(np.pi * fu) ** 0.5 * thread_v
        t = np.where(over, shade_u, shade_v)
    else:  # gradient
        t = (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
    a, b = np.asarray(texture.color_a, np.float32), np.asarray(texture.color_b, np.float32)
    t = np.clip(t, 0.0, 1.0)[..., None].astype(np.float32)
    return a * (1 - t) + b * t


def _muted(rng: np.random.Generator, hue: float) -> Color:
    return hsv(hue, rng.uniform(0.05, 0.35), rng.uniform(0.25, 0.9))


def random_texture(rng: np.random.Generator) -> Texture:
    kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
    hue = rng.random()
    a = _muted(rng, hue)
    for _ in range(20):  # a visible contrast, so the vacated place has structure to get right
        b = _muted(rng, hue + rng.uniform(-0.12, 0.12))
        if np.abs(np.subtract(a, b)).sum() > 0.3:
            break
    return Texture(kind, a, b, scale=float(rng.uniform(5, 14)), angle=float(rng.uniform(0, math.pi)),
                   seed=int(rng.integers(2**31)))

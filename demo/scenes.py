"""Structured scenes: a textured background and 2-4 objects with overlap and soft shadows, rendered or drawn.

The background comes from scene_backgrounds.py, the objects (emoji with inner detail, sometimes a patterned bar)
from scene_objects.py; a scene is rendered here, or drawn from a seed. The true result of each edit on such a
scene is scene_edits.py's.

Why a second scene module: ``synthetic.py``'s flat shapes on smooth backgrounds cannot tell a diffusion edit
from a smooth fill (a smudge over a smooth gradient scores as well as the true background), nor a patch copy
from a model that understands the object. Here the background behind an object has structure that only the
truth reproduces, objects have inner detail that a blurry copy loses, and a deformation family (a patterned bar
stretched by one handle, a bar bent by one handle) has a truth that no patch copy can produce.

numpy + Pillow (+ scipy for the shadows) only, no torch, no ComfyUI. Everything is a pure function of its
arguments (seeds included). Coordinates: pixel (i, j) covers [j, j+1) x [i, i+1), x right, y down.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .scene_backgrounds import Texture, random_texture, render_texture
from .scene_objects import Thing, random_bar, random_emoji, render_thing

DEFAULT_SIZE = 64
# The demo model trains on seeds below this; benchmarks draw from seeds at or above it.
HELDOUT_SEED_START = 1_000_000
SHADOW_OFFSET = (1.5, 2.0)   # px, light from the upper left
SHADOW_SIGMA = 1.2           # px, soft edge
SHADOW_STRENGTH = 0.4        # darkening under a fully opaque object


@dataclass(frozen=True)
class StructuredScene:
    background: Texture
    things: tuple[Thing, ...]
    size: int = DEFAULT_SIZE
    shadows: bool = True


@dataclass
class Rendered:
    """``image`` float32 [H, W, 3] in [0, 1]; ``coverage`` float32 [n, H, W] each object's own anti-aliased
    coverage; ``masks`` bool [n, H, W] (coverage >= 0.5); ``visible`` bool [n, H, W] (minus later objects)."""

    image: np.ndarray = field(repr=False)
    coverage: np.ndarray = field(repr=False)
    masks: np.ndarray = field(repr=False)
    visible: np.ndarray = field(repr=False)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(a, sigma, mode="constant")


def _shift(a: np.ndarray, dx: float, dy: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.shift(a, (dy, dx), order=1, mode="constant")


def render(scene: StructuredScene) -> Rendered:
    """Background, then each object in order with its soft shadow on what lies beneath it."""
    n, side = len(scene.things), scene.size
    image = render_texture(scene.background, side, side)
    coverage = np.zeros((n, side, side), np.float32)
    for k, thing in enumerate(scene.things):
        rgba = render_thing(thing, side, side)
        alpha = rgba[..., 3]
        if scene.shadows:
            shadow = np.clip(_blur(_shift(alpha, *SHADOW_OFFSET), SHADOW_SIGMA), 0, 1)
            image = image * (1 - SHADOW_STRENGTH * shadow[..., None])
        image = image * (1 - alpha[..., None]) + rgba[..., :3]
        coverage[k] = alpha
    masks = coverage >= 0.5
    visible = masks.copy()
    for k in range(n):
        for later in range(k + 1, n):
            visible[k] &= ~masks[later]
    return Rendered(np.clip(image, 0, 1).astype(np.float32), coverage, masks, visible)


def random_scene(seed: int, size: int = DEFAULT_SIZE, n_things: Optional[int] = None,
                 overlap: float = 0.35, with_bar: Optional[bool] = None) -> StructuredScene:
    """2-4 objects (emoji, sometimes one bar) fully inside the image; two objects may overlap by up to
    ``overlap`` of the sum of their radii."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5)) if n_things is None else n_things
    bar = bool(rng.random() < 0.3) if with_bar is None else with_bar
    scale = size / DEFAULT_SIZE
    things: list[Thing] = []
    for k in range(n):
        for _attempt in range(200):
            if bar and k == 0:
                candidate = random_bar(rng, (0.0, 0.0), float(rng.uniform(22, 34) * scale))
            else:
                candidate = random_emoji(rng, (0.0, 0.0), float(rng.uniform(13, 22) * scale))
            r = candidate.reach()
            if 2 * r + 2 > size:
                continue
            center = (float(rng.uniform(r + 1, size - r - 1)), float(rng.uniform(r + 1, size - r - 1)))
            ok = all(math.hypot(center[0] - o.center[0], center[1] - o.center[1])
                     >= (1 - overlap) * (0.75 * r + 0.75 * o.reach()) for o in things)
            if ok:
                things.append(dataclasses.replace(candidate, center=center))
                break
    return StructuredScene(random_texture(rng), tuple(things), size)


def render_batch(seeds, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Images of ``random_scene(seed, size)``, float32 [N, size, size, 3] (the demo model's training data)."""
    return np.stack([render(random_scene(int(s), size)).image for s in seeds])

"""Deterministic synthetic scenes: a few flat-coloured objects on a smooth, muted background.

These scenes are the training data of the embedded demo model and the test material of the edit benchmark.
numpy only (no torch, no ComfyUI), so the benchmark can render and measure scenes without a host.

A scene is a ``Scene`` (background + list of ``SceneObject``); ``render_scene`` turns any such description into
an image plus per-object metadata, so "the same scene with the object moved" is ``render_scene`` of a copy
whose object has another centre (``dataclasses.replace``). ``random_scene(seed)`` draws a scene; the demo model
was trained on seeds below ``HELDOUT_SEED_START`` only, so benchmarks should draw from seeds at or above it.

Colour design: objects are saturated (HSV saturation >= 0.65, value >= 0.6), backgrounds are muted
(saturation <= 0.3), so an object can be found again by colour distance.
Coordinates are image pixels, x right, y down, pixel (i, j) covers [j, j+1) x [i, i+1), its centre is (j+0.5, i+0.5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import raster
from .colours import Color, TwoColourFill, hsv

SHAPES: tuple[str, ...] = ("disc", "square", "triangle", "star", "hexagon", "cross")
BACKGROUND_KINDS: tuple[str, ...] = ("gradient", "radial", "stripes", "noise")
DEFAULT_SIZE = 64
HELDOUT_SEED_START = 1_000_000
OBJECT_SIZE_RANGE = (10.0, 24.0)



@dataclass(frozen=True)
class SceneObject:
    """One flat-coloured object. ``size`` is the diameter of its circumscribed circle in pixels."""

    shape: str
    color: Color
    center: tuple[float, float]
    size: float
    rotation: float = 0.0  # radians, counter-clockwise on screen

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {SHAPES}")
        if not self.size > 0:
            raise ValueError(f"size must be > 0, got {self.size}")


@dataclass(frozen=True)
class Background(TwoColourFill):
    """A smooth background between two colours. ``angle`` orients gradients/stripes, ``frequency`` is the number
    of stripe periods across the image (stripes) or the noise grid cells per side (noise), ``seed`` fixes the
    noise pattern, ``center`` is the radial gradient's centre as a fraction of the image side."""

    KINDS = BACKGROUND_KINDS
    WHAT = "background"

    angle: float = 0.0
    frequency: float = 2.0
    seed: int = 0
    center: tuple[float, float] = (0.5, 0.5)


@dataclass(frozen=True)
class Scene:
    background: Background
    objects: tuple[SceneObject, ...]
    size: int = DEFAULT_SIZE


@dataclass
class ObjectInfo:
    """Metadata of a rendered object. ``bbox`` is (x0, y0, x1, y1) in pixels, exclusive end, of ``mask``;
    ``mask`` is the object's own silhouette (coverage >= 0.5), ``visible_mask`` the part not covered by
    objects drawn later."""

    shape: str
    color: Color
    center: tuple[float, float]
    size: float
    bbox: tuple[int, int, int, int]
    mask: np.ndarray = field(repr=False)
    visible_mask: np.ndarray = field(repr=False)


@dataclass
class RenderedScene:
    """``image`` is float32 [H, W, 3] in [0, 1] (ComfyUI IMAGE layout without the batch axis)."""

    image: np.ndarray = field(repr=False)
    objects: list[ObjectInfo]
    scene: Scene


def _polygon_vertices(shape: str, radius: float, rotation: float) -> np.ndarray:
    """Vertices (n, 2) relative to the centre, y down, for the polygonal shapes."""
    if shape == "square":
        angles = np.pi / 4 + np.arange(4) * np.pi / 2
        radii = np.full(4, radius)
    elif shape == "triangle":
        angles = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        radii = np.full(3, radius)
    elif shape == "hexagon":
        angles = np.arange(6) * np.pi / 3
        radii = np.full(6, radius)
    elif shape == "star":
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, radius, 0.45 * radius)
    elif shape == "cross":
        b = radius / math.sqrt(10.0)  # arm half-width; the arm half-length 3b puts the corner (b, 3b) on the circle
        a = 3 * b
        pts = [(b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b), (-b, -a)]
        pts_arr = np.asarray(pts, dtype=np.float64)
        angles = np.arctan2(pts_arr[:, 1], pts_arr[:, 0])
        radii = np.hypot(pts_arr[:, 0], pts_arr[:, 1])
    else:
        raise ValueError(shape)
    # Screen y points down, so a counter-clockwise rotation on screen subtracts from the angle.
    angles = angles - rotation
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _inside(obj: SceneObject, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    dx, dy = px - obj.center[0], py - obj.center[1]
    radius = obj.size / 2
    if obj.shape == "disc":
        return dx * dx + dy * dy <= radius * radius
    verts = _polygon_vertices(obj.shape, radius, obj.rotation)
    inside = np.zeros(dx.shape, dtype=bool)
    # Even-odd rule: count edge crossings of a ray towards +x.
    for (x1, y1), (x2, y2) in zip(verts, np.roll(verts, -1, axis=0)):
        if y1 == y2:
            continue
        crosses = (y1 > dy) != (y2 > dy)
        x_at = x1 + (dy - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (dx < x_at)
    return inside


def object_coverage(obj: SceneObject, height: int, width: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1], float32 [height, width]."""
    cover = np.zeros((height, width), dtype=np.float32)
    grid = raster.sample_points(obj.center, obj.size / 2 + 1, height, width)
    if grid is None:
        return cover
    box, px, py = grid
    x0, y0, x1, y1 = box
    cover[y0:y1, x0:x1] = raster.pixel_means(_inside(obj, px, py), box)
    return cover


def _smooth_noise(seed: int, cells: int, height: int, width: int) -> np.ndarray:
    """Bicubic-smooth value noise in [0, 1] with about ``cells`` features per side."""
    cells = max(int(round(cells)), 1)
    grid = np.random.default_rng(seed).random((cells + 3, cells + 3))
    gy = (np.arange(height) + 0.5) / height * cells + 1
    gx = (np.arange(width) + 0.5) / width * cells + 1
    iy, ix = np.floor(gy).astype(int), np.floor(gx).astype(int)
    fy, fx = gy - iy, gx - ix

    def cubic_weights(t: np.ndarray) -> np.ndarray:  # Catmull-Rom
        t2, t3 = t * t, t * t * t
        return np.stack([-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1, -1.5 * t3 + 2 * t2 + 0.5 * t,
                         0.5 * t3 - 0.5 * t2], axis=1)

    wy, wx = cubic_weights(fy), cubic_weights(fx)
    out = np.zeros((height, width))
    for a in range(4):
        for b in range(4):
            out += wy[:, a, None] * wx[None, :, b] * grid[np.ix_(iy - 1 + a, ix - 1 + b)]
    lo, hi = out.min(), out.max()
    return (out - lo) / (hi - lo) if hi > lo else np.full_like(out, 0.5)


def render_background(background: Background, height: int, width: int) -> np.ndarray:
    """float32 [height, width, 3] in [0, 1]."""
    side = max(height, width)
    y, x = np.meshgrid((np.arange(height) + 0.5) / side, (np.arange(width) + 0.5) / side, indexing="ij")
    direction = x * math.cos(background.angle) + y * math.sin(background.angle)
    if background.kind == "gradient":
        lo = min(0.0, math.cos(background.angle)) + min(0.0, math.sin(background.angle))
        hi = max(0.0, math.cos(background.angle)) + max(0.0, math.sin(background.angle))
        t = (direction - lo) / (hi - lo)
    elif background.kind == "radial":
        cx, cy = background.center
        t = np.clip(np.hypot(x - cx, y - cy) / 0.75, 0.0, 1.0)
    elif background.kind == "stripes":
        t = 0.5 + 0.5 * np.sin(2 * math.pi * background.frequency * direction)
    else:
        t = _smooth_noise(background.seed, int(background.frequency), height, width)
    a, b = np.asarray(background.color_a), np.asarray(background.color_b)
    return (a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]).astype(np.float32)


def render_scene(scene: Scene, size: int | None = None) -> RenderedScene:
    """Render ``scene`` (objects painted in order, later ones on top). ``size`` overrides ``scene.size``
    without rescaling coordinates (a bigger canvas shows more background)."""
    side = scene.size if size is None else size
    image = render_background(scene.background, side, side)
    masks: list[np.ndarray] = []
    for obj in scene.objects:
        alpha = object_coverage(obj, side, side)[..., None]
        image = image * (1 - alpha) + np.asarray(obj.color, dtype=np.float32)[None, None, :] * alpha
        masks.append(alpha[..., 0] >= 0.5)
    infos: list[ObjectInfo] = []
    for index, (obj, mask) in enumerate(zip(scene.objects, masks)):
        visible = mask.copy()
        for later in masks[index + 1:]:
            visible &= ~later
        infos.append(ObjectInfo(shape=obj.shape, color=obj.color, center=obj.center, size=obj.size,
                                bbox=_bbox(mask), mask=mask, visible_mask=visible))
    return RenderedScene(image=np.clip(image, 0.0, 1.0).astype(np.float32), objects=infos, scene=scene)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size == 0:
        return (0, 0, 0, 0)
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def random_object_color(rng: np.random.Generator) -> Color:
    return hsv(rng.random(), rng.uniform(0.65, 1.0), rng.uniform(0.6, 1.0))


def random_background(rng: np.random.Generator) -> Background:
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    hue = rng.random()
    color_a = hsv(hue, rng.uniform(0.0, 0.3), rng.uniform(0.15, 0.95))
    color_b = hsv(hue + rng.uniform(-0.15, 0.15), rng.uniform(0.0, 0.3), rng.uniform(0.15, 0.95))
    frequency = rng.uniform(1.0, 4.0) if kind == "stripes" else float(rng.integers(2, 6))
    return Background(kind=kind, color_a=color_a, color_b=color_b, angle=float(rng.uniform(0, 2 * math.pi)),
                      frequency=float(frequency), seed=int(rng.integers(2**31)),
                      center=(float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8))))


def random_scene(seed: int, size: int = DEFAULT_SIZE, n_objects: int | None = None,
                 shapes: Sequence[str] = SHAPES, min_gap: float = 3.0) -> Scene:
    """A random scene, a pure function of its arguments. Objects lie fully inside the image and their
    circumscribed circles stay ``min_gap`` pixels apart, so masks do not overlap."""
    rng = np.random.default_rng(seed)
    if n_objects is None:
        n_objects = int(rng.integers(1, 4))
    background = random_background(rng)
    lo, hi = OBJECT_SIZE_RANGE
    objects: list[SceneObject] = []
    for _ in range(n_objects):
        for _attempt in range(100):
            diameter = float(rng.uniform(lo, hi))
            margin = diameter / 2 + 1
            center = (float(rng.uniform(margin, size - margin)), float(rng.uniform(margin, size - margin)))
            clear = all(math.hypot(center[0] - o.center[0], center[1] - o.center[1])
                        >= (diameter + o.size) / 2 + min_gap for o in objects)
            if clear:
                shape = shapes[int(rng.integers(len(shapes)))]
                objects.append(SceneObject(shape=shape, color=random_object_color(rng), center=center,
                                           size=diameter, rotation=float(rng.uniform(0, 2 * math.pi))))
                break
    return Scene(background=background, objects=tuple(objects), size=size)


def render_batch(seeds: Sequence[int], size: int = DEFAULT_SIZE) -> np.ndarray:
    """Images of ``random_scene(seed, size)`` for each seed, float32 [N, size, size, 3] in [0, 1]."""
    return np.stack([render_scene(random_scene(int(s), size)).image for s in seeds])


def example_scenes() -> dict[str, Scene]:
    """Hand-placed showcase scenes (64x64), used by the demo node and the README."""
    red, blue, yellow, green = (0.9, 0.15, 0.1), (0.15, 0.35, 0.9), (0.95, 0.8, 0.1), (0.15, 0.75, 0.3)
    return {
        "two objects": Scene(
            Background("gradient", (0.75, 0.78, 0.82), (0.35, 0.38, 0.45), angle=math.pi / 3),
            (SceneObject("disc", red, (20.0, 24.0), 18.0),
             SceneObject("square", blue, (44.0, 42.0), 16.0, rotation=0.2))),
        "disc on gradient": Scene(
            Background("gradient", (0.85, 0.82, 0.72), (0.45, 0.5, 0.55), angle=0.4),
            (SceneObject("disc", red, (24.0, 32.0), 20.0),)),
        "star on stripes": Scene(
            Background("stripes", (0.62, 0.66, 0.6), (0.42, 0.46, 0.44), angle=0.9, frequency=2.5),
            (SceneObject("star", yellow, (36.0, 30.0), 22.0),)),
        "three objects on noise": Scene(
            Background("noise", (0.3, 0.32, 0.36), (0.7, 0.68, 0.64), frequency=3, seed=7),
            (SceneObject("triangle", green, (16.0, 18.0), 16.0),
             SceneObject("hexagon", blue, (46.0, 20.0), 15.0),
             SceneObject("disc", yellow, (30.0, 46.0), 14.0))),
    }

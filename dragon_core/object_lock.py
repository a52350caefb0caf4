"""Object lock (beyond the paper): for the first steps, the object's cells follow its carried inversion.

The copy-paste start latent puts the object's inverted noise x_T at its target, but from the second step on
the object is regenerated from that noise alone, and a small or weak model drifts from it: the object
dissolves, splits, or lands a few pixels off. Here, at the chosen early steps, the latent on the cells that the
start latent copied the object into is replaced by the inverted latent *of that step*, carried the same way
(RegionDrag, Lu et al. 2024, copies inverted latents region to region likewise). The object then follows its
own inversion to the target; the free edit region around it, the energy guidance and, when the lock ends
before the last step, the remaining steps blend it into its new surroundings.

A move or resize also leaves the object's old place: left to the energies, a small model paints the object
there again from the inverted noise it keeps. During the same steps the x0 prediction on the vacated cells is
set to the clean base latent with the object's cells filled in from the surrounding background (harmonic fill),
so the object is not drawn there again.

An appearance edit carries no object; there the lock works on the x0 prediction instead: the base object's
per-channel latent mean is set to the reference object's (its clean, inverted latent), so the object takes the
reference's colour while its own cells keep their shape and shading.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .background import blend_toward
from .placement import Placement
from .geometry import EditGeometry
from .start_latent import DRAG_PATCH_RADIUS, drag_patch_cells, start_latent


def grown_placement(place: Placement, latent_hw: tuple[int, int], cells: int = 1) -> Placement:
    """``place`` with its whole-cell source grown by ``cells`` (and the destination with it, cells that would
    leave the latent dropped from both), so the object's partly covered edge cells travel with it."""
    if cells <= 0:
        return place
    grown = F.max_pool2d(place.source.float()[None, None], 2 * cells + 1, stride=1, padding=cells)[0, 0] > 0
    rows, cols = torch.nonzero(grown, as_tuple=True)
    dr, dc = rows + place.shift[0], cols + place.shift[1]
    ok = (dr >= 0) & (dr < latent_hw[0]) & (dc >= 0) & (dc < latent_hw[1])
    source = torch.zeros_like(place.source)
    source[rows[ok], cols[ok]] = True
    dest = torch.zeros(latent_hw, dtype=torch.bool)
    dest[dr[ok], dc[ok]] = True
    return replace(place, source=source, dest=dest)


# The lock carries a ring of this many cells around what the start latent copies, for a plain move and a drag.
# A moved object's partly covered edge cells (below half covered, so not in the whole-cell copy) then travel
# with it. A drag's 3x3 handle patch is smaller than most objects it drags, whose outer parts were redrawn as a
# blob; grown to 5x5 they travel whole. Not for resize (the grown ring, scaled by nearest, came out worse) nor
# paste (the ring would bring the reference image's background along). Measured: benchmarks/README.md,
# "Figures behind the code's choices".
RING_CELLS = 1
DRAG_LOCK_RADIUS = DRAG_PATCH_RADIUS + RING_CELLS


def locked_geometry(geom: EditGeometry) -> EditGeometry:
    """``geom`` with the placement the object lock carries: grown by RING_CELLS for a plain move (a drag's
    patches are grown by :data:`DRAG_LOCK_RADIUS` where they are read)."""
    if geom.mode == "move":
        return replace(geom, latent_place=grown_placement(geom.latent_place, geom.latent_hw, RING_CELLS))
    return geom


def object_keep_mask(geom: EditGeometry) -> Optional[Tensor]:
    """Float [h, w] on the latent grid, for the lock's geometry (:func:`locked_geometry`): 1 on the cells the
    lock carries the object into (those the start latent copies it into, with their ring for a move or drag);
    None for an appearance edit, which copies nothing."""
    if geom.mode in ("move", "resize", "paste"):
        return geom.latent_place.dest.float()
    if geom.mode == "drag":
        keep = torch.zeros(geom.latent_hw)
        for _, dst_idx, _ in drag_patch_cells(geom, DRAG_LOCK_RADIUS):
            keep.view(-1)[dst_idx] = 1.0
        return keep
    return None


def object_mean(x: Tensor, cover: Tensor) -> Tensor:
    """[B, C, 1, 1] mean over the cells wholly inside the object (over all it touches, cover-weighted, when
    none is), so the background in the object's edge cells does not dilute it."""
    cover = cover.to(device=x.device, dtype=x.dtype)
    weight = (cover >= 0.999).to(x.dtype) if bool((cover >= 0.999).any()) else cover
    return (x * weight).sum(dim=(-2, -1), keepdim=True) / weight.sum()


def appearance_shift(x0: Tensor, cover: Tensor, target_mean: Tensor) -> Tensor:
    """``x0`` with the base object's per-channel mean set to ``target_mean`` (the reference object's
    :func:`object_mean`), each cell moved in proportion to how much of it the object covers (idempotent:
    applying it twice changes nothing more)."""
    cover = cover.to(device=x0.device, dtype=x0.dtype)
    return x0 + cover * (target_mean.to(device=x0.device, dtype=x0.dtype) - object_mean(x0, cover))


def vacated_background(geom: EditGeometry, clean_latent: Tensor) -> Optional[tuple[Tensor, Tensor]]:
    """Move / resize, for the lock's geometry: (keep [h, w], x0 [B, C, h, w]). keep is 1 on the latent cells
    the object touched where it was and touches no longer (nor the object lock holds); x0 is ``clean_latent``
    (the base image's) with every cell the object touched filled from its surroundings. None for the other
    modes or when nothing is vacated."""
    if geom.mode not in ("move", "resize"):
        return None
    place = geom.latent_place
    touched = geom.latent_cover > 0
    keep = touched & ~place.dest & ~(place.target_cover > 0)
    if not bool(keep.any()):
        return None
    return keep.float(), harmonic_fill(clean_latent, touched)


@dataclass(frozen=True)
class ObjectLock:
    """What the lock needs while sampling, computed once per edit by :func:`object_lock`."""
    geometry: EditGeometry                    # the lock's geometry (locked_geometry)
    keep: Optional[Tensor]                    # object_keep_mask
    vacated: Optional[tuple[Tensor, Tensor]]  # vacated_background
    appearance_target: Optional[Tensor]       # appearance: the reference object's object_mean

    def carried(self, latent: Tensor, reference_latent: Optional[Tensor] = None) -> Tensor:
        """The inverted latent of one step with the object carried to its target, as the start latent carries
        x_T (paste: from the reference image's latent of the same step)."""
        return start_latent(latent, self.geometry, reference_latent, drag_radius=DRAG_LOCK_RADIUS)

    def x0(self, x0: Tensor) -> Tensor:
        """The lock's part on an x0 prediction: background on a moved object's old place, the reference's
        colour on an appearance edit's object."""
        if self.vacated is not None:
            keep, background = self.vacated
            x0 = blend_toward(x0, background, keep)
        if self.appearance_target is not None:
            x0 = appearance_shift(x0, self.geometry.latent_cover, self.appearance_target)
        return x0


def object_lock(geom: EditGeometry, clean_latent: Tensor, reference_clean_latent: Optional[Tensor] = None
                ) -> ObjectLock:
    """The object lock of an edit, from its geometry and the inversions' clean latents (x_0 of the base image
    and, for an appearance edit, of the reference image)."""
    lock_geom = locked_geometry(geom)
    target = None
    if geom.mode == "appearance":
        if reference_clean_latent is None:
            raise ValueError("appearance needs the reference image's clean latent")
        target = object_mean(reference_clean_latent, geom.reference_latent_cover)
    return ObjectLock(lock_geom, object_keep_mask(lock_geom), vacated_background(lock_geom, clean_latent), target)


def harmonic_fill(x: Tensor, hole: Tensor, iterations: Optional[int] = None) -> Tensor:
    """``x`` [B, C, H, W] with the cells where ``hole`` [H, W] is True replaced by the smooth (harmonic)
    interpolation of the cells around them: repeated 4-neighbour averaging, known cells held fixed."""
    hole = hole.to(device=x.device, dtype=torch.bool)
    if not bool(hole.any()):
        return x
    known = ~hole
    if not bool(known.any()):
        raise ValueError("harmonic_fill: nothing around the hole to fill it from")
    iterations = iterations if iterations is not None else 4 * max(x.shape[-2:])
    out = x.clone()
    out[..., hole] = (x * known).sum(dim=(-2, -1))[..., None] / known.sum()
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=x.dtype, device=x.device)
    kernel = kernel.expand(x.shape[1], 1, 3, 3)
    ones = torch.ones_like(x[:, :1])
    count = F.conv2d(F.pad(ones, (1, 1, 1, 1)), kernel[:1], padding=0)  # neighbours inside the image
    for _ in range(iterations):
        mean = F.conv2d(F.pad(out, (1, 1, 1, 1)), kernel, groups=x.shape[1]) / count
        out = torch.where(hole, mean, x)
    return out

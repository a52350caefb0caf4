"""Correspondence energies (docs/SPEC.md §3; DragonDiffusion Sec. 3.2, DiffEditor Sec. 3.2), as pure functions
of (current features, the inverted latent's features, geometry, weights) -> (E_edit, E_content).

Features arrive as lists (one entry per decoder layer: the semantic and the geometric one) of [1, C, h, w]
maps; they are resized to the feature grid with nearest sampling. Similarities are channel cosines;
``S`` is a mean cosine, ``S+ = (S + 1) / 2`` and ``E(w, S) = w / (1 + 4 S)`` (lower when more similar).

The pairwise comparisons (the object at its new place against the inverted features, a target patch against
its handle patch) pair whole feature cells in the paper presets (``EditGeometry.whole_cells``), as the authors'
code does. The pack preset reads them at the exact place, beyond the paper: the inverted features are carried
over bilinearly (``Placement.carry``, ``sample_at``) instead of pairing whole cells, which rounds a move to 4 px.
For moves by whole cells the two are the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .placement import Placement
from .geometry import EditGeometry


@dataclass(frozen=True)
class EnergyWeights:
    w_edit: float
    w_content: float
    w_contrast: float = 0.2
    w_inpaint: float = 0.8


def _at_least_fp32(t: Tensor) -> Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def to_grid_map(feature: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """[1, C, h, w] -> [1, C, rows, cols] on the feature grid (nearest), in float32 or better."""
    feature = _at_least_fp32(feature)
    if tuple(feature.shape[-2:]) != tuple(grid_hw):
        feature = F.interpolate(feature, size=grid_hw, mode="nearest")
    return feature


def to_grid(feature: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """[1, C, h, w] -> [C, rows*cols] on the feature grid (nearest), in float32 or better."""
    return to_grid_map(feature, grid_hw)[0].flatten(1)


def sample_at(grid_map: Tensor, samples: Tensor) -> Tensor:
    """[1, C, rows, cols] read (bilinear) at [1, K, P, 2] grid_sample points -> [C, K, P]."""
    return F.grid_sample(grid_map, samples.to(device=grid_map.device, dtype=grid_map.dtype), mode="bilinear",
                         padding_mode="border", align_corners=False)[0]


def carry_whole_cells(place: Placement, grid_map: Tensor, dst_hw: tuple[int, int]) -> Tensor:
    """[1, C, rows, cols] on the source's feature grid -> [1, C, *dst_hw]: the source scaled (nearest) and its
    ``place.source`` cells written to ``place.dest`` (zero elsewhere), the authors' whole-cell pairing."""
    src = grid_map
    if tuple(src.shape[-2:]) != tuple(place.scaled_hw):
        src = F.interpolate(src, size=place.scaled_hw, mode="nearest")
    out = src.new_zeros(*src.shape[:2], *dst_hw)
    out[..., place.dest] = src[..., place.source]
    return out


def placed_features(place: Placement, grid_map: Tensor, dst_hw: tuple[int, int], whole_cells: bool) -> Tensor:
    """A feature map with the object carried to its new place: whole cells (paper) or exact (pack)."""
    if whole_cells:
        return carry_whole_cells(place, grid_map, dst_hw)
    return place.carry(grid_map)


def energy_of(weight: float, similarity: Tensor) -> Tensor:
    return weight / (1.0 + 4.0 * similarity)


def cos_cells(a: Tensor, b: Tensor) -> Tensor:
    """Cosine between corresponding columns of [C, K] and [C, K]."""
    return F.cosine_similarity(a, b, dim=0, eps=1e-6)


def mean_same_position(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    m = mask.flatten()
    return cos_cells(a[:, m], b[:, m]).mean()


def global_similarity(a: Tensor, mask_a: Tensor, b: Tensor, mask_b: Tensor) -> Tensor:
    """(cos(mean feature of a in mask_a, mean feature of b in mask_b) + 1) / 2."""
    ma = a[:, mask_a.flatten()].mean(dim=1)
    mb = b[:, mask_b.flatten()].mean(dim=1)
    return (F.cosine_similarity(ma, mb, dim=0, eps=1e-6) + 1.0) / 2.0


def move_energy(cur: Sequence[Tensor], inv: Sequence[Tensor], geom: EditGeometry, w: EnergyWeights
                ) -> tuple[Tensor, Tensor]:
    zero = cur[0].new_zeros(())
    e_edit, e_content = zero, zero
    place = geom.place
    new = place.dest if geom.whole_cells else place.target
    for f_cur, f_inv in zip(cur, inv):
        g_cur = to_grid(f_cur, geom.grid_hw)
        g_inv_map = to_grid_map(f_inv, geom.grid_hw)
        g_inv = g_inv_map[0].flatten(1)
        # the inverted features with the object scaled and moved to its new place
        g_placed = placed_features(place, g_inv_map, geom.grid_hw, geom.whole_cells)[0].flatten(1)
        e_edit = e_edit + 0.5 * energy_of(w.w_edit, mean_same_position(g_cur, g_placed, new))
        if geom.other.any():
            e_content = e_content + 0.5 * energy_of(w.w_content, mean_same_position(g_cur, g_inv, geom.other))
        if geom.vacated.any():
            contrast = (mean_same_position(g_cur, g_inv, geom.vacated) + 1.0) / 2.0
            e_content = e_content + 0.5 * w.w_contrast * contrast
            if geom.fill.any():
                e_content = e_content + energy_of(w.w_inpaint, global_similarity(g_cur, geom.vacated, g_inv, geom.fill))
    return e_edit, e_content


def drag_energy(cur: Sequence[Tensor], inv: Sequence[Tensor], geom: EditGeometry, w: EnergyWeights
                ) -> tuple[Tensor, Tensor]:
    zero = cur[0].new_zeros(())
    e_edit, e_content = zero, zero
    valid = geom.pair_valid
    # cells of each handle patch that its own target patch does not cover: content should leave them
    leaving = valid & ~(geom.handle_idx[:, :, None] == geom.target_idx[:, None, :]).any(-1)
    n_pairs = geom.handle_idx.shape[0]
    sample_valid = geom.sample_valid
    for f_cur, f_inv in zip(cur, inv):
        g_cur_map = to_grid_map(f_cur, geom.grid_hw)
        g_inv_map = to_grid_map(f_inv, geom.grid_hw)
        g_cur, g_inv = g_cur_map[0].flatten(1), g_inv_map[0].flatten(1)
        if geom.whole_cells:  # the paper: the whole cells of the target patch against those of the handle patch
            cos_move = cos_cells(g_cur[:, geom.target_idx], g_inv[:, geom.handle_idx])                   # [K, 9]
            move_valid = valid
        else:  # patches centred on the exact points (read bilinearly), not on the cells they fall in
            cos_move = F.cosine_similarity(sample_at(g_cur_map, geom.target_samples),
                                           sample_at(g_inv_map, geom.handle_samples), dim=0, eps=1e-6)  # [K, 9]
            move_valid = sample_valid
        s_move = ((cos_move * move_valid).sum(1) / move_valid.sum(1).clamp(min=1) + 1.0) / 2.0  # [K]
        pair_energy = energy_of(w.w_edit, s_move)
        cos_stay = cos_cells(g_cur[:, geom.handle_idx], g_inv[:, geom.handle_idx])        # [K, 9]
        has_leaving = leaving.any(1)
        s_stay = ((cos_stay * leaving).sum(1) / leaving.sum(1).clamp(min=1) + 1.0) / 2.0
        pair_energy = pair_energy + w.w_inpaint * s_stay * has_leaving
        e_edit = e_edit + pair_energy.sum() / (n_pairs * len(cur))
        if geom.keep_mask.any():
            s_keep = (mean_same_position(g_cur, g_inv, geom.keep_mask) + 1.0) / 2.0
            e_content = e_content + energy_of(w.w_content, s_keep) / len(cur)
    return e_edit, e_content


def appearance_energy(cur: Sequence[Tensor], inv: Sequence[Tensor], rep: Sequence[Tensor], geom: EditGeometry,
                      w: EnergyWeights) -> tuple[Tensor, Tensor]:
    zero = cur[0].new_zeros(())
    e_edit, e_content = zero, zero
    for f_cur, f_inv, f_rep in zip(cur, inv, rep):
        g_cur = to_grid(f_cur, geom.grid_hw)
        g_inv = to_grid(f_inv, geom.grid_hw)
        g_rep = to_grid(f_rep, geom.reference_grid_hw)
        if geom.keep_mask.any():
            s_keep = (mean_same_position(g_cur, g_inv, geom.keep_mask) + 1.0) / 2.0
            e_content = e_content + energy_of(w.w_content, s_keep)
        e_edit = e_edit + energy_of(w.w_edit, global_similarity(g_cur, geom.base_mask, g_rep, geom.reference_mask))
    return e_edit, e_content


def paste_energy(cur: Sequence[Tensor], inv: Sequence[Tensor], rep: Sequence[Tensor], geom: EditGeometry,
                 w: EnergyWeights) -> tuple[Tensor, Tensor]:
    zero = cur[0].new_zeros(())
    e_edit, e_content = zero, zero
    place = geom.place
    for f_cur, f_inv, f_rep in zip(cur, inv, rep):
        g_cur = to_grid(f_cur, geom.grid_hw)
        g_inv = to_grid(f_inv, geom.grid_hw)
        g_rep_map = to_grid_map(f_rep, geom.reference_grid_hw)
        g_rep_placed = placed_features(place, g_rep_map, geom.grid_hw, geom.whole_cells)[0].flatten(1)
        if geom.keep_mask.any():
            s_keep = (mean_same_position(g_cur, g_inv, geom.keep_mask) + 1.0) / 2.0
            e_content = e_content + energy_of(w.w_content, s_keep)
        s_obj = (mean_same_position(g_cur, g_rep_placed, ~geom.keep_mask) + 1.0) / 2.0
        e_edit = e_edit + energy_of(w.w_edit, s_obj)
    return e_edit, e_content


def edit_energy(cur: Sequence[Tensor], inv: Sequence[Tensor], geom: EditGeometry, weights: EnergyWeights,
                rep: Sequence[Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """(E_edit, E_content) for the geometry's mode. ``rep`` = the reference image's features (appearance, paste)."""
    if geom.mode in ("move", "resize"):
        return move_energy(cur, inv, geom, weights)
    if geom.mode == "drag":
        return drag_energy(cur, inv, geom, weights)
    if rep is None:
        raise ValueError(f"{geom.mode} energy needs the reference image's features")
    if geom.mode == "appearance":
        return appearance_energy(cur, inv, rep, geom, weights)
    return paste_energy(cur, inv, rep, geom, weights)

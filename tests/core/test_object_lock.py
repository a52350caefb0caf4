"""Object lock (beyond the paper): which cells it holds, what it carries there, the vacated-place fill and the
appearance statistics shift."""
import pytest
import torch

from dragon_core.editor_json import box_to_mask
from dragon_core.edits import make_appearance_edit, make_drag_edit, make_move_edit
from dragon_core.grids import ImageSize
from dragon_core.geometry import build_geometry
from dragon_core.object_lock import appearance_shift, grown_placement, harmonic_fill, object_lock, object_mean
from dragon_core.start_latent import start_latent

SIZE = ImageSize(96, 64)  # latent (f=8) 8 x 12
LATENT = (8, 12)


def box(x, y, w, h, size=SIZE):
    return box_to_mask((x, y, w, h), size).float()


def test_move_lock_holds_the_copied_cells_and_a_ring_and_carries_each_step_alike():
    g = build_geometry(make_move_edit(box(8, 8, 16, 16), (48, 24), SIZE), LATENT)
    lock = object_lock(g, torch.zeros(1, 4, *LATENT))
    keep = lock.keep
    # the whole-cell copy (rows 1-2, cols 1-2 -> rows 4-5, cols 7-8) grown by RING_CELLS = 1
    expected = torch.zeros(LATENT)
    expected[3:7, 6:10] = 1.0
    assert torch.equal(keep, expected) and g.latent_place.dest[4:6, 7:9].all()
    latent_at_step = torch.randn(1, 4, *LATENT)
    carried = lock.carried(latent_at_step)
    torch.testing.assert_close(carried[..., 3:7, 6:10], latent_at_step[..., 0:4, 0:4])
    torch.testing.assert_close(carried[..., ~keep.bool()], latent_at_step[..., ~keep.bool()])
    torch.testing.assert_close(start_latent(latent_at_step, g)[..., 4:6, 7:9], latent_at_step[..., 1:3, 1:3])


def test_resize_and_paste_lock_exactly_the_start_latents_cells():
    g = build_geometry(make_move_edit(box(16, 16, 32, 32), (0, 0), SIZE, scale=0.5), LATENT)
    lock = object_lock(g, torch.zeros(1, 4, *LATENT))
    assert torch.equal(lock.keep.bool(), g.latent_place.dest)
    latent_at_step = torch.randn(1, 4, *LATENT)
    torch.testing.assert_close(lock.carried(latent_at_step), start_latent(latent_at_step, g))


def test_grown_placement_drops_cells_that_would_leave_the_latent_in_pairs():
    g = build_geometry(make_move_edit(box(8, 8, 16, 16), (64, 32), SIZE), LATENT)  # to rows 5-6, cols 9-10
    place = grown_placement(g.latent_place, LATENT, 1)
    assert int(place.source.sum()) == int(place.dest.sum()) == 16       # 4x4 ring around, all inside
    # grown by 2 the source is rows 0-4, cols 0-4 (row/col -1 is outside); its destination rows 4-8, cols 8-12
    # would leave the 8 x 12 latent at row 8 and col 12, so those pairs are dropped on both sides
    edge = grown_placement(g.latent_place, LATENT, 2)
    assert edge.source[0:4, 0:4].all() and int(edge.source.sum()) == 16
    assert edge.dest[4:8, 8:12].all() and int(edge.dest.sum()) == 16


def test_drag_lock_holds_the_target_patches_with_a_ring_inside_the_latent():
    g = build_geometry(make_drag_edit(torch.tensor([[20.0, 20.0], [4.0, 4.0]]),
                                      torch.tensor([[60.0, 36.0], [92.0, 60.0]]), SIZE), LATENT)
    lock = object_lock(g, torch.zeros(1, 4, *LATENT))
    expected = torch.zeros(LATENT)
    expected[2:7, 5:10] = 1.0       # first pair: the start latent's 3x3 patch (rows 3-5, cols 6-8) and a ring
    # second pair: handle in the top-left corner cell, target in the bottom-right one; patches are clipped in
    # pairs, so only the centre offset is inside the latent for both
    expected[7, 11] = 1.0
    assert torch.equal(lock.keep, expected)
    latent_at_step = torch.randn(1, 4, *LATENT)
    carried = lock.carried(latent_at_step)
    torch.testing.assert_close(carried[..., 2:7, 5:10], latent_at_step[..., 0:5, 0:5])  # the handle (2, 2) grown
    torch.testing.assert_close(carried[..., ~expected.bool()], latent_at_step[..., ~expected.bool()])
    # the start latent itself copies the papers' 3x3 patch only (docs/SPEC.md §4)
    copied = start_latent(latent_at_step, g, subcell=False)
    torch.testing.assert_close(copied[..., 3:6, 6:9], latent_at_step[..., 1:4, 1:4])
    torch.testing.assert_close(copied[..., 2, 5:10], latent_at_step[..., 2, 5:10])


def test_appearance_edits_carry_nothing():
    base, ref = box(8, 8, 16, 16), box(40, 16, 16, 16)
    g = build_geometry(make_appearance_edit(base, ref, object(), SIZE, SIZE), LATENT)
    lock = object_lock(g, torch.zeros(1, 4, *LATENT), torch.zeros(1, 4, *LATENT))
    assert lock.keep is None and lock.vacated is None


def test_harmonic_fill_keeps_known_cells_and_continues_a_ramp_into_the_hole():
    rows, cols = torch.meshgrid(torch.arange(12.0), torch.arange(16.0), indexing="ij")
    ramp = (0.5 * rows - 0.25 * cols + 1.0).expand(1, 2, 12, 16).clone()
    holed = ramp.clone()
    hole = torch.zeros(12, 16, dtype=torch.bool)
    hole[3:8, 4:10] = True
    holed[..., hole] = 50.0            # what was there must not leak into the fill
    filled = harmonic_fill(holed, hole, iterations=400)
    torch.testing.assert_close(filled[..., ~hole], ramp[..., ~hole])
    torch.testing.assert_close(filled, ramp, atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="nothing around"):
        harmonic_fill(holed, torch.ones(12, 16, dtype=torch.bool))


def test_vacated_background_covers_the_old_place_only_and_fills_it_from_around():
    g = build_geometry(make_move_edit(box(8, 8, 16, 16), (48, 24), SIZE), LATENT)
    clean = torch.full((1, 4, *LATENT), 0.3)
    clean[..., 1:3, 1:3] = 5.0                     # the object where it was
    keep, x0 = object_lock(g, clean).vacated
    assert keep[1:3, 1:3].eq(1).all() and keep.sum() == 4
    assert not (keep.bool() & g.latent_place.dest).any()
    torch.testing.assert_close(x0, torch.full_like(clean, 0.3))
    # a shrink: the old place's outer ring is vacated, the cells the smaller object still touches are not
    g2 = build_geometry(make_move_edit(box(16, 16, 32, 32), (0, 0), SIZE, scale=0.5), LATENT)
    keep2, _ = object_lock(g2, clean).vacated
    expected = torch.zeros(LATENT)
    expected[2:6, 2:6] = 1.0
    expected[3:5, 3:5] = 0.0
    assert torch.equal(keep2, expected)


def test_appearance_shift_sets_the_object_mean_to_the_reference_and_is_idempotent():
    base, ref = box(8, 8, 24, 24), box(48, 16, 24, 16)
    g = build_geometry(make_appearance_edit(base, ref, object(), SIZE, SIZE), LATENT)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 4, *LATENT, generator=gen)
    reference_x0 = torch.randn(1, 4, *LATENT, generator=gen)
    reference_x0[..., 2:4, 6:9] += torch.tensor([2.0, -1.0, 0.5, 0.0])[:, None, None]
    target = object_mean(reference_x0, g.reference_latent_cover)
    shifted = appearance_shift(x0, g.latent_cover, target)
    inside = g.latent_cover >= 0.999                # 3 x 3 whole cells (24 px from 8 px)
    assert int(inside.sum()) == 9
    torch.testing.assert_close(shifted[..., inside].mean(-1), reference_x0[..., 2:4, 6:9].mean((-2, -1)))
    torch.testing.assert_close(shifted[..., g.latent_cover == 0], x0[..., g.latent_cover == 0])
    # within the object the base's own variation (shape, shading) is kept
    torch.testing.assert_close(shifted[..., inside] - shifted[..., inside].mean(-1, keepdim=True),
                               x0[..., inside] - x0[..., inside].mean(-1, keepdim=True))
    again = appearance_shift(shifted, g.latent_cover, target)
    torch.testing.assert_close(again, shifted)

"""Edits, grids and placement: grid conversions on non-square images and the validation errors users see."""
import pytest
import torch

from dragon_core.editor_json import box_to_mask, parse_editor_json
from dragon_core.edits import make_appearance_edit, make_drag_edit, make_move_edit, make_paste_edit
from dragon_core.grids import ImageSize, mask_to_grid, patch_pairs, patch_samples, point_to_cell
from dragon_core.placement import placement
from dragon_core.energy import sample_at
from dragon_core.errors import DragonInputError
from dragon_core.geometry import build_geometry
from dragon_core.start_latent import start_latent, subcell_shift

SIZE = ImageSize(96, 64)  # non-square: grid 16 rows x 24 cols, latent (f=8) 8 x 12


def box(x, y, w, h, size=SIZE):
    return box_to_mask((x, y, w, h), size).float()


def test_box_mask_and_grid_round_trip_on_non_square_image():
    m = box(16, 8, 24, 16)
    assert m.shape == (64, 96) and int(m.sum()) == 24 * 16
    g = mask_to_grid(m > 0.5, SIZE.grid)
    assert g.shape == (16, 24)
    rows, cols = torch.nonzero(g, as_tuple=True)
    assert (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())) == (2, 5, 4, 9)
    # back to pixels: the grid cells cover exactly the box
    up = g.repeat_interleave(4, 0).repeat_interleave(4, 1)
    assert torch.equal(up, m > 0.5)


def test_small_mask_never_vanishes_on_the_grid():
    m = torch.zeros(64, 96, dtype=torch.bool)
    m[10, 10] = True
    assert int(mask_to_grid(m, (8, 12)).sum()) == 1


def test_point_to_cell_and_patches_clip_at_the_border_in_pairs():
    cells = point_to_cell(torch.tensor([[95.0, 0.0], [4.0, 63.9]]), 4)
    assert cells.tolist() == [[0, 23], [15, 1]]
    h_idx, t_idx, valid = patch_pairs(cells[:1], torch.tensor([[8, 8]]), (16, 24))
    assert valid.shape == (1, 9) and int(valid.sum()) == 4  # corner handle: 2x2 of its 3x3 patch is inside
    h_rows, t_rows = h_idx[valid] // 24, t_idx[valid] // 24
    assert torch.equal(h_rows - 0, t_rows - 8)  # the pairs stay in correspondence


@pytest.mark.parametrize("scale", [1.0, 0.5, 1.5])
def test_placement_keeps_pairwise_counts_and_moves_the_centroid(scale):
    m = box(20, 16, 24, 16) > 0.5
    p = placement(m, scale, (24.0, 8.0), SIZE, SIZE, "dx/dy")
    assert int(p.source.sum()) == int(p.dest.sum())
    src_c = torch.nonzero(mask_to_grid(m, SIZE.grid)).float().mean(0)
    dst_c = torch.nonzero(p.dest).float().mean(0)
    assert torch.allclose(dst_c - src_c, torch.tensor([2.0, 6.0]), atol=0.6)  # 8 px down, 24 px right


def _ramp(grid_hw, size=SIZE):
    """A 2-channel map whose values are the cell centres' pixel (x, y): bilinear reads are exact on it."""
    rows, cols = grid_hw
    ys = (torch.arange(rows) + 0.5) * size.height / rows
    xs = (torch.arange(cols) + 0.5) * size.width / cols
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy])[None]


def test_a_move_by_whole_cells_is_the_same_in_the_exact_and_the_cell_view():
    m = box(20, 16, 24, 16) > 0.5
    p = placement(m, 1.0, (24.0, 8.0), SIZE, SIZE, "dx/dy")
    assert torch.equal(p.target, p.dest)
    carried = p.carry(_ramp(SIZE.grid))[0]
    moved_from = _ramp(SIZE.grid)[0][:, p.source]
    torch.testing.assert_close(carried[:, p.dest], moved_from)


@pytest.mark.parametrize("offset,scale", [((10.0, -6.0), 1.0), ((7.0, 3.0), 1.0), ((6.0, 2.0), 1.4)])
def test_the_exact_view_places_the_object_to_the_pixel_where_whole_cells_miss(offset, scale):
    m = box(20, 16, 24, 16) > 0.5   # centre (32, 24) px
    p = placement(m, scale, offset, SIZE, SIZE, "dx/dy")
    centre = torch.tensor([32.0, 24.0])
    carried = p.carry(_ramp(SIZE.grid))[0]           # where each destination cell reads its source from
    dst = _ramp(SIZE.grid)[0]
    expected = centre + (dst[:, p.target].T - centre - torch.tensor(offset)) / scale
    torch.testing.assert_close(carried[:, p.target].T, expected, atol=1e-4, rtol=0)
    # the object's cells: gridded from the pixel-exact placement, at least as close to it as whole-cell rounding
    w, h = 24 * scale, 16 * scale
    exact = box(round(32 + offset[0] - w / 2), round(24 + offset[1] - h / 2), round(w), round(h)) > 0.5
    iou = lambda cells: float((_up(cells) & exact).sum() / (_up(cells) | exact).sum())
    assert iou(p.target) >= iou(p.dest) and iou(p.target) > 0.6


def _up(cells):
    return cells.repeat_interleave(4, 0).repeat_interleave(4, 1)


def test_drag_samples_are_centred_on_the_points_and_agree_with_cells_at_cell_centres():
    handle = torch.tensor([[30.0, 18.0], [1.0, 1.0]])
    target = torch.tensor([[40.0, 22.0], [10.0, 30.0]])   # (10, 4) px: not a whole number of cells in x
    h, t, valid = patch_samples(handle, target, SIZE)
    ramp = _ramp(SIZE.grid)
    read_h, read_t = sample_at(ramp, h), sample_at(ramp, t)     # [2, K, 9] pixel positions read
    torch.testing.assert_close(read_t[:, 0] - read_h[:, 0], torch.tensor([[10.0] * 9, [4.0] * 9]))
    assert int(valid[1].sum()) == 4                              # corner handle: 2x2 of its patch inside
    # at cell centres the samples read exactly the cells patch_pairs pairs
    centre_h, centre_t = torch.tensor([[30.0, 18.0]]), torch.tensor([[42.0, 22.0]])
    h, t, _ = patch_samples(centre_h, centre_t, SIZE)
    h_idx, t_idx, _ = patch_pairs(point_to_cell(centre_h, 4), point_to_cell(centre_t, 4), SIZE.grid)
    flat = ramp[0].flatten(1)
    torch.testing.assert_close(sample_at(ramp, h)[:, 0], flat[:, h_idx[0]])
    torch.testing.assert_close(sample_at(ramp, t)[:, 0], flat[:, t_idx[0]])


def test_geometry_of_a_move_separates_old_new_and_other_places():
    edit = make_move_edit(box(8, 8, 16, 16), (40, 16), SIZE)
    g = build_geometry(edit, (8, 12))
    assert not (g.place.target & g.object_mask).any()
    assert torch.equal(g.vacated, g.object_mask)
    assert not (g.other & (g.place.target | g.object_mask)).any()
    assert torch.equal(g.edit_region, g.place.target | g.object_mask)
    assert g.latent_edit_region.shape == (8, 12)


def test_start_latent_copies_the_objects_noise_to_its_new_place():
    edit = make_move_edit(box(8, 8, 16, 16), (48, 24), SIZE)
    g = build_geometry(edit, (8, 12))
    x_T = torch.randn(1, 4, 8, 12)
    x = start_latent(x_T, g)
    # object latent cells rows 1-2, cols 1-2 -> rows 4-5, cols 7-8
    torch.testing.assert_close(x[..., 4:6, 7:9], x_T[..., 1:3, 1:3])
    torch.testing.assert_close(x[..., :, :6], x_T[..., :, :6])


def test_drag_start_latent_copies_the_handle_patch():
    edit = make_drag_edit(torch.tensor([[20.0, 20.0]]), torch.tensor([[60.0, 36.0]]), SIZE)
    g = build_geometry(edit, (8, 12))
    x_T = torch.randn(1, 4, 8, 12)
    x = start_latent(x_T, g)
    torch.testing.assert_close(x[..., 3:6, 6:9], x_T[..., 1:4, 1:4])


def test_subcell_shift_is_an_exact_shift_that_keeps_noise_statistics():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 32, 32, generator=gen)
    torch.testing.assert_close(subcell_shift(x, (2.0, -3.0)), torch.roll(x, (2, -3), (-2, -1)), atol=1e-5, rtol=0)
    odd = torch.randn(1, 4, 31, 33, generator=gen)  # odd sides have no Nyquist row/column: shifts invert exactly
    torch.testing.assert_close(subcell_shift(subcell_shift(odd, (0.4, -0.3)), (-0.4, 0.3)), odd, atol=1e-5, rtol=0)
    half = subcell_shift(x, (0.5, 0.5))
    assert abs(float(half.std()) / float(x.std()) - 1) < 0.05          # a phase shift keeps the power
    averaged = (x + torch.roll(x, 1, -1) + torch.roll(x, 1, -2) + torch.roll(x, (1, 1), (-2, -1))) / 4
    assert float(averaged.std()) / float(x.std()) < 0.6                  # what bilinear resampling would do
    # a smooth ramp moved by a fraction of a cell reads like the same ramp, shifted (away from the wrap)
    ramp = torch.sin(torch.arange(32.0) * 2 * torch.pi / 32).expand(1, 1, 32, 32)
    expected = torch.sin((torch.arange(32.0) - 0.25) * 2 * torch.pi / 32).expand(1, 1, 32, 32)
    torch.testing.assert_close(subcell_shift(ramp, (0.0, 0.25)), expected, atol=1e-5, rtol=0)


def test_start_latent_moves_the_copied_noise_by_the_rounded_away_fraction():
    # a 12 px move is 1.5 latent cells: the whole-cell copy rounds it to 2 cells, residual -0.5
    edit = make_move_edit(box(8, 8, 16, 16), (12, 0), SIZE)
    g = build_geometry(edit, (8, 12))
    place = g.latent_place
    assert place.shift == (0, 2) and place.residual == pytest.approx((0.0, -0.5))
    x_T = torch.randn(1, 4, 8, 12)
    whole = start_latent(x_T, g, subcell=False)
    torch.testing.assert_close(whole[..., 1:3, 3:5], x_T[..., 1:3, 1:3])
    x = start_latent(x_T, g)
    torch.testing.assert_close(x[..., 1:3, 3:5], subcell_shift(x_T, (0.0, -0.5))[..., 1:3, 1:3])
    outside = ~place.dest
    torch.testing.assert_close(x[..., outside], x_T[..., outside])

    drag = make_drag_edit(torch.tensor([[20.0, 20.0]]), torch.tensor([[66.0, 36.0]]), SIZE)
    gd = build_geometry(drag, (8, 12))
    assert gd.latent_residual[0].tolist() == pytest.approx([0.0, 46 / 8 - 6])  # cells 2 -> 8 (6), exact 5.75
    xd = start_latent(x_T, gd)
    torch.testing.assert_close(xd[..., 3:6, 7:10], subcell_shift(x_T, (0.0, -0.25))[..., 1:4, 1:4])


BAD_EDITS = [
    (lambda: ImageSize(100, 64), "image width", "multiple of 8"),
    (lambda: make_move_edit(torch.zeros(64, 96), (8, 0), SIZE), "object_mask", "empty"),
    (lambda: make_move_edit(torch.ones(64, 96), (8, 0), SIZE), "object_mask", "whole image"),
    (lambda: make_move_edit(box(0, 0, 8, 8, ImageSize(64, 64)), (8, 0), SIZE), "object_mask", "match the image"),
    (lambda: make_move_edit(box(8, 8, 16, 16), (8, 0), SIZE, scale=0), "scale", "[0.05, 20]"),
    (lambda: make_move_edit(box(8, 8, 16, 16), (8, 0), SIZE, scale=-1), "scale", "[0.05, 20]"),
    (lambda: make_move_edit(box(8, 8, 16, 16), (90, 0), SIZE), "dx/dy", "outside"),
    (lambda: make_move_edit(box(8, 8, 16, 16), (float("nan"), 0), SIZE), "dx", "finite"),
    (lambda: make_move_edit(box(8, 8, 16, 16), (0, 0), SIZE), "dx/dy", "empty"),
    (lambda: make_drag_edit(torch.tensor([[96.0, 10.0]]), torch.tensor([[10.0, 10.0]]), SIZE), "handle_points[0]", "outside"),
    (lambda: make_drag_edit(torch.tensor([[9.0, 10.0]]), torch.tensor([[10.0, -1.0]]), SIZE), "target_points[0]", "outside"),
    (lambda: make_drag_edit(torch.tensor([[9.0, 10.0], [1, 1]]), torch.tensor([[10.0, 1.0]]), SIZE), "points", "pairs"),
    (lambda: make_drag_edit(torch.zeros(0, 2), torch.zeros(0, 2), SIZE), "points", "no handle"),
    (lambda: make_drag_edit(torch.tensor([[float("inf"), 1.0]]), torch.tensor([[1.0, 1.0]]), SIZE), "handle_points", "infinite"),
    (lambda: make_appearance_edit(box(8, 8, 16, 16), box(8, 8, 16, 16), None, SIZE, SIZE), "reference_bank", "memory bank"),
    (lambda: make_paste_edit(box(8, 8, 16, 16), (200, 0), 1.0, object(), SIZE, SIZE), "dx/dy", "outside"),
    (lambda: parse_editor_json("{not json", SIZE), "editor_json", "not valid JSON"),
    (lambda: parse_editor_json("[" * 100000 + "]" * 100000, SIZE), "editor_json", "characters"),
    (lambda: parse_editor_json("[" * 5000 + "]" * 5000, SIZE), "editor_json", ""),
    (lambda: parse_editor_json('{"points": [[1, 2, 3, NaN]]}', SIZE), "editor_json", "finite"),
    (lambda: parse_editor_json('{"points": [[1, 2, 3]]}', SIZE), "editor_json.points[0]", "4 numbers"),
    (lambda: parse_editor_json('{"points": [["1", 2, 3, 4]]}', SIZE), "editor_json.points[0]", "number"),
    (lambda: parse_editor_json('{"boxes": [[0, 0, -5, 5]]}', SIZE), "editor_json.boxes[0]", "> 0"),
    (lambda: parse_editor_json('{"boxes": [[90, 0, 10, 5]]}', SIZE), "editor_json.boxes[0]", "not inside"),
    (lambda: parse_editor_json('{"__class__": 1}', SIZE), "editor_json", "unknown keys"),
    (lambda: parse_editor_json('{"points": [' + ",".join(["[1,1,2,2]"] * 300) + "]}", SIZE), "editor_json.points", "at most 256"),
    (lambda: parse_editor_json('"just a string"', SIZE), "editor_json", "JSON object"),
]


@pytest.mark.parametrize("make, field, words", BAD_EDITS, ids=[f"{i}-{f}" for i, (_, f, _) in enumerate(BAD_EDITS)])
def test_invalid_input_raises_one_error_type_naming_the_field(make, field, words):
    with pytest.raises(DragonInputError) as info:
        make()
    assert info.value.field.startswith(field)
    assert words in str(info.value)

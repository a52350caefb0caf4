"""The structured scenes (demo/scenes.py, its backgrounds and objects) and the truth of each edit
(demo/scene_edits.py); numpy only, no ComfyUI."""
import dataclasses

import numpy as np
import pytest
from dragon_dev.bootstrap import demo_module


scenes, objects, backgrounds, edits = (demo_module(name) for name in
                                       ("scenes", "scene_objects", "scene_backgrounds", "scene_edits"))


@pytest.fixture(scope="module")
def cases():
    return {mode: edits.edit_cases(mode, 3) for mode in edits.MODES}


def test_scenes_are_deterministic_and_seeds_differ():
    a, b = scenes.render(scenes.random_scene(5)), scenes.render(scenes.random_scene(5))
    assert np.array_equal(a.image, b.image)
    c = scenes.render(scenes.random_scene(6))
    assert not np.array_equal(a.image, c.image)
    assert a.image.dtype == np.float32 and a.image.shape == (64, 64, 3)
    assert 0.0 <= a.image.min() and a.image.max() <= 1.0


@pytest.mark.parametrize("kind", ["stripes", "checks", "noise", "wood", "fabric", "gradient"])
def test_textures_have_structure(kind):
    tex = backgrounds.Texture(kind, (0.2, 0.2, 0.25), (0.8, 0.75, 0.7), scale=8, angle=0.5, seed=3)
    img = backgrounds.render_texture(tex, 64, 64)
    # every texture spans most of the range between its two colours
    assert img[..., 0].max() - img[..., 0].min() > 0.3
    if kind != "gradient":  # high-frequency content: what a smooth fill cannot reproduce
        from scipy import ndimage

        smooth = ndimage.gaussian_filter(img, (3, 3, 0))
        assert np.abs(img - smooth).mean() > 0.02


def test_emoji_objects_have_inner_detail():
    sprite = objects.emoji_sprite("1F34E")
    opaque = sprite[..., 3] > 0.99
    colours = np.unique(np.round(sprite[opaque, :3] * 8), axis=0)
    assert opaque.mean() > 0.3 and len(colours) >= 3  # an outline, a body colour, highlights


def test_truth_behind_is_the_scene_without_the_object(cases):
    for mode in ("move", "resize", "drag", "stretch", "bend"):
        for case in cases[mode]:
            things = tuple(t for i, t in enumerate(case.before.things) if i != case.index)
            expected = scenes.render(dataclasses.replace(case.before, things=things)).image
            assert np.array_equal(case.behind, expected)
            # the vacated place shows exactly what lies behind the object (no shadow of it either)
            v = case.vacated & ~scenes_dilate(case.mask_after, 7)
            assert np.allclose(case.truth[v], case.behind[v], atol=0.01)  # a shadow tail is below 1 %


def scenes_dilate(mask, px):
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=px)


def test_masks_are_consistent(cases):
    for mode, mode_cases in cases.items():
        for case in mode_cases:
            after = scenes.render(case.after)
            assert np.array_equal(case.truth, after.image)
            assert np.array_equal(case.mask_after, after.masks[case.index])
            assert case.mask_before.any() and case.mask_after.any()
            # bystanders: the other objects' visible parts, disjoint from the edited object on top
            for b in case.bystanders:
                assert not (b & case.mask_after).any()
            assert len(case.bystanders) == len(case.after.things) - 1
            if mode in ("move", "drag"):
                dx, dy = case.params["dx"], case.params["dy"]
                shifted = np.roll(np.roll(case.mask_before, dy, 0), dx, 1)
                assert (shifted & case.mask_after).sum() >= 0.9 * case.mask_after.sum()
            if mode == "resize":
                ratio = case.mask_after.sum() / case.mask_before.sum()
                assert abs(ratio - case.params["scale"] ** 2) < 0.25 * case.params["scale"] ** 2


def test_outside_the_edit_nothing_changes(cases):
    for mode, mode_cases in cases.items():
        for case in mode_cases:
            keep = ~case.edit_region(7)
            assert np.allclose(case.image[keep], case.truth[keep], atol=0.01), mode


def test_moved_object_carries_its_pixels(cases):
    for case in cases["move"]:
        dx, dy = case.params["dx"], case.params["dy"]
        obj = case.before.things[case.index]
        alone = objects.render_thing(obj, 64, 64)
        moved = objects.render_thing(case.after.things[case.index], 64, 64)
        assert np.allclose(np.roll(np.roll(alone, dy, 0), dx, 1), moved, atol=1e-4)


def test_deformations_cannot_be_a_patch_copy(cases):
    """Stretch: the pattern's bands get longer; bend: the bar's centre line curves. Either way no translate of
    the old object matches the new one."""
    for mode in ("stretch", "bend"):
        for case in cases[mode]:
            before, after = case.before.things[case.index], case.after.things[case.index]
            a = objects.render_thing(before, 64, 64)[..., 3]
            b = objects.render_thing(after, 64, 64)[..., 3]
            best = min(np.abs(np.roll(np.roll(a, dy, 0), dx, 1) - b).sum()
                       for dx in range(-20, 21) for dy in range(-20, 21))
            assert best > 0.15 * b.sum(), mode
            (x0, y0, x1, y1), = case.params["points"]
            assert np.allclose(before.handle(), (x0, y0), atol=0.06)
            assert np.allclose(after.handle(), (x1, y1), atol=0.06)
    for case in cases["stretch"]:  # the bar grew along its length by the stretch
        assert case.mask_after.sum() > 1.2 * case.mask_before.sum()


def test_appearance_and_paste_references(cases):
    for case in cases["appearance"]:
        assert np.array_equal(case.mask_before, case.mask_after)  # shape kept, colours changed
        inside = case.mask_after
        assert np.abs(case.truth[inside] - case.image[inside]).mean() > 0.05
        assert case.reference_mask is not None and case.reference_mask.any()
    for case in cases["paste"]:
        assert case.reference_image is not None
        assert case.reference_mask.sum() == pytest.approx(case.mask_after.sum(), rel=0.1)
        assert not case.vacated.any()


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown mode"):
        edits.edit_case(1, "rotate")
    with pytest.raises(ValueError, match="unknown texture"):
        backgrounds.Texture("marble", (0, 0, 0), (1, 1, 1))

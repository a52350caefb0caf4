"""A one-scene-per-mode smoke run of benchmarks/edit_quality.py on the embedded demo model: a regression in edit
quality (the object not arriving, the background drifting, the shape falling apart, the colour not taken) fails
here, not only in the benchmark report. Bounds are looser than the benchmark's targets or at them, and below
what the committed model measured on these held-out scenes (the comment above the bounds)."""

import pytest

STEPS = 50  # as the benchmark
MODES = ("move", "drag", "resize", "paste")
# measured (2026-11-28, committed weights with the sharpened decoder, object lock with the drag ring), centre
# error / identity IoU: move 0.0 px / 0.94; drag 0.2 px / 0.93; resize (centre kept) 0.8 px / 0.75;
# paste 1.4 px / 0.74. Move from the copy-paste start latent alone: 7.2 px / 0.39; with the paper's guidance and
# no object lock: 0.2 px; with the object lock and no guidance: 0.0 px. Appearance colour error (no energy):
# 0.08 with the object lock, 0.86 without.
CENTRE_ERROR_PX = 2.0  # the benchmark's success radius
IDENTITY_IOU = {"move": 0.85, "drag": 0.8, "resize": 0.65, "paste": 0.65}
BACKGROUND_PSNR_DB = 30.0
APPEARANCE_COLOUR_ERROR = 0.15  # the benchmark's success bound


@pytest.fixture(scope="module")
def quality(dragon_pack):
    from dragon_dev.bootstrap import load_module

    return load_module("benchmarks/edit_quality.py", "dragon_edit_quality")


@pytest.fixture(scope="module")
def editor(quality, dragon_pack):
    return quality.Editor(STEPS, pack=dragon_pack)


@pytest.fixture(scope="module")
def cases(quality):
    return {case.mode: case for case in quality.make_cases(1, MODES + ("appearance",))}


@pytest.mark.parametrize("mode", MODES)
def test_edit_lands_keeps_shape_and_background(quality, editor, cases, mode):
    case = cases[mode]
    s = quality.score(case, editor.edit(case, {}))
    print(mode, case.seed, s)
    assert s["background_psnr"] >= BACKGROUND_PSNR_DB, s
    assert s["centre_error"] <= CENTRE_ERROR_PX, s
    assert s["identity_iou"] >= IDENTITY_IOU[mode], s


def test_energy_guidance_and_the_object_lock_each_carry_the_object(quality, editor, cases):
    case = cases["move"]
    bare = {"energy_scale": 0.0, "cross_branch_attention": False, "keep_object": 0.0}  # copy-paste start latent
    start_only = quality.score(case, editor.edit(case, bare))
    guided = quality.score(case, editor.edit(case, {"keep_object": 0.0}))             # the paper's mechanisms
    locked = quality.score(case, editor.edit(case, {**bare, "keep_object": 1.0}))     # the object lock alone
    print(start_only, guided, locked)
    assert start_only["centre_error"] > guided["centre_error"] + 2.0, (start_only, guided)
    assert start_only["centre_error"] > locked["centre_error"] + 2.0, (start_only, locked)


def test_appearance_takes_the_reference_colour_under_the_object_lock(quality, editor, cases):
    # without the authors' appearance energy, which overshoots on this small model (benchmarks/README.md)
    case = cases["appearance"]
    locked = quality.score(case, editor.edit(case, {"energy_scale": 0.0}))
    free = quality.score(case, editor.edit(case, {"energy_scale": 0.0, "keep_object": 0.0}))
    print(locked, free)
    assert locked["color_error"] <= APPEARANCE_COLOUR_ERROR, (locked, free)
    assert free["color_error"] > locked["color_error"] + 0.2, (locked, free)

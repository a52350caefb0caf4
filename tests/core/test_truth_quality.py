"""benchmarks/truth_quality.py's scoring and fixed rows, without a model: the truth scores perfectly, doing
nothing fails, the copy-paste baseline sits in between, and identical variants are reported as such."""
import numpy as np
import pytest
from dragon_dev.bootstrap import load_module


@pytest.fixture(scope="module")
def tq():
    return load_module("benchmarks/truth_quality.py", "dragon_truth_quality")


@pytest.fixture(scope="module")
def cases(tq):
    return {tc.mode: tc for tc in tq.make_cases(1, ("move", "resize", "drag", "appearance", "paste", "stretch", "bend"))}


def test_the_truth_scores_perfectly(tq, cases):
    for mode, tc in cases.items():
        s = tq.score(tc, tc.case.truth)
        assert s["success"], (mode, s)
        assert s["whole_psnr"] == 99.0 and s["object_psnr"] == 99.0 and s["background_psnr"] == 99.0
        assert s["object_iou"] == 1.0 and s["centre_error"] == 0.0
        assert np.isnan(s["bystander_iou"]) or s["bystander_iou"] == 1.0
        if tc.case.vacated.any():
            assert s["vacated_psnr"] == 99.0


def test_doing_nothing_fails_and_copy_paste_sits_between(tq, cases):
    for mode in ("move", "drag", "paste"):
        tc = cases[mode]
        nothing, copy = tq.score(tc, tc.case.image), tq.score(tc, tq.copy_paste(tc))
        assert not nothing["success"], (mode, nothing)
        assert nothing["centre_error"] > 4 and nothing["object_iou"] < 0.4, (mode, nothing)
        assert copy["whole_psnr"] > nothing["whole_psnr"] + 3, (mode, copy, nothing)
        assert copy["object_iou"] > nothing["object_iou"] + 0.3, (mode, copy, nothing)
        assert copy["whole_psnr"] < 60, (mode, copy)   # not the truth: a smooth fill, no shadow, no occlusion
    # the vacated place: the smooth fill beats the object left standing, and misses the texture's detail
    tc = cases["move"]
    nothing, copy = tq.score(tc, tc.case.image), tq.score(tc, tq.copy_paste(tc))
    assert nothing["vacated_psnr"] + 5 < copy["vacated_psnr"] < 40


def test_deformations_defeat_the_patch_copy(tq, cases):
    for mode in ("stretch", "bend"):
        tc = cases[mode]
        assert tq.score(tc, tq.copy_paste(tc))["object_psnr"] < 20


def test_smooth_fill_reproduces_a_flat_region_and_only_touches_the_hole(tq):
    image = np.full((32, 32, 3), 0.4, np.float32)
    image[:, 16:] = 0.6
    hole = np.zeros((32, 32), bool)
    hole[10:20, 4:10] = True
    noisy = image.copy()
    noisy[hole] = 1.0
    filled = tq.smooth_fill(noisy, hole)
    assert np.allclose(filled[~hole], noisy[~hole])
    assert np.allclose(filled[hole], 0.4, atol=0.02)


def test_identical_variants_are_reported(tq, cases):
    tc = cases["move"]
    a = tc.case.image
    results = [(tc, "full", a, {}), (tc, "no energy", a + 1e-4, {}), (tc, "no locks", tc.case.truth, {})]
    notes = tq.indistinguishable(results)
    assert len(notes) == 1 and "'no energy'" in notes[0]

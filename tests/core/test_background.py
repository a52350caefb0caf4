import pytest
import torch

from dragon_core.background import background_keep_mask, blend_toward
from dragon_core.step import refold as refold_denoised
from dragon_core.errors import DragonInputError
from dragon_core.guidance import lock_step_schedule, default_guidance


def _region(h=12, w=12, box=(4, 7, 5, 8)):
    region = torch.zeros(h, w, dtype=torch.bool)
    region[box[0]:box[1], box[2]:box[3]] = True
    return region


def test_keep_mask_frees_the_grown_region_and_feathers_one_cell():
    region = _region()
    keep = background_keep_mask(region, grow=1)
    assert keep.shape == region.shape and keep.min() >= 0 and keep.max() <= 1
    grown = torch.zeros_like(region)
    grown[3:8, 4:9] = True
    assert torch.all(keep[grown] == 0)                      # region plus one cell: free
    assert torch.all((keep[2, 3:10] > 0) & (keep[2, 3:10] < 1))  # the ring around it: feathered
    assert torch.all(keep[0] == 1) and torch.all(keep[:, -1] == 1)  # far away: locked
    assert torch.all(background_keep_mask(region, grow=0)[region] == 0)
    with pytest.raises(ValueError):
        background_keep_mask(region, grow=-1)


def test_keep_mask_of_a_whole_image_region_locks_nothing():
    assert torch.all(background_keep_mask(torch.ones(8, 8, dtype=torch.bool)) == 0)


def test_blend_takes_the_inversion_where_kept():
    x, x_inv = torch.zeros(1, 4, 12, 12), torch.ones(1, 4, 12, 12)
    keep = background_keep_mask(_region())
    out = blend_toward(x, x_inv, keep)
    assert torch.equal(out[0, 2], keep) and torch.all(out[..., 4:7, 5:8] == 0)


@pytest.mark.parametrize("sigma,sigma_next", [(14.6, 9.0), (1.2, 0.5), (0.3, 0.0)])
def test_refolded_x0_makes_a_step_from_x_land_where_the_step_from_the_blend_lands(sigma, sigma_next):
    g = torch.Generator().manual_seed(0)
    x, x_in, x0 = (torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64) for _ in range(3))
    r = sigma_next / sigma
    wanted = x0 + (x_in - x0) * r
    folded = refold_denoised(x0, x_in, x, torch.tensor(sigma), torch.tensor(sigma_next))
    torch.testing.assert_close(folded + (x - folded) * r, wanted, rtol=1e-6, atol=1e-6)  # sigmas are float32


def test_refold_refuses_a_step_that_does_not_go_down():
    with pytest.raises(ValueError):
        refold_denoised(torch.zeros(1), torch.zeros(1), torch.zeros(1), 1.0, 1.0)


def test_background_schedule_is_a_fraction_of_the_steps_from_the_first():
    assert lock_step_schedule(20, 0.5) == frozenset(range(10))
    assert lock_step_schedule(20, 0.0) == frozenset()
    assert default_guidance("move", 30).background_steps == lock_step_schedule(30, 1.0)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(DragonInputError, match="keep_background"):
            lock_step_schedule(20, bad)
        with pytest.raises(DragonInputError, match="keep_object"):
            lock_step_schedule(20, bad, "keep_object")

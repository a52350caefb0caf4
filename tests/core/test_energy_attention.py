"""Energies (gradients, descent) and cross-branch attention policies."""
import dataclasses

import pytest
import torch

from dragon_core.attention import InjectionMode, self_attention_context, token_grid
from dragon_core.editor_json import box_to_mask
from dragon_core.edits import make_appearance_edit, make_drag_edit, make_move_edit, make_paste_edit
from dragon_core.grids import ImageSize
from dragon_core.energy import EnergyWeights, edit_energy
from dragon_core.geometry import build_geometry
from dragon_test_helpers.oracles import attention
from dragon_core.guidance import GuidanceStats, content_gradient_needed, default_guidance, energy_gradient
from dragon_core.memory_bank import BankPolicy, MemoryBank

SIZE = ImageSize(64, 48)  # grid 12 x 16, latent (f=4) 12 x 16
LATENT = (12, 16)


class ToyFeatures(torch.nn.Module):
    """A smooth differentiable stand-in for the UNet decoder: two maps at two resolutions."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = torch.nn.Parameter(torch.randn(8, 4, 3, 3, generator=g, dtype=torch.float64) * 0.3)
        self.b = torch.nn.Parameter(torch.randn(6, 8, 3, 3, generator=g, dtype=torch.float64) * 0.3)

    def forward(self, x, sigma):
        h1 = torch.tanh(torch.nn.functional.conv2d(x / (1 + sigma ** 2).sqrt(), self.a, padding=1))
        coarse = torch.nn.functional.avg_pool2d(h1, 2)
        fine = torch.tanh(torch.nn.functional.conv2d(h1, self.b, padding=1))
        return [coarse, fine]


def box(x, y, w, h, size=SIZE):
    return box_to_mask((x, y, w, h), size).float()


class FakeBank:
    pass


def geometries():
    return {
        "move": build_geometry(make_move_edit(box(8, 8, 16, 16), (24, 8), SIZE), LATENT),
        "resize": build_geometry(make_move_edit(box(8, 8, 16, 16), (24, 8), SIZE, scale=1.5), LATENT),
        "drag": build_geometry(make_drag_edit(torch.tensor([[12.0, 12.0], [40, 30]]), torch.tensor([[30.0, 20.0], [50, 30]]),
                                              SIZE, box(0, 0, 60, 44)), LATENT),
        "appearance": build_geometry(make_appearance_edit(box(8, 8, 16, 16), box(30, 20, 16, 16), FakeBank(), SIZE, SIZE), LATENT),
        "paste": build_geometry(make_paste_edit(box(30, 20, 12, 12), (-16, -8), 1.0, FakeBank(), SIZE, SIZE), LATENT),
    }


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = ToyFeatures().requires_grad_(False)
    sigma = torch.tensor(2.0, dtype=torch.float64)
    x_inv = torch.randn(1, 4, *LATENT, dtype=torch.float64) * 2
    x_rep = torch.randn(1, 4, *LATENT, dtype=torch.float64) * 2
    x = x_inv + 0.5 * torch.randn_like(x_inv)
    return net, sigma, x, net(x_inv, sigma), net(x_rep, sigma)


@pytest.mark.parametrize("mode", ["move", "resize", "drag", "appearance", "paste"])
def test_energy_gradient_matches_finite_differences(setup, mode):
    net, sigma, x, inv, rep = setup
    geom = geometries()[mode]
    weights = EnergyWeights(4.0, 6.0, 0.2, 0.8)

    def total(x_):
        e_edit, e_content = edit_energy(net(x_, sigma), inv, geom, weights, rep)
        return e_edit + e_content

    x_leaf = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(total(x_leaf), x_leaf)
    assert grad.abs().sum() > 0
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):
        direction = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        h = 1e-5
        fd = (total(x + h * direction) - total(x - h * direction)) / (2 * h)
        torch.testing.assert_close(fd, (grad * direction).sum(), rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("mode", ["move", "resize", "drag", "appearance", "paste"])
def test_each_energy_decreases_along_its_negative_gradient(setup, mode):
    net, sigma, x, inv, rep = setup
    geom = geometries()[mode]
    weights = EnergyWeights(4.0, 6.0, 0.2, 0.8)
    for part in (0, 1):
        def energy(x_):
            return edit_energy(net(x_, sigma), inv, geom, weights, rep)[part]

        x_leaf = x.clone().requires_grad_(True)
        e0 = energy(x_leaf)
        if not e0.requires_grad:
            continue
        (g,) = torch.autograd.grad(e0, x_leaf)
        step = 1e-2 / g.norm()
        assert float(energy(x - step * g)) < float(e0.detach())


def test_energy_is_lower_when_the_object_is_where_the_edit_wants_it(setup):
    net, sigma, _, _, _ = setup
    geom = geometries()["move"]
    x_inv = torch.zeros(1, 4, *LATENT, dtype=torch.float64)
    x_inv[..., 2:6, 2:6] = torch.randn(4, 4, 4, dtype=torch.float64) * 3  # object at grid rows/cols 2-5
    inv = net(x_inv, sigma)
    moved = torch.zeros_like(x_inv)
    moved[..., 4:8, 8:12] = x_inv[..., 2:6, 2:6]  # +8 px down = 2 cells, +24 px right = 6 cells
    w = EnergyWeights(4.0, 6.0, 0.2, 0.8)
    assert float(edit_energy(net(moved, sigma), inv, geom, w)[0]) < float(edit_energy(net(x_inv, sigma), inv, geom, w)[0])


def test_energy_gradient_is_split_by_the_edit_region_and_scaled_to_the_unet_input(setup):
    net, sigma, x, inv, rep = setup
    geom = geometries()["move"]
    cfg = default_guidance("move", 50)
    g = energy_gradient(lambda xx, ss: net(xx, ss), x, sigma, inv, geom, cfg)
    assert g.shape == x.shape and torch.isfinite(g).all()
    zero_cfg = dataclasses.replace(cfg, energy_scale=0.0)
    assert float(energy_gradient(lambda xx, ss: net(xx, ss), x, sigma, inv, geom, zero_cfg).abs().max()) == 0.0


def test_without_the_content_term_the_gradient_is_the_edit_part_alone_in_one_backward_pass(setup):
    net, sigma, x, inv, rep = setup
    geom = geometries()["move"]
    cfg = default_guidance("move", 50)
    fn = lambda xx, ss: net(xx, ss)
    both, edit_only = GuidanceStats(), GuidanceStats()
    g = energy_gradient(fn, x, sigma, inv, geom, cfg, stats=both)
    g_edit = energy_gradient(fn, x, sigma, inv, geom, cfg, stats=edit_only, content=False)
    region = geom.latent_gradient_region.to(x.dtype)
    assert (both.backward_passes, edit_only.backward_passes) == (2, 1)
    torch.testing.assert_close(g_edit, g * region)
    assert float((g * (1 - region)).abs().max()) > 0 and float((g_edit * (1 - region)).abs().max()) == 0.0


def test_content_gradient_is_skipped_only_when_the_next_step_is_locked_and_nothing_is_vacated():
    drag, move = geometries()["drag"], geometries()["move"]
    locked = dataclasses.replace(default_guidance("drag", 50), background_steps=frozenset(range(10)))
    assert not content_gradient_needed(3, locked, drag)
    assert content_gradient_needed(9, locked, drag)          # the step after the last locked one is free
    free = dataclasses.replace(locked, background_steps=frozenset())
    assert content_gradient_needed(3, free, drag)            # keep_background 0: the paper's method
    # a move's contrast and inpainting terms act on the vacated place, inside the lock's free region
    assert bool(move.vacated.any()) and content_gradient_needed(3, locked, move)


def _qkv(seed=0, n=12, c=16):
    g = torch.Generator().manual_seed(seed)
    wq, wk, wv = (torch.randn(c, c, generator=g) for _ in range(3))
    tokens = torch.randn(2, n, c, generator=g)
    return tokens, wq, wk, wv


def test_replace_with_the_inversions_own_tokens_returns_its_attention_exactly():
    n, wq, wk, wv = _qkv()
    own = attention(n @ wq, n @ wk, n @ wv, heads=4)
    ctx = self_attention_context(n, InjectionMode.REPLACE, n[:1])
    out = attention(n @ wq, ctx @ wk, ctx @ wv, heads=4)
    torch.testing.assert_close(out[:1], own[:1])


def test_concat_of_identical_tokens_leaves_attention_unchanged_and_of_others_changes_it():
    n, wq, wk, wv = _qkv()
    own = attention(n[:1] @ wq, n[:1] @ wk, n[:1] @ wv, heads=4)
    ctx = self_attention_context(n[:1], InjectionMode.CONCAT, n[:1])
    torch.testing.assert_close(attention(n[:1] @ wq, ctx @ wk, ctx @ wv, heads=4), own)
    other = self_attention_context(n[:1], InjectionMode.CONCAT, n[1:])
    assert ctx.shape[1] == 2 * n.shape[1]
    assert not torch.allclose(attention(n[:1] @ wq, other @ wk, other @ wv, heads=4), own)


def test_compose_selects_base_outside_and_reference_inside_their_masks():
    base = torch.arange(6.0).reshape(1, 6, 1)
    ref = 100 + torch.arange(6.0).reshape(1, 6, 1)
    keep_base = torch.tensor([1, 1, 0, 0, 1, 1], dtype=torch.bool)
    keep_ref = torch.tensor([0, 0, 1, 1, 0, 0], dtype=torch.bool)
    ctx = self_attention_context(torch.zeros(2, 6, 1), InjectionMode.COMPOSE, base, ref, keep_base, keep_ref)
    assert ctx.shape == (2, 6, 1)
    assert ctx[0, :, 0].tolist() == [0, 1, 4, 5, 102, 103]


def test_token_grid_handles_non_square_and_odd_levels():
    assert token_grid((12, 16), 12 * 16) == (12, 16)
    assert token_grid((12, 16), 6 * 8) == (6, 8)
    assert token_grid((10, 14), 5 * 7) == (5, 7)
    assert token_grid((10, 14), 3 * 4) == (3, 4)
    with pytest.raises(ValueError):
        token_grid((12, 16), 7)


def test_memory_bank_records_by_policy_reports_bytes_and_refuses_other_sigmas():
    sigmas = torch.tensor([10.0, 5.0, 1.0, 0.0])
    bank = MemoryBank(sigmas, (1, 4, 8, 8), "toy", BankPolicy(attention_steps=frozenset({1, 2}), feature_steps=frozenset({0})))
    bank.latents = [torch.zeros(1, 4, 8, 8) for _ in range(4)]
    for step in range(3):
        bank.record_attention(step, "3.0", torch.ones(1, 64, 32))
        bank.record_features(step, [torch.ones(1, 8, 4, 4)])
    assert sorted(bank.attention) == [(1, "3.0"), (2, "3.0")] and list(bank.features) == [0]
    assert bank.attention[(1, "3.0")].dtype == torch.float16
    assert bank.nbytes() == 4 * 256 * 4 + 2 * 64 * 32 * 2 + 128 * 2
    assert bank.step_index(5.0) == 1 and bank.step_index(5.3) is None
    with pytest.raises(ValueError, match="other sigmas"):
        bank.check_compatible(torch.tensor([10.0, 4.0, 1.0, 0.0]), (1, 4, 8, 8))
    with pytest.raises(ValueError, match="latent"):
        bank.check_compatible(sigmas, (1, 4, 16, 8))
    bank.release()
    with pytest.raises(ValueError, match="empty"):
        bank.check_compatible(sigmas, (1, 4, 8, 8))


def test_int8_bank_halves_float16_and_stays_within_its_error_bound():
    sigmas = torch.tensor([10.0, 5.0, 0.0])
    tokens = torch.randn(1, 256, 320) * torch.linspace(0.1, 10, 256)[None, :, None]
    banks = {}
    for dtype in (torch.float16, torch.int8):
        bank = MemoryBank(sigmas, (1, 4, 16, 16), "toy", BankPolicy(dtype=dtype, record_features=False))
        bank.record_attention(0, "3.0", tokens)
        banks[dtype] = bank
    restored = banks[torch.int8].attention_at(0, "3.0")
    bound = tokens.abs().amax(-1, keepdim=True) / 254 + 1e-6
    assert ((restored - tokens).abs() <= bound).all()
    assert banks[torch.int8].nbytes() < 0.52 * banks[torch.float16].nbytes()

"""The bank's layer map read from full-size SD-1.5 and SDXL UNets (module trees on the meta device: no weights),
the default policy it gives at their native sizes, and a recording made with a restricted policy
(docs/LAYER_MAP.md)."""
import pytest
import torch

SD15_LAYERS = {**{f"{b}.0": (4, 1280) for b in (3, 4, 5)}, **{f"{b}.0": (2, 640) for b in (6, 7, 8)},
               **{f"{b}.0": (1, 320) for b in (9, 10, 11)}}
SDXL_LAYERS = {**{f"{b}.{k}": (4, 1280) for b in (0, 1, 2) for k in range(10)},
               **{f"{b}.{k}": (2, 640) for b in (3, 4, 5) for k in range(2)}}


@pytest.fixture(scope="module")
def adapter(dragon_pack):
    return dragon_pack.nodes


def layer_map(layout):
    return {layer.name: (layer.downscale, layer.channels) for layer in layout.attention_layers}


def test_full_size_layer_maps(comfy_host, adapter):
    from dragon_dev import tiny_model as tm

    sd15 = adapter.unet_layout.unet_layout(tm.layout_only_model(tm.sd15_config()))
    assert sd15.feature_blocks == (6, 9) and layer_map(sd15) == SD15_LAYERS
    sdxl = adapter.unet_layout.unet_layout(tm.layout_only_model(tm.sdxl_config()))
    assert sdxl.feature_blocks == (3, 6) and layer_map(sdxl) == SDXL_LAYERS
    assert sdxl.decoder_attention == tuple(SDXL_LAYERS)


def test_default_bank_at_native_sizes(comfy_host, adapter):
    """No DragonBankOptions: SD-1.5 at 512 px records every layer; SDXL at 1024 px its 64x64 level, within 1 GB."""
    from dragon_dev import tiny_model as tm
    from dragon_pack.dragon_core.memory_bank import DEFAULT_BANK_BUDGET_BYTES, estimate_bank_bytes

    for config, side, expected in ((tm.sd15_config(), 64, None),
                                   (tm.sdxl_config(), 128, {n for n, (d, _) in SDXL_LAYERS.items() if d == 2})):
        model = tm.layout_only_model(config)
        latent = {"samples": torch.zeros(1, 4, side, side)}
        policy = adapter.inversion_nodes.policy_from_options(None, 50, model, latent)
        assert policy.dtype == torch.int8 and not policy.record_features
        assert policy.attention_layers == (None if expected is None else frozenset(expected))
        layers = adapter.unet_layout.unet_layout(model).attention_layers
        assert estimate_bank_bytes(policy, layers, (1, 4, side, side), 50) <= DEFAULT_BANK_BUDGET_BYTES


def test_a_restricted_default_records_exactly_its_levels(comfy_host, adapter):
    """On the narrowed SDXL of test_architectures (the same levels and transformer placement), a budget that
    admits only the finest attended level: the inversion records those layers at every step and nothing else,
    and the bank weighs what the estimate says."""
    from dragon_dev import tiny_model as tm
    from dragon_pack.dragon_core.memory_bank import default_policy, estimate_bank_bytes

    model = tm.build_narrow_sdxl(seed=0)
    layers = adapter.unet_layout.unet_layout(model).attention_layers
    shape, steps = (1, 4, 16, 16), 4
    finest = {layer.name for layer in layers if layer.downscale == 2}
    budget = estimate_bank_bytes(default_policy(layers, shape, steps, "cpu", budget=1), layers, shape, steps)
    budget += steps * sum(l.tokens(shape[-2:]) * (l.channels + 4) for l in layers if l.name in finest)
    policy = default_policy(layers, shape, steps, "cpu", budget=budget)
    assert policy.attention_layers == frozenset(finest) == {"3.0", "4.0", "5.0"}
    with torch.inference_mode():
        bank, _ = adapter.samplers.run_inversion(model, {"samples": torch.randn(shape)}, tm.sdxl_conditioning(1, 10),
                                                 steps, policy)
    assert {key for key in bank.attention} == {(step, name) for step in range(steps) for name in finest}
    assert bank.nbytes() == estimate_bank_bytes(policy, layers, shape, steps)

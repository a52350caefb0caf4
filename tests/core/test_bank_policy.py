"""The bank's size from a layer map, and the default policy's budget (docs/LAYER_MAP.md)."""
import torch

from dragon_core.memory_bank import (DEFAULT_BANK_BUDGET_BYTES, AttentionLayer, BankPolicy, MemoryBank,
                                     default_policy, estimate_bank_bytes)

# The layer maps of docs/LAYER_MAP.md: (name, latent cells per token side, channels).
SD15 = ([AttentionLayer(f"{b}.0", 4, 1280) for b in (3, 4, 5)] + [AttentionLayer(f"{b}.0", 2, 640) for b in (6, 7, 8)]
        + [AttentionLayer(f"{b}.0", 1, 320) for b in (9, 10, 11)])
SDXL = ([AttentionLayer(f"{b}.{k}", 4, 1280) for b in (0, 1, 2) for k in range(10)]
        + [AttentionLayer(f"{b}.{k}", 2, 640) for b in (3, 4, 5) for k in range(2)])
SDXL_FINEST = frozenset(f"{b}.{k}" for b in (3, 4, 5) for k in range(2))


def test_estimate_matches_the_layer_map_arithmetic():
    latent = (1, 4, 128, 128)  # SDXL at 1024 px
    latents = 51 * 4 * 128 * 128 * 4
    fp16 = estimate_bank_bytes(BankPolicy(dtype=torch.float16, record_features=False), SDXL, latent, 50)
    assert fp16 == latents + 50 * 55_050_240 * 2  # 30*1024*1280 + 6*4096*640 values a step
    int8 = estimate_bank_bytes(BankPolicy(dtype=torch.int8, record_features=False), SDXL, latent, 50)
    assert int8 == latents + 50 * (55_050_240 + (30 * 1024 + 6 * 4096) * 4)
    later = BankPolicy(dtype=torch.int8, attention_steps=frozenset(range(5, 50)))
    assert estimate_bank_bytes(later, SDXL, latent, 50) == latents + 45 * (int8 - latents) // 50


def test_estimate_equals_a_recorded_bank():
    """The estimate is what MemoryBank.nbytes reports once every layer of every step has been recorded."""
    latent = (1, 4, 12, 10)  # odd sizes: tokens round up at every level
    layers = [AttentionLayer("0.0", 4, 16), AttentionLayer("1.0", 2, 8), AttentionLayer("1.1", 2, 8),
              AttentionLayer("2.0", 1, 4)]
    for policy in (BankPolicy(dtype=torch.int8, record_features=False),
                   BankPolicy(dtype=torch.float16, record_features=False, attention_layers=frozenset({"1.1", "2.0"})),
                   BankPolicy(dtype=torch.float32, record_features=False, attention_steps=frozenset({1, 3}))):
        bank = MemoryBank(sigmas=torch.linspace(10, 0, 6), latent_shape=latent, model_tag="t", policy=policy)
        bank.latents[:] = [torch.zeros(latent) for _ in range(6)]
        for step in range(5):
            for layer in layers:
                bank.record_attention(step, layer.name, torch.randn(1, layer.tokens((12, 10)), layer.channels))
        assert bank.nbytes() == estimate_bank_bytes(policy, layers, latent, 5), policy


def test_default_policy_keeps_every_sd15_layer_at_512_px():
    policy = default_policy(SD15, (1, 4, 64, 64), 50, "cpu")
    assert policy.dtype == torch.int8 and policy.attention_layers is None and not policy.record_features
    assert estimate_bank_bytes(policy, SD15, (1, 4, 64, 64), 50) < 400 * 10 ** 6


def test_default_policy_fits_sdxl_at_1024_px_in_the_budget_with_its_finest_level():
    latent = (1, 4, 128, 128)
    policy = default_policy(SDXL, latent, 50, "cpu")
    assert policy.attention_layers == SDXL_FINEST and policy.record_attention and policy.dtype == torch.int8
    size = estimate_bank_bytes(policy, SDXL, latent, 50)
    assert size <= DEFAULT_BANK_BUDGET_BYTES < estimate_bank_bytes(BankPolicy(dtype=torch.int8), SDXL, latent, 50)
    # at 512 px every layer fits; at 768 px (1.6 GB for all) the coarse level does not
    assert default_policy(SDXL, (1, 4, 64, 64), 50, "cpu").attention_layers is None
    assert default_policy(SDXL, (1, 4, 96, 96), 50, "cpu").attention_layers == SDXL_FINEST
    # a budget below the finest level: nothing but the latents, the inversion branch recomputed per step
    lean = default_policy(SDXL, latent, 50, "cpu", budget=10 ** 8)
    assert not lean.record_attention and estimate_bank_bytes(lean, SDXL, latent, 50) == 51 * 4 * 128 * 128 * 4


def test_a_layer_left_out_is_not_recorded():
    policy = BankPolicy(dtype=torch.float16, attention_layers=frozenset({"3.0"}))
    assert policy.wants_attention(7) and policy.wants_attention(7, "3.0") and not policy.wants_attention(7, "0.0")
    bank = MemoryBank(sigmas=torch.linspace(1, 0, 3), latent_shape=(1, 4, 8, 8), model_tag="t", policy=policy)
    bank.record_attention(0, "0.0", torch.ones(1, 4, 8))
    bank.record_attention(0, "3.0", torch.ones(1, 4, 8))
    assert set(bank.attention) == {(0, "3.0")}

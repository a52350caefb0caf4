"""The layer map on real ComfyUI architectures (random weights, CPU), see docs/LAYER_MAP.md.

- SD-1.5: the real UNet (comfy.supported_models.SD15, 860 M parameters) at a 16x16 latent (128x128 image),
  3 steps: the nodes run inversion, a drag edit and a move edit end to end; the layout, the bank's layers and
  shapes, and the early stop of the feature pass are checked on the real module tree. The end-to-end run is
  marked slow; the layout check on the real module tree runs in every run (-m "not slow" included).
- SD-2.x: comfy.supported_models.SD20 (linear transformer projections, 64-channel heads) with narrower channels.
- SDXL: comfy.supported_models.SDXL / comfy.model_base.SDXL with SDXL's level and transformer layout (no
  attention at level 0, several transformer blocks per decoder block, the label embedding fed by pooled_output,
  width and height) but narrow channels and shallower transformers: the real one (2.6 B parameters, ~10 GB in
  fp32, twice that while loading) does not fit beside the other jobs on this 24 GB machine.
- Anything else (a flow DiT such as Flux, an eps model whose diffusion_model is not a UNet) is refused with a
  node error that names the model.
"""
import importlib
import time
import types

import pytest
import torch

STEPS = 3
IMAGE = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(0))  # latent 16x16
DRAG_JSON = '{"points": [[40, 40, 72, 56]], "strokes": [[60, 50, 30, 1]]}'
MOVE_JSON = '{"boxes": [[32, 32, 32, 32]]}'
SD15_DECODER_ATTENTION = tuple(f"{b}.0" for b in range(3, 12))


@pytest.fixture
def nodes(dragon_pack):
    return dragon_pack.NODE_CLASS_MAPPINGS


@pytest.fixture(scope="module")
def adapter(dragon_pack):
    """What these tests read of the ComfyUI layer: the UNet layout and the names of the patches' passes."""
    layout = importlib.import_module("dragon_pack.nodes.unet_layout")
    patches = importlib.import_module("dragon_pack.nodes.patches")
    return types.SimpleNamespace(unet_layout=layout.unet_layout, PASS_KEY=patches.PASS_KEY, RECORD=patches.RECORD,
                           FEATURES=patches.FEATURES, EDIT=patches.EDIT)


@pytest.fixture(scope="module")
def sd15(comfy_host):
    """The real SD-1.5 UNet with seeded random weights, built once for the module (~12 s on 2 idle cores)."""
    from dragon_dev import tiny_model as tm

    start = time.perf_counter()
    model = tm.build_model(tm.sd15_config(), seed=0)
    return types.SimpleNamespace(model=model, build_s=time.perf_counter() - start,
                                 positive=tm.conditioning(1, tokens=77, context_dim=768),
                                 negative=tm.conditioning(2, tokens=77, context_dim=768))


def latent(seed: int = 3):
    return {"samples": torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(seed))}


def bank_options(steps=STEPS, dtype="float16"):
    with torch.inference_mode():
        node = importlib.import_module("dragon_pack.nodes.inversion_nodes").DragonBankOptions()
        return node.build(dtype, "offload device", True, 0, True, steps)[0]


def invert(nodes, model, the_latent, positive, steps=STEPS, options=None):
    with torch.inference_mode():
        return nodes["DragonDDIMInversion"]().invert(model, the_latent, positive, steps, options)["result"]


def sample(nodes, model, positive, negative, bank, edit):
    with torch.inference_mode():
        return nodes["DragonSampler"]().sample(model, positive, negative, bank, edit, 0, 4.0)[0]["samples"]


def edits(nodes):
    with torch.inference_mode():
        return {"drag": nodes["DragonEditDrag"]().build(IMAGE, DRAG_JSON)[0],
                "move": nodes["DragonEditMove"]().build(IMAGE, 24, 16, 1.0, MOVE_JSON)[0]}


def block_recorder(model, adapter):
    """A clone of ``model`` whose output_block_patch logs (pass, output block index) for every decoder block
    that starts. Registered before the pack's patches, so it sees a block even where the pack stops the pass."""
    seen = []

    def record(h, hsp, transformer_options):
        seen.append((transformer_options.get(adapter.PASS_KEY), transformer_options["block"][1]))
        return h, hsp

    counted = model.clone()
    counted.set_model_output_block_patch(record)
    return counted, seen


def decoder_transformers(model):
    """{output block index: transformer blocks in it}, read from the module tree."""
    from comfy.ldm.modules.attention import SpatialTransformer

    found = {}
    for b, block in enumerate(model.model.diffusion_model.output_blocks):
        for module in block:
            if isinstance(module, SpatialTransformer):
                found[b] = len(module.transformer_blocks)
    return found


def attention_shapes(bank, step):
    return {layer: tuple(bank.attention_at(s, layer).shape) for s, layer in bank.attention if s == step}


# -- SD-1.5 -------------------------------------------------------------------------------------------


def test_sd15_layout_is_read_from_the_real_unet(sd15, adapter):
    import comfy.model_base

    assert type(sd15.model.model) is comfy.model_base.BaseModel
    assert decoder_transformers(sd15.model) == {b: 1 for b in range(3, 12)}  # diffusers up_blocks 1..3
    layout = adapter.unet_layout(sd15.model)
    assert layout.feature_blocks == (6, 9)
    assert layout.decoder_attention == SD15_DECODER_ATTENTION


@pytest.mark.slow  # ~3 CPU-minutes for inversion + two guided edits of the 860 M-parameter UNet on 2 cores
def test_sd15_inversion_drag_and_move_run_end_to_end(sd15, nodes, adapter):
    counted, seen = block_recorder(sd15.model, adapter)
    timings = {"build": sd15.build_s}

    start = time.perf_counter()
    bank, z_T = invert(nodes, counted, latent(), sd15.positive, options=bank_options())
    timings["inversion"] = time.perf_counter() - start
    assert z_T["samples"].shape == (1, 4, 16, 16) and torch.isfinite(z_T["samples"]).all()

    # Bank: one normalised attention input per decoder self-attention layer and step. Latent 16x16: the encoder
    # runs at 16, 8, 4, 2; decoder blocks 0-2 at 2x2 (no attention), 3-5 at 4x4 with 1280 channels (16 tokens),
    # 6-8 at 8x8 with 640 (64 tokens), 9-11 at 16x16 with 320 (256 tokens).
    expected_tokens = {**{f"{b}.0": (1, 16, 1280) for b in (3, 4, 5)},
                       **{f"{b}.0": (1, 64, 640) for b in (6, 7, 8)},
                       **{f"{b}.0": (1, 256, 320) for b in (9, 10, 11)}}
    for step in range(STEPS):
        assert attention_shapes(bank, step) == expected_tokens, step
    # Features: h entering blocks 6 and 9 = outputs of blocks 5 (upsampled to 8x8, 1280 ch: H/32*2 of the
    # 128 px image) and 8 (upsampled to 16x16, 640 ch: H/16*2).
    assert sorted(bank.features) == list(range(STEPS))
    for feats in bank.features.values():
        assert [tuple(f.shape) for f in feats] == [(1, 1280, 8, 8), (1, 640, 16, 16)]
    # The recording passes run the whole decoder.
    assert {b for kind, b in seen if kind == adapter.RECORD} == set(range(12))

    results = {}
    for name, edit in edits(nodes).items():
        seen.clear()
        start = time.perf_counter()
        results[name] = sample(nodes, counted, sd15.positive, sd15.negative, bank, edit)
        timings[name] = time.perf_counter() - start
        assert results[name].shape == (1, 4, 16, 16) and torch.isfinite(results[name]).all(), name
        features = [b for kind, b in seen if kind == adapter.FEATURES]
        passes = features.count(9)
        assert passes >= 2, (name, passes)  # at least one guided step: inverted + current features
        # Every feature pass runs output blocks 0..9 and stops: blocks 10 and 11 never run in one.
        assert sorted(features) == sorted(list(range(10)) * passes), name
        assert {b for kind, b in seen if kind == adapter.EDIT} == set(range(12)), name
    assert (results["drag"] - results["move"]).abs().max() > 1e-3
    print(f"\nSD-1.5 at 16x16 latent, {STEPS} steps, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


# -- SD-2.x -------------------------------------------------------------------------------------------


def test_sd2_layout_and_a_move_edit(comfy_host, nodes, adapter):
    """SD-2.x base (eps) is the SD-1.x layout with linear projections and 64-channel heads (SD21 config of
    comfy/model_detection.py, channels narrowed from 320 to 64)."""
    import comfy.supported_models
    from dragon_dev import tiny_model as tm

    config = {**tm.SD15_UNET_CONFIG, "model_channels": 64, "context_dim": 64, "use_linear_in_transformer": True,
              "num_head_channels": 64}
    config.pop("num_heads")
    model = tm.build_model(comfy.supported_models.SD20(config), seed=0)
    assert decoder_transformers(model) == {b: 1 for b in range(3, 12)}
    layout = adapter.unet_layout(model)
    assert (layout.feature_blocks, layout.decoder_attention) == ((6, 9), SD15_DECODER_ATTENTION)
    positive, negative = tm.conditioning(1, tokens=8, context_dim=64), tm.conditioning(2, tokens=8, context_dim=64)
    bank, _ = invert(nodes, model, latent(), positive)
    assert {layer for _, layer in bank.attention} == set(SD15_DECODER_ATTENTION)
    out = sample(nodes, model, positive, negative, bank, edits(nodes)["move"])
    assert out.shape == (1, 4, 16, 16) and torch.isfinite(out).all()


# -- SDXL ---------------------------------------------------------------------------------------------

SDXL_DECODER_ATTENTION = ("0.0", "0.1", "1.0", "1.1", "2.0", "2.1", "3.0", "4.0", "5.0")


def sdxl_model():
    from dragon_dev import tiny_model as tm

    return tm.build_narrow_sdxl(seed=0)


def sdxl_conditioning(seed: int, pooled_seed: int):
    from dragon_dev import tiny_model as tm

    return tm.sdxl_conditioning(seed, pooled_seed)


def test_sdxl_layout_conditioning_and_move_edit(comfy_host, nodes, adapter):
    import comfy.model_base

    model = sdxl_model()
    assert type(model.model) is comfy.model_base.SDXL
    assert decoder_transformers(model) == {0: 2, 1: 2, 2: 2, 3: 1, 4: 1, 5: 1}  # none at level 0 (blocks 6-8)
    layout = adapter.unet_layout(model)
    assert layout.feature_blocks == (3, 6)
    assert layout.decoder_attention == SDXL_DECODER_ATTENTION

    positive, negative = sdxl_conditioning(1, 10), sdxl_conditioning(2, 20)
    bank, z_T = invert(nodes, model, latent(), positive, options=bank_options())
    # Latent 16x16: encoder levels 16, 8, 4; decoder blocks 0-2 at 4x4 with 128 channels (16 tokens), 3-5 at 8x8
    # with 64 (64 tokens); features = outputs of blocks 2 (128 ch, upsampled to 8x8) and 5 (64 ch, 16x16).
    expected = {**{layer: (1, 16, 128) for layer in SDXL_DECODER_ATTENTION[:6]},
                **{layer: (1, 64, 64) for layer in SDXL_DECODER_ATTENTION[6:]}}
    assert attention_shapes(bank, 0) == expected
    assert [tuple(f.shape) for f in bank.features[0]] == [(1, 128, 8, 8), (1, 64, 16, 16)]
    # The label embedding is live: another pooled_output inverts to another z_T.
    _, z_T_other = invert(nodes, model, latent(), sdxl_conditioning(1, 11))
    assert (z_T["samples"] - z_T_other["samples"]).abs().max() > 1e-4

    out = sample(nodes, model, positive, negative, bank, edits(nodes)["move"])
    assert out.shape == (1, 4, 16, 16) and torch.isfinite(out).all()


# -- refused ------------------------------------------------------------------------------------------


def test_a_flux_dit_is_refused_by_name(comfy_host, nodes, dragon_pack):
    import comfy.model_base
    import comfy.supported_models
    from dragon_dev import tiny_model as tm

    config = {"image_model": "flux", "in_channels": 16, "out_channels": 16, "vec_in_dim": 32, "context_in_dim": 32,
              "hidden_size": 32, "mlp_ratio": 2.0, "num_heads": 2, "depth": 1, "depth_single_blocks": 1,
              "axes_dim": [4, 6, 6], "theta": 10000, "patch_size": 2, "qkv_bias": True, "guidance_embed": True}
    model = tm.build_model(comfy.supported_models.Flux(config), seed=0)
    assert type(model.model) is comfy.model_base.Flux
    errors = importlib.import_module("dragon_pack.nodes.node_errors")
    with torch.inference_mode(), pytest.raises(errors.DragonNodeError, match=r"Flux is a FLUX model") as info:
        nodes["DragonDDIMInversion"]().invert(model, {"samples": torch.zeros(1, 16, 16, 16)},
                                              [[torch.zeros(1, 8, 32), {}]], STEPS)
    assert info.value.__cause__ is None


def test_an_eps_model_without_a_unet_is_refused_by_name(comfy_host, nodes):
    """An eps-prediction BaseModel whose diffusion_model is a transformer (as PixArt or HunyuanDiT are)."""
    import comfy.model_base
    import comfy.model_patcher
    from dragon_dev import tiny_model as tm

    class TinyDiT(torch.nn.Module):
        dtype = torch.float32

        def forward(self, x, timesteps=None, context=None, **kwargs):
            return x

    class TinyDiTModel(comfy.model_base.BaseModel):
        def __init__(self, model_config):
            super().__init__(model_config, comfy.model_base.ModelType.EPS, unet_model=lambda **kw: TinyDiT())

    model = TinyDiTModel(tm.tiny_config())
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
    errors = importlib.import_module("dragon_pack.nodes.node_errors")
    with torch.inference_mode(), pytest.raises(errors.DragonNodeError) as info:
        nodes["DragonDDIMInversion"]().invert(patcher, latent(), tm.conditioning(1), STEPS)
    message = str(info.value)
    assert "TinyDiTModel" in message and "TinyDiT" in message and "not a UNet" in message, message
    assert info.value.__cause__ is None

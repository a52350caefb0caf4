"""LoRA and ControlNet through the real ComfyUI 0.3.75 nodes (LoraLoaderModelOnly, ControlNetApplyAdvanced),
on the tiny UNet, with every node call under torch.inference_mode() as ComfyUI's executor runs them.

What is checked:
- a LoRA applied by ComfyUI is in effect in all three kinds of UNet pass of an edit (the inversion's recording
  passes, the sampling passes with bank attention, the gradient/feature pass of the energy), and neither the
  base MODEL nor the LoRA MODEL changes;
- the energy gradient goes through weights ComfyUI created under inference mode (a checkpoint's, a LoRA's) without
  copying any of them, and equals the gradient through the same weights as normal tensors;
- ControlNet conditioning flows through inversion and guided sampling, including the energy gradient through
  the control model (whose weights are inference tensors) and ComfyUI's in-place ControlNet residual adds.
"""
import dataclasses
import hashlib
import importlib
import os

import pytest
import torch

STEPS = 4
IMAGE = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(0))  # tiny latent 16x16 (f=8)
HINT = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(9))
MOVE_JSON = '{"boxes": [[32, 32, 32, 32]]}'
LORA_NAME = "dragon_test_tiny_lora.safetensors"


@pytest.fixture
def nodes(dragon_pack):
    return dragon_pack.NODE_CLASS_MAPPINGS


@pytest.fixture(scope="module")
def comfy_nodes(comfy_host):
    """ComfyUI's own top-level ``nodes`` module (nodes.py of the tree, not the pack's ``nodes/`` package)."""
    import nodes as comfy_nodes

    assert os.path.dirname(comfy_nodes.__file__) == str(comfy_host.tree), comfy_nodes.__file__
    return comfy_nodes


@pytest.fixture
def inputs(tiny_model):
    tiny_model.latent = {"samples": torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(3))}
    return tiny_model


# -- helpers -------------------------------------------------------------------------------------------


def _hash_into(h, value) -> None:
    if isinstance(value, torch.Tensor):
        h.update(str((tuple(value.shape), value.dtype)).encode())
        h.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    elif isinstance(value, dict):
        for k in sorted(value, key=repr):
            h.update(repr(k).encode())
            _hash_into(h, value[k])
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}[{len(value)}]".encode())
        for v in value:
            _hash_into(h, v)
    elif hasattr(value, "weights"):  # comfy.weight_adapter LoRAAdapter and friends
        h.update(type(value).__name__.encode())
        _hash_into(h, value.weights)
    else:
        h.update(repr(value).encode())


def fingerprint(model) -> str:
    """Weights, patches (keys, strengths and the LoRA tensors), patches_uuid and model_options of a MODEL.

    ComfyUI keeps a LoRA MODEL's patched weights in the shared nn.Module while it stays loaded (exactly as after
    a KSampler), so the weights are hashed after unloading: what every MODEL sharing the module starts from."""
    import comfy.model_management

    comfy.model_management.unload_all_models()
    h = hashlib.sha256()
    _hash_into(h, dict(model.model.state_dict()))
    _hash_into(h, model.patches)
    h.update(str(model.patches_uuid).encode())
    h.update(repr(model.model_options).encode())
    return h.hexdigest()


def stock_probe(model, positive, negative, latent) -> torch.Tensor:
    """Two euler steps with ComfyUI's own CFGGuider: what a plain KSampler computes with this MODEL."""
    import comfy.samplers

    with torch.inference_mode():
        guider = comfy.samplers.CFGGuider(model)
        guider.set_conds(positive, negative)
        guider.set_cfg(4.0)
        sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "ddim_uniform", 2).cpu()
        return guider.sample(torch.zeros_like(latent), latent * sigmas[0], comfy.samplers.sampler_object("euler"),
                             sigmas, seed=0).clone()


def lora_targets(model) -> dict:
    """{lora key: model weight key} for to_q/to_k/to_v/to_out.0 of every decoder attn1 and attn2."""
    import comfy.lora

    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    targets = {k: v for k, v in key_map.items()
               if k.startswith("lora_unet_output_blocks_") and ("_attn1_" in k or "_attn2_" in k)
               and k.rsplit("_attn", 1)[1][2:] in ("to_q", "to_k", "to_v", "to_out_0")}
    assert len(targets) == 4 * 2 * 4, sorted(targets)  # 4 decoder transformers x (attn1, attn2) x 4 projections
    return targets


def write_lora(model, folder_paths, rank: int = 4, seed: int = 5) -> dict:
    """A kohya-style LoRA file (lora_unet_*.lora_up/.lora_down/.alpha) in ComfyUI's loras folder."""
    import safetensors.torch

    weights = model.model.state_dict()
    gen = torch.Generator().manual_seed(seed)
    lora = {}
    targets = lora_targets(model)
    for key, weight_key in targets.items():
        out_features, in_features = weights[weight_key].shape[:2]
        lora[f"{key}.lora_up.weight"] = torch.randn(out_features, rank, generator=gen) * 0.5
        lora[f"{key}.lora_down.weight"] = torch.randn(rank, in_features, generator=gen) / in_features ** 0.5
        lora[f"{key}.alpha"] = torch.tensor(float(rank))
    folder = folder_paths.get_folder_paths("loras")[0]
    os.makedirs(folder, exist_ok=True)
    safetensors.torch.save_file(lora, os.path.join(folder, LORA_NAME))
    assert LORA_NAME in folder_paths.get_filename_list("loras")
    return targets


def lora_model(comfy_nodes, comfy_host, model, strength: float = 1.0):
    targets = write_lora(model, comfy_host.folder_paths)
    with torch.inference_mode():
        (patched,) = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(model, LORA_NAME, strength)
    assert set(patched.patches) == set(targets.values()) and not model.patches
    return patched, targets


def invert(nodes, model, latent, positive, steps=STEPS, options=None):
    with torch.inference_mode():
        return nodes["DragonDDIMInversion"]().invert(model, latent, positive, steps, options)["result"]


def move_edit(nodes):
    with torch.inference_mode():
        return nodes["DragonEditMove"]().build(IMAGE, 24, 16, 1.0, MOVE_JSON)[0]


def edit(model, positive, negative, bank, the_edit, guidance=None):
    """DragonSampler's work, keeping the guider to read its counters."""
    sampling = importlib.import_module("dragon_pack.nodes.sampling_nodes")
    with torch.inference_mode():
        guider = sampling.make_guider(model, positive, negative, bank, the_edit, 4.0, guidance)
        out = sampling.run_edit(guider, 0).cpu()
    return out, guider


def record_gradients(monkeypatch) -> list:
    """Spy on the energy gradient the guider folds into each guided step."""
    guiders = importlib.import_module("dragon_pack.nodes.guiders")
    grads = []
    real = guiders.energy_gradient

    def spy(*args, **kwargs):
        grads.append(real(*args, **kwargs).detach().clone())
        return grads[-1]

    monkeypatch.setattr(guiders, "energy_gradient", spy)
    return grads


def float_bank_options():
    with torch.inference_mode():
        node = importlib.import_module("dragon_pack.nodes.inversion_nodes").DragonBankOptions()
        return node.build("float32", "offload device", True, 0, False, STEPS)[0]


# -- LoRA ----------------------------------------------------------------------------------------------


def test_lora_is_in_effect_in_every_pass_and_no_model_changes(nodes, comfy_nodes, comfy_host, inputs, monkeypatch):
    base = inputs.model
    lora, _ = lora_model(comfy_nodes, comfy_host, base)
    probe = {name: stock_probe(m, inputs.positive, inputs.negative, inputs.latent["samples"])
             for name, m in (("base", base), ("lora", lora))}
    assert (probe["base"] - probe["lora"]).abs().max() > 1e-3  # ComfyUI itself applies the LoRA
    before = {"base": fingerprint(base), "lora": fingerprint(lora)}

    # 1. recording passes: decoder attention inputs differ only downstream of the first LoRA'd projection.
    banks = {name: invert(nodes, m, inputs.latent, inputs.positive, options=float_bank_options())[0]
             for name, m in (("base", base), ("lora", lora))}
    # The inversion's first UNet pass sees the same latent with both models; its step is the last one.
    first = STEPS - 1
    a = {name: {layer: bank.attention_at(first, layer) for layer in ("0.0", "1.0", "2.0", "3.0")}
         for name, bank in banks.items()}
    assert torch.equal(a["base"]["0.0"], a["lora"]["0.0"])  # attn1 input of block 0 precedes every LoRA layer
    for layer in ("1.0", "2.0", "3.0"):
        assert (a["base"][layer] - a["lora"][layer]).abs().max() > 1e-4, layer

    # 2. gradient pass: on the same bank and start latent, the first energy gradient differs with the LoRA. The
    # guider refuses a bank made with another MODEL (patches included), so the base bank is re-labelled as the
    # LoRA model's for this comparison only: the same recorded bank, seen by both models.
    grads = record_gradients(monkeypatch)
    move = move_edit(nodes)
    model_identity = importlib.import_module("dragon_pack.nodes.model_identity")
    same_bank = {"base": banks["base"],
                 "lora": dataclasses.replace(banks["base"], model_tag=model_identity.model_tag(lora))}
    out_base_bank = {}
    for name, m in (("base", base), ("lora", lora)):
        grads.clear()
        out_base_bank[name], _ = edit(m, inputs.positive, inputs.negative, same_bank[name], move)
        first_grad = grads[0]
        assert torch.isfinite(first_grad).all() and first_grad.abs().max() > 0, name
        out_base_bank[name + "_grad"] = first_grad
    assert (out_base_bank["base_grad"] - out_base_bank["lora_grad"]).abs().max() > 1e-3 * out_base_bank["base_grad"].abs().max()

    # 3. the whole edit with each model's own bank (sampling passes with bank attention included).
    out = {name: edit(m, inputs.positive, inputs.negative, banks[name], move)[0] for name, m in (("base", base), ("lora", lora))}
    for name, value in out.items():
        assert value.shape == (1, 4, 16, 16) and torch.isfinite(value).all(), name
    assert (out["base"] - out["lora"]).abs().max() > 1e-2

    # Neither MODEL changed: same fingerprint, and ComfyUI samples exactly as before with each of them.
    assert {"base": fingerprint(base), "lora": fingerprint(lora)} == before
    for name, m in (("base", base), ("lora", lora)):
        assert torch.equal(stock_probe(m, inputs.positive, inputs.negative, inputs.latent["samples"]), probe[name]), name


class WeightCopyCounter:
    """Torch dispatch mode counting the bytes of every copy read from the given models' weights (clone, _to_copy,
    copy_ from them): what a whole-model copy, or per-layer casts, would make."""

    def __init__(self, *models):
        from torch.utils._python_dispatch import TorchDispatchMode

        storages = {t.untyped_storage().data_ptr() for m in models
                    for t in list(m.model.parameters()) + list(m.model.buffers())}
        self.largest_weight = max(p.numel() * p.element_size() for m in models for p in m.model.parameters())
        self.bytes = 0
        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                name = func.overloadpacket.__name__
                source = args[1] if name == "copy_" else (args[0] if name in ("clone", "_to_copy") else None)
                if isinstance(source, torch.Tensor) and source.untyped_storage().data_ptr() in storages:
                    counter.bytes += source.numel() * source.element_size()
                return func(*args, **kwargs)

        self.mode = Mode()


def test_energy_gradient_through_inference_weights_copies_no_weight(nodes, comfy_nodes, comfy_host, inputs,
                                                                    monkeypatch):
    """A checkpoint loader builds every weight under inference mode, a LoRA MODEL re-patches its weights there:
    the energy gradient through them equals the one through the same weights built as normal tensors (the
    ground truth autograd gives without any workaround), agrees with finite differences, and no weight is copied
    (not the model, not a layer), and the shared model keeps its own inference tensors."""
    from dragon_dev import tiny_model as tm

    with torch.inference_mode():
        frozen = tm.build_tiny_model(seed=0)
    normal = tm.build_tiny_model(seed=0)
    unet = frozen.model.diffusion_model
    assert all(p.is_inference() for p in unet.parameters())
    assert not any(p.is_inference() for p in normal.model.diffusion_model.parameters())
    lora, _ = lora_model(comfy_nodes, comfy_host, frozen)
    move = move_edit(nodes)
    grads = record_gradients(monkeypatch)
    first, counters = {}, {}
    for name, model in (("normal", normal), ("frozen", frozen), ("lora", lora)):
        bank, _ = invert(nodes, model, inputs.latent, inputs.positive)
        grads.clear()
        counters[name] = WeightCopyCounter(model)
        with counters[name].mode:
            edit(model, inputs.positive, inputs.negative, bank, move)
        first[name] = grads[0]
    scale = first["normal"].abs().max()
    assert scale > 0
    torch.testing.assert_close(first["frozen"], first["normal"], rtol=1e-4, atol=1e-5 * scale)
    assert (first["lora"] - first["frozen"]).abs().max() > 1e-3 * scale  # the LoRA'd weights are the ones used
    for name, counter in counters.items():  # the old route copied the whole UNet (every parameter and buffer)
        assert counter.bytes <= 2 * counter.largest_weight, (name, counter.bytes, counter.largest_weight)
    assert counters["frozen"].bytes == 0 and counters["lora"].bytes == 0
    assert all(p.is_inference() for p in unet.parameters())


def test_feature_gradient_through_inference_weights_matches_finite_differences(nodes, inputs, monkeypatch):
    """The gradient of a random projection of the feature maps, taken inside the guider's gradient context on an
    inference-mode model, against a central difference along a random direction."""
    from dragon_dev import tiny_model as tm

    guiders = importlib.import_module("dragon_pack.nodes.guiders")
    with torch.inference_mode():
        model = tm.build_tiny_model(seed=0)
    checks = []
    real = guiders.energy_gradient

    def spy(features, x, sigma, *args, **kwargs):
        if not checks:
            gen = torch.Generator().manual_seed(4)
            probes = [torch.randn(f.shape, generator=gen) for f in features(x.detach(), sigma)]
            direction = torch.randn(x.shape, generator=gen)

            def value(xx):
                return sum((f.double() * p.double()).sum() for f, p in zip(features(xx, sigma), probes))

            xg = x.detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(value(xg), xg)
            eps = 1e-2
            with torch.no_grad():
                fd = (value(x + eps * direction) - value(x - eps * direction)) / (2 * eps)
            checks.append((float((grad * direction).sum()), float(fd)))
        return real(features, x, sigma, *args, **kwargs)

    monkeypatch.setattr(guiders, "energy_gradient", spy)
    bank, _ = invert(nodes, model, inputs.latent, inputs.positive)
    edit(model, inputs.positive, inputs.negative, bank, move_edit(nodes))
    analytic, numeric = checks[0]
    assert abs(numeric) > 0
    assert abs(analytic - numeric) <= 2e-3 * abs(numeric), (analytic, numeric)


# -- ControlNet ----------------------------------------------------------------------------------------


def build_controlnet(seed: int = 11, residual_scale: float = 0.1):
    """A ControlNet for the tiny UNet with seeded weights, built the way comfy.controlnet.load_controlnet_state_dict
    builds one from a checkpoint (comfy.cldm.cldm.ControlNet + load_state_dict + comfy.controlnet.ControlNet),
    under inference mode as the ControlNetLoader node runs.

    The checkpoint loader itself cannot build it: its config detection assumes 64 channels per attention head,
    which the 32-channel tiny UNet cannot have. The zero convolutions (zero at the start of ControlNet training)
    are random here, scaled by ``residual_scale`` so that the control perturbs rather than swamps the UNet."""
    import comfy.cldm.cldm
    import comfy.controlnet
    import comfy.model_management
    import comfy.ops
    from dragon_dev import tiny_model as tm

    config = {k: v for k, v in tm.TINY_UNET_CONFIG.items() if k != "out_channels"}
    config.update(hint_channels=3, num_heads=-1, num_head_channels=16, operations=comfy.ops.disable_weight_init,
                  dtype=torch.float32, device=comfy.model_management.unet_offload_device())
    with torch.inference_mode():
        control_model = comfy.cldm.cldm.ControlNet(**config)
        state = tm.seeded_state_dict(control_model, seed)
        for key in state:
            if key.startswith(("zero_convs.", "middle_block_out.")):
                state[key] = state[key] * residual_scale
        missing, unexpected = control_model.load_state_dict(state, strict=True)
        assert not missing and not unexpected
        return comfy.controlnet.ControlNet(control_model, load_device=comfy.model_management.get_torch_device(),
                                           manual_cast_dtype=None)


def test_controlnet_conditioning_flows_through_inversion_and_guided_sampling(nodes, comfy_nodes, inputs, monkeypatch):
    model = inputs.model
    before = fingerprint(model)
    control = build_controlnet()
    assert all(p.is_inference() for p in control.control_model.parameters())

    conds = {}
    with torch.inference_mode():
        for strength in (1.0, 0.5):
            conds[strength] = comfy_nodes.ControlNetApplyAdvanced().apply_controlnet(
                inputs.positive, inputs.negative, control, HINT, strength, 0.0, 1.0)
    assert "control" in conds[1.0][0][0][1] and "control" in conds[1.0][1][0][1]
    conds[0.0] = (inputs.positive, inputs.negative)

    move = move_edit(nodes)
    grads = record_gradients(monkeypatch)
    # Same bank (inverted without control) for the three: the first guided step sees the same latent, so a
    # different gradient there can only come from the control in the feature pass.
    plain_bank, _ = invert(nodes, model, inputs.latent, inputs.positive)
    first_grad, plain_bank_out = {}, {}
    for strength, (positive, negative) in conds.items():
        grads.clear()
        plain_bank_out[strength], guider = edit(model, positive, negative, plain_bank, move)
        first_grad[strength] = grads[0]
        assert torch.isfinite(first_grad[strength]).all() and first_grad[strength].abs().max() > 0
    scale = first_grad[0.0].abs().max()
    assert (first_grad[1.0] - first_grad[0.0]).abs().max() > 1e-3 * scale
    assert (first_grad[1.0] - first_grad[0.5]).abs().max() > 1e-3 * scale
    scale = plain_bank_out[0.0].abs().max()
    for strength, value in plain_bank_out.items():
        assert value.shape == (1, 4, 16, 16) and torch.isfinite(value).all(), strength
    assert (plain_bank_out[1.0] - plain_bank_out[0.0]).abs().max() > 1e-2 * scale
    assert (plain_bank_out[1.0] - plain_bank_out[0.5]).abs().max() > 1e-2 * scale

    # The whole pipeline under control: inversion with the controlled prompt (the control acts in the
    # recording passes too: another bank), then the edit.
    positive, negative = conds[1.0]
    bank, _ = invert(nodes, model, inputs.latent, positive)
    assert (bank.latents[0] - plain_bank.latents[0]).abs().max() > 1e-3
    controlled, _ = edit(model, positive, negative, bank, move)
    assert controlled.shape == (1, 4, 16, 16) and torch.isfinite(controlled).all()
    assert (controlled - plain_bank_out[0.0]).abs().max() > 1e-2 * scale
    assert fingerprint(model) == before

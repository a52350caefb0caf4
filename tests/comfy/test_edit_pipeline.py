"""Every node and edit mode on the real ComfyUI in-process (tiny UNet, CPU, under inference mode as nodes run)."""
import hashlib
import importlib

import pytest
import torch

STEPS = 8
IMAGE = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(0))  # the tiny latent is 16x16 (f=8)


def guidance(**over):
    """DragonGuidanceOptions' output at its widget defaults, with ``over`` applied."""
    sampling_nodes = importlib.import_module("dragon_pack.nodes.sampling_nodes")
    return {**sampling_nodes.guidance_option_defaults(), **over}


@pytest.fixture
def nodes(dragon_pack):
    return dragon_pack.NODE_CLASS_MAPPINGS


@pytest.fixture
def inputs(tiny_model):
    g = torch.Generator().manual_seed(3)
    tiny_model.latent = {"samples": torch.randn(1, 4, 16, 16, generator=g)}
    return tiny_model


def bank_options(**over):
    options = dict(dtype="int8", storage="offload device", record_attention=True, attention_from_step=0,
                   record_features=False, feature_until_step=round(STEPS * 0.6))
    options.update(over)
    with torch.inference_mode():
        import importlib
        node = importlib.import_module("dragon_pack.nodes.inversion_nodes").DragonBankOptions()
        return node.build(**options)[0]


def invert(nodes, t, steps=STEPS, options=None):
    with torch.inference_mode():
        out = nodes["DragonDDIMInversion"]().invert(t.model, t.latent, t.positive, steps, options)
    return out["result"]


def mask_box(x, y, w, h, size=128):
    m = torch.zeros(1, size, size)
    m[:, y:y + h, x:x + w] = 1
    return m


def make_edits(nodes, bank):
    with torch.inference_mode():
        return {
            "move": nodes["DragonEditMove"]().build(IMAGE, 24, 16, 1.0, '{"boxes": [[32, 32, 32, 32]]}')[0],
            "resize": nodes["DragonEditMove"]().build(IMAGE, 8, 8, 1.4, "{}", mask_box(32, 32, 32, 32))[0],
            "drag": nodes["DragonEditDrag"]().build(IMAGE, '{"points": [[40, 40, 72, 56]], "strokes": [[60, 50, 30, 1]]}')[0],
            "appearance": nodes["DragonEditAppearance"]().build(IMAGE, IMAGE, bank, mask_box(72, 72, 32, 32),
                                                                 '{"boxes": [[16, 16, 32, 32]]}')[0],
            "paste": nodes["DragonEditPaste"]().build(IMAGE, IMAGE, bank, mask_box(72, 72, 32, 32), -40, -40, 0.8)[0],
        }


def fingerprint(model) -> str:
    """Hash of everything an edit must leave alone: weights, patches and model_options of the MODEL."""
    h = hashlib.sha256()
    for name, t in sorted(model.model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().numpy().tobytes())
    h.update(repr(sorted(model.patches)).encode())
    h.update(repr(model.model_options).encode())
    return h.hexdigest()


def test_inversion_records_the_bank_in_the_inversions_own_unet_passes(nodes, inputs):
    calls = []
    counted = inputs.model.clone()  # the wrapper goes on a clone: the test must not mutate the shared MODEL either
    import comfy.patcher_extension

    def count(executor, *args, **kwargs):
        calls.append(1)
        return executor(*args, **kwargs)

    counted.add_wrapper(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, count)
    inputs.model = counted
    bank, z_T = invert(nodes, inputs, options=bank_options(record_features=True, dtype="float16"))
    assert len(calls) == STEPS  # one UNet pass per step records latents, attention and features
    assert bank.steps == STEPS and len(bank.latents) == STEPS + 1
    layers = {layer for _, layer in bank.attention}
    assert len(layers) == 4 and len(bank.attention) == 4 * STEPS
    assert sorted(bank.features) == list(range(round(STEPS * 0.6)))
    assert all(len(f) == 2 for f in bank.features.values())
    assert bank.nbytes() > 0
    # z_T is x_T in the LATENT convention (before process_latent_in)
    x_T = inputs.model.model.process_latent_in(z_T["samples"])
    torch.testing.assert_close(x_T, bank.latents[0])


@pytest.mark.parametrize("mode", ["move", "resize", "drag", "appearance", "paste"])
@pytest.mark.parametrize("schedule", ["DragonDiffusion", "DiffEditor"])
def test_every_mode_runs_and_leaves_the_model_untouched(nodes, inputs, mode, schedule):
    before = fingerprint(inputs.model)
    bank, _ = invert(nodes, inputs)
    edit = make_edits(nodes, bank)[mode]
    with torch.inference_mode():
        (out,) = nodes["DragonSampler"]().sample(inputs.model, inputs.positive, inputs.negative, bank, edit, 0, 4.0,
                                                 guidance(schedule=schedule))
    assert out["samples"].shape == (1, 4, 16, 16) and torch.isfinite(out["samples"]).all()
    assert fingerprint(inputs.model) == before


def test_guidance_and_attention_change_the_result_and_zero_guidance_is_plain_cfg_ddim(nodes, inputs):
    import comfy.samplers

    bank, _ = invert(nodes, inputs)
    edit = make_edits(nodes, bank)["appearance"]  # appearance starts from the unmodified x_T
    sampler = nodes["DragonSampler"]()
    with torch.inference_mode():
        full = sampler.sample(inputs.model, inputs.positive, inputs.negative, bank, edit, 0, 4.0, guidance())[0]
        bare = sampler.sample(inputs.model, inputs.positive, inputs.negative, bank, edit, 0, 4.0,
                              guidance(energy_scale=0.0, cross_branch_attention=False, keep_background=0.0,
                                       keep_object=0.0))[0]
        guider = comfy.samplers.CFGGuider(inputs.model)
        guider.set_conds(inputs.positive, inputs.negative)
        guider.set_cfg(4.0)
        (z_T,) = nodes["DragonStartLatent"]().get(inputs.model, bank, edit)
        plain_cfg = guider.sample(torch.zeros_like(z_T["samples"]), z_T["samples"], comfy.samplers.sampler_object("euler"),
                                  bank.sigmas.clone())
    torch.testing.assert_close(bare["samples"], plain_cfg, rtol=1e-4, atol=1e-4)
    assert (full["samples"] - bare["samples"]).abs().max() > 1e-2


def test_background_lock_keeps_the_unedited_part_on_the_inversion_trajectory(nodes, inputs):
    bank, _ = invert(nodes, inputs)
    edit = make_edits(nodes, bank)["move"]  # box at latent cells 4..8, moved by (3, 2) cells
    sampler = nodes["DragonSampler"]()
    with torch.inference_mode():
        def outside_error(keep) -> float:
            options = guidance(keep_background=keep)
            if keep is None:  # options saved before the input existed (it is optional): the default, 1.0
                del options["keep_background"]
            out = sampler.sample(inputs.model, inputs.positive, inputs.negative, bank, edit, 0, 4.0,
                                 options)[0]["samples"]
            diff = (out - inputs.latent["samples"]).abs()
            diff[..., 2:13, 2:13] = 0  # the edit region with its margin
            return float(diff.sum() / (diff > 0).sum())

        free, locked, unset = outside_error(0.0), outside_error(1.0), outside_error(None)
    assert locked < 0.25 * free, (locked, free)
    assert unset == locked


def test_object_lock_carries_the_object_along_its_inversion_and_recolours_appearance(nodes, inputs):
    bank, _ = invert(nodes, inputs)
    edits = make_edits(nodes, bank)
    sampler = nodes["DragonSampler"]()
    process_in = inputs.model.model.process_latent_in
    with torch.inference_mode():
        def run(mode, keep_object):
            options = guidance(keep_object=keep_object)
            (guider,) = nodes["DragonGuider"]().build(inputs.model, inputs.positive, inputs.negative, bank,
                                                       edits[mode], 4.0, options)
            out = sampler.sample(inputs.model, inputs.positive, inputs.negative, bank, edits[mode], 0, 4.0,
                                 options)[0]["samples"]
            return guider, process_in(out)

        def carried_error(keep_object) -> float:
            guider, out = run("move", keep_object)
            cells = guider.object_lock.keep.bool()
            return float((out - guider.carried_inversion(bank.steps))[..., cells].abs().mean())

        free, locked = carried_error(0.0), carried_error(1.0)
        assert locked < 0.5 * free, (locked, free)

        def object_mean_error(keep_object) -> float:
            guider, out = run("appearance", keep_object)
            g = guider.run.geometry
            inside, ref_inside = g.latent_cover >= 0.999, g.reference_latent_cover >= 0.999
            wanted = bank.latents[-1][..., ref_inside].mean(-1)
            return float((out[..., inside].mean(-1) - wanted).abs().max())

        assert object_mean_error(1.0) < 0.5 * object_mean_error(0.0)


def test_guider_under_a_stock_sampler_equals_the_dragon_sampler(nodes, inputs):
    import comfy.samplers

    bank, _ = invert(nodes, inputs)
    edit = make_edits(nodes, bank)["move"]
    with torch.inference_mode():
        ours = nodes["DragonSampler"]().sample(inputs.model, inputs.positive, inputs.negative, bank, edit, 0, 4.0)[0]
        (guider,) = nodes["DragonGuider"]().build(inputs.model, inputs.positive, inputs.negative, bank, edit, 4.0)
        (sigmas,) = nodes["DragonBankSigmas"]().get(bank)
        (latent,) = nodes["DragonStartLatent"]().get(inputs.model, bank, edit)
        stock = guider.sample(torch.zeros_like(latent["samples"]), latent["samples"],
                              comfy.samplers.sampler_object("ddim"), sigmas, seed=0)
    torch.testing.assert_close(stock, ours["samples"], rtol=1e-4, atol=1e-4)


def test_same_inputs_give_bit_identical_results(nodes, inputs):
    bank, _ = invert(nodes, inputs)
    edit = make_edits(nodes, bank)["drag"]
    with torch.inference_mode():
        runs = [nodes["DragonSampler"]().sample(inputs.model, inputs.positive, inputs.negative, bank, edit, 7, 4.0,
                                                guidance(schedule="DiffEditor"))[0]["samples"] for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


def test_interrupt_stops_the_edit_and_the_next_run_is_unaffected(nodes, inputs):
    import comfy.model_management

    bank, _ = invert(nodes, inputs)
    edit = make_edits(nodes, bank)["move"]
    before = fingerprint(inputs.model)
    with torch.inference_mode():
        clean = nodes["DragonSampler"]().sample(inputs.model, inputs.positive, inputs.negative, bank, edit, 0, 4.0)[0]
        comfy.model_management.interrupt_current_processing(True)
        try:
            with pytest.raises(comfy.model_management.InterruptProcessingException):
                nodes["DragonSampler"]().sample(inputs.model, inputs.positive, inputs.negative, bank, edit, 0, 4.0)
        finally:
            comfy.model_management.interrupt_current_processing(False)
        again = nodes["DragonSampler"]().sample(inputs.model, inputs.positive, inputs.negative, bank, edit, 0, 4.0)[0]
    assert torch.equal(clean["samples"], again["samples"])
    assert fingerprint(inputs.model) == before


def test_interrupted_inversion_releases_its_bank(nodes, inputs, monkeypatch):
    import comfy.model_management

    samplers = importlib.import_module("dragon_pack.nodes.samplers")
    made = []
    real = samplers.MemoryBank

    def tracking(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(samplers, "MemoryBank", tracking)
    comfy.model_management.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            invert(nodes, inputs)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert made and made[0].nbytes() == 0


BAD = {
    "batch of two": lambda n, t, b: n["DragonDDIMInversion"]().invert(t.model, {"samples": torch.zeros(2, 4, 16, 16)}, t.positive, 4),
    "noise mask": lambda n, t, b: n["DragonDDIMInversion"]().invert(t.model, {**t.latent, "noise_mask": torch.ones(1, 16, 16)}, t.positive, 4),
    "NaN latent": lambda n, t, b: n["DragonDDIMInversion"]().invert(t.model, {"samples": torch.full((1, 4, 16, 16), float("nan"))}, t.positive, 4),
    "steps beyond the model": lambda n, t, b: n["DragonDDIMInversion"]().invert(t.model, t.latent, t.positive, 5000),
    "image of another size": lambda n, t, b: n["DragonSampler"]().sample(
        t.model, t.positive, t.negative, b, n["DragonEditMove"]().build(torch.rand(1, 64, 64, 3), 8, 0, 1.0, '{"boxes": [[8, 8, 16, 16]]}')[0], 0, 4.0),
    "bank from another model": lambda n, t, b: n["DragonSampler"]().sample(
        t.model.__class__(t.model.model.__class__.__new__(t.model.model.__class__), t.model.load_device, t.model.offload_device),
        t.positive, t.negative, b, make_edits(n, b)["move"], 0, 4.0),
    "appearance without a reference bank": lambda n, t, b: n["DragonEditAppearance"]().build(IMAGE, IMAGE, None, mask_box(0, 0, 8, 8), '{"boxes": [[8, 8, 16, 16]]}'),
    "mask of another size": lambda n, t, b: n["DragonEditMove"]().build(IMAGE, 8, 0, 1.0, "{}", torch.ones(1, 64, 64)),
    "move out of the image": lambda n, t, b: n["DragonEditMove"]().build(IMAGE, 120, 0, 1.0, '{"boxes": [[8, 8, 16, 16]]}'),
    "drag without points": lambda n, t, b: n["DragonEditDrag"]().build(IMAGE, "{}"),
    "negative energy scale": lambda n, t, b: n["DragonSampler"]().sample(t.model, t.positive, t.negative, b, make_edits(n, b)["move"], 0, 4.0, guidance(energy_scale=-2.0)),
    "empty attention window": lambda n, t, b: n["DragonSampler"]().sample(t.model, t.positive, t.negative, b, make_edits(n, b)["move"], 0, 4.0, guidance(attention_start_step=6, attention_end_step=2)),
    "not a bank": lambda n, t, b: n["DragonSampler"]().sample(t.model, t.positive, t.negative, "bank", make_edits(n, b)["move"], 0, 4.0),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_clear_node_error(nodes, inputs, case, dragon_pack):
    errors = importlib.import_module("dragon_pack.nodes.node_errors")
    bank, _ = invert(nodes, inputs, steps=4)
    with torch.inference_mode(), pytest.raises(errors.DragonNodeError) as info:
        BAD[case](nodes, inputs, bank)
    message = str(info.value)
    assert ":" in message and len(message) < 400, message
    assert info.value.__cause__ is None  # no torch traceback chained under it


def test_v_prediction_models_are_refused_by_name(nodes, comfy_host):
    import comfy.model_base
    import comfy.model_patcher
    from dragon_dev import tiny_model as tm

    config = tm.tiny_config()
    model = comfy.model_base.BaseModel(config, model_type=comfy.model_base.ModelType.V_PREDICTION)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
    errors = importlib.import_module("dragon_pack.nodes.node_errors")
    with torch.inference_mode(), pytest.raises(errors.DragonNodeError, match="V_PREDICTION"):
        nodes["DragonDDIMInversion"]().invert(patcher, {"samples": torch.zeros(1, 4, 16, 16)}, tm.conditioning(1), 4)


def test_bank_policies_trade_memory_for_recomputation_with_close_results(nodes, inputs):
    import comfy.patcher_extension

    calls = []
    counted = inputs.model.clone()
    counted.add_wrapper(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL,
                        lambda executor, *a, **k: (calls.append(1), executor(*a, **k))[1])
    inputs.model = counted
    results, sizes, passes = {}, {}, {}
    for name, options in {"float32": bank_options(dtype="float32"), "int8": bank_options(),
                          "lean": bank_options(record_attention=False)}.items():
        bank, _ = invert(nodes, inputs, options=options)
        sizes[name] = bank.nbytes()
        edit = make_edits(nodes, bank)["drag"]
        calls.clear()
        with torch.inference_mode():
            results[name] = nodes["DragonSampler"]().sample(inputs.model, inputs.positive, inputs.negative, bank,
                                                            edit, 0, 4.0)[0]["samples"]
        passes[name] = len(calls)
    latents_only = (STEPS + 1) * 4 * 16 * 16 * 4
    assert sizes["lean"] == latents_only
    assert sizes["int8"] - latents_only < 0.3 * (sizes["float32"] - latents_only)
    attention_steps = set(range(round(STEPS * 5 / 50), STEPS))
    guided_steps = set(range(round(STEPS * 30 / 50)))
    # lean: one inversion-branch pass per attention step, which also yields the energy's inverted features
    # (int8 recomputes those with a truncated pass at every guided step)
    assert passes["lean"] == passes["int8"] + len(attention_steps) - len(attention_steps & guided_steps)
    scale = results["float32"].abs().max()
    assert (results["int8"] - results["float32"]).abs().max() < 0.02 * scale
    # lean takes the inversion branch on z_inv(i) itself rather than the inversion's neighbouring level
    assert (results["lean"] - results["float32"]).abs().max() < 0.5 * scale


@pytest.mark.parametrize("preset", ["DragonDiffusion (paper)", "DiffEditor (paper)"])
def test_paper_presets_run_on_an_alpha_bar_0_bank_and_refuse_a_sigma_0_one(nodes, inputs, preset, dragon_pack):
    from dragon_pack.nodes.node_errors import DragonNodeError

    clean_bank, _ = invert(nodes, inputs)
    with torch.inference_mode():
        paper_bank = nodes["DragonDDIMInversion"]().invert(inputs.model, inputs.latent, inputs.positive, STEPS,
                                                           None, "alpha_bar_0 (paper)")["result"][0]
    model_sigmas = inputs.model.get_model_object("model_sampling").sigmas
    assert float(paper_bank.sigmas[-1]) == pytest.approx(float(model_sigmas[0]))
    options = guidance(preset=preset)
    with torch.inference_mode():
        for mode in ("move", "drag"):
            edit = make_edits(nodes, paper_bank)[mode]
            out = nodes["DragonSampler"]().sample(inputs.model, inputs.positive, inputs.negative, paper_bank, edit,
                                                  0, 4.0, options)[0]["samples"]
            pack = nodes["DragonSampler"]().sample(inputs.model, inputs.positive, inputs.negative, paper_bank, edit,
                                                   0, 4.0, guidance())[0]["samples"]
            assert torch.isfinite(out).all() and not torch.allclose(out, pack)
            with pytest.raises(DragonNodeError, match="memory_bank.*inversion_end"):
                nodes["DragonSampler"]().sample(inputs.model, inputs.positive, inputs.negative, clean_bank,
                                                make_edits(nodes, clean_bank)[mode], 0, 4.0, options)


@pytest.mark.parametrize("preset", ["DragonDiffusion (paper)", "pack"])
def test_start_latent_node_follows_the_guidance_preset(nodes, inputs, preset, dragon_pack):
    """The SamplerCustomAdvanced path (DragonStartLatent + DragonGuider) starts where DragonSampler starts, for a
    paper preset (whole latent cells) as for the pack's (sub-cell copy). The move is by a fraction of a cell, so
    the two copies differ."""
    sampling_nodes = importlib.import_module("dragon_pack.nodes.sampling_nodes")
    with torch.inference_mode():
        bank = nodes["DragonDDIMInversion"]().invert(inputs.model, inputs.latent, inputs.positive, STEPS,
                                                     None, "alpha_bar_0 (paper)")["result"][0]
        options = guidance(preset=preset)
        edit = nodes["DragonEditMove"]().build(IMAGE, 27, 13, 1.0, '{"boxes": [[32, 32, 32, 32]]}')[0]
        (node_latent,) = nodes["DragonStartLatent"]().get(inputs.model, bank, edit, options)
        (default_latent,) = nodes["DragonStartLatent"]().get(inputs.model, bank, edit)
        guider = sampling_nodes.make_guider(inputs.model, inputs.positive, inputs.negative, bank, edit, 4.0, options)
        torch.testing.assert_close(node_latent["samples"], sampling_nodes.start_latent_for(guider).cpu())
    same_as_default = torch.equal(node_latent["samples"], default_latent["samples"])
    assert same_as_default == (preset == "pack")

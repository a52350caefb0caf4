"""DragonGuider under stock samplers (in-process, tiny UNet): refused samplers, added noise and off-grid sigmas
are node errors naming the input; the sigmas a caller gives are never written to."""
import importlib
import types

import pytest
import torch

STEPS = 4
IMAGE = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(0))  # the tiny latent is 16x16 (f=8)
MOVE_JSON = '{"boxes": [[32, 32, 32, 32]]}'


@pytest.fixture(scope="module")
def built(dragon_pack):
    """(guider, start latent, bank sigmas) of a move edit on the tiny model, built as the nodes build them."""
    from dragon_dev import tiny_model as tm

    nodes = dragon_pack.NODE_CLASS_MAPPINGS
    t = types.SimpleNamespace(model=tm.build_tiny_model(seed=0), positive=tm.conditioning(seed=1),
                              negative=tm.conditioning(seed=2))
    latent = {"samples": torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(3))}
    with torch.inference_mode():
        bank = nodes["DragonDDIMInversion"]().invert(t.model, latent, t.positive, STEPS)["result"][0]
        (edit,) = nodes["DragonEditMove"]().build(IMAGE, 24, 16, 1.0, MOVE_JSON)
        (guider,) = nodes["DragonGuider"]().build(t.model, t.positive, t.negative, bank, edit, 4.0)
        (start,) = nodes["DragonStartLatent"]().get(t.model, bank, edit)
        (sigmas,) = nodes["DragonBankSigmas"]().get(bank)
    return guider, start["samples"], sigmas


@pytest.fixture
def guided(built):
    guider, start, sigmas = built
    return guider, start, sigmas.clone()


def sample(guider, start, sigmas, sampler, noise=None):
    with torch.inference_mode():
        return guider.sample(torch.zeros_like(start) if noise is None else noise, start, sampler, sigmas, seed=0)


@pytest.mark.parametrize("name, reason", [
    ("uni_pc", "combines the x0 of several steps"), ("dpmpp_2m", "combines the x0 of several steps"),
    ("lcm", "adds fresh noise"), ("euler_ancestral", "adds fresh noise"),
    ("dpm_2", "evaluates the model between"), ("heun", "evaluates the model between"),
    ("dpm_fast", "evaluates the model between"), ("euler_cfg_pp", "unconditional prediction"),
])
def test_unsupported_stock_samplers_are_refused_by_name_before_any_step(guided, name, reason):
    import comfy.samplers

    errors = importlib.import_module("dragon_pack.dragon_core.errors")
    guider, start, sigmas = guided
    before = sigmas.clone()
    with pytest.raises(errors.DragonInputError) as info:
        sample(guider, start, sigmas, comfy.samplers.sampler_object(name))
    message = str(info.value)
    assert info.value.field == "sampler" and message.startswith(f"sampler: {name} is not supported"), message
    assert reason in message and "euler or ddim" in message and "DragonDDIMSampler" in message, message
    assert torch.equal(sigmas, before)


def test_euler_with_churn_and_a_foreign_sampler_class_are_refused(guided):
    import comfy.k_diffusion.sampling as k_sampling
    import comfy.samplers

    errors = importlib.import_module("dragon_pack.dragon_core.errors")
    guider, start, sigmas = guided
    with pytest.raises(errors.DragonInputError, match="s_churn 1"):
        sample(guider, start, sigmas, comfy.samplers.KSAMPLER(k_sampling.sample_euler, {"s_churn": 1.0}))

    class HomeMadeSampler(comfy.samplers.Sampler):
        def sample(self, *args, **kwargs):
            raise AssertionError("must not run")

    with pytest.raises(errors.DragonInputError, match="HomeMadeSampler is not supported by DragonGuider"):
        sample(guider, start, sigmas, HomeMadeSampler())


def test_random_noise_is_refused(guided):
    import comfy.samplers

    errors = importlib.import_module("dragon_pack.dragon_core.errors")
    guider, start, sigmas = guided
    with pytest.raises(errors.DragonInputError, match="noise: is random noise.*DisableNoise"):
        sample(guider, start, sigmas, comfy.samplers.sampler_object("ddim"), noise=torch.randn_like(start))


def test_an_evaluation_off_the_banks_sigmas_is_an_error_not_a_plain_step(guided):
    errors = importlib.import_module("dragon_pack.dragon_core.errors")
    guider, start, sigmas = guided
    off = float((sigmas[0] + sigmas[1]) / 2)
    with torch.inference_mode(), pytest.raises(errors.DragonInputError) as info:
        guider.predict_noise(start, torch.tensor([off]))
    assert info.value.field == "sampler" and f"{off:.6g}" in str(info.value)
    assert f"none of the memory bank's {STEPS} step sigmas" in str(info.value)


def test_a_sampler_that_writes_into_its_sigmas_leaves_the_callers_sigmas_alone(guided, monkeypatch):
    import comfy.k_diffusion.sampling as k_sampling
    import comfy.samplers

    guider, start, sigmas = guided
    before = sigmas.clone()

    def scribbling_euler(model, x, sigmas_in, **kwargs):  # what stock uni_pc does to sigmas[-1]
        out = k_sampling.sample_euler(model, x, sigmas_in, **kwargs)
        sigmas_in[-1] = 0.001
        return out

    guiders = importlib.import_module("dragon_pack.nodes.guiders")
    check = guiders.check_sampler
    monkeypatch.setattr(guiders, "check_sampler", lambda s, own: check(s, own + (scribbling_euler,)))
    out = sample(guider, start, sigmas, comfy.samplers.KSAMPLER(scribbling_euler))
    assert torch.isfinite(out).all()
    assert torch.equal(sigmas, before)


def test_every_stock_sampler_is_accepted_or_refused_with_its_reason(dragon_pack):
    import comfy.samplers

    errors = importlib.import_module("dragon_pack.dragon_core.errors")
    support = importlib.import_module("dragon_pack.nodes.sampler_support")
    dragon_ddim = importlib.import_module("dragon_pack.nodes.samplers").dragon_ddim_function
    accepted = []
    for name in comfy.samplers.SAMPLER_NAMES:
        try:
            support.check_sampler(comfy.samplers.sampler_object(name), (dragon_ddim,))
            accepted.append(name)
        except errors.DragonInputError as exc:
            assert str(exc).startswith(f"sampler: {name} is not supported"), str(exc)
            assert support._OTHER not in str(exc), f"{name} has no reason of its own"
    assert accepted == ["euler", "ddim"]
    support.check_sampler(comfy.samplers.KSAMPLER(dragon_ddim, {"seed": 0}), (dragon_ddim,))

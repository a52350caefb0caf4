"""A memory bank is sampled only with the MODEL it was inverted with: clones match; a LoRA, a model_sampling patch
(zsnr), an attention patch or another checkpoint is a node error naming what differs (tiny UNet, in-process)."""
import importlib

import pytest
import torch

IMAGE = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(0))  # the tiny latent is 16x16 (f=8)


@pytest.fixture
def bank_and_edit(dragon_pack, tiny_model):
    nodes = dragon_pack.NODE_CLASS_MAPPINGS
    latent = {"samples": torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(3))}
    with torch.inference_mode():
        bank = nodes["DragonDDIMInversion"]().invert(tiny_model.model, latent, tiny_model.positive, 2)["result"][0]
        (edit,) = nodes["DragonEditMove"]().build(IMAGE, 24, 16, 1.0, '{"boxes": [[32, 32, 32, 32]]}')
    return nodes, tiny_model, bank, edit


def lora_like(model, strength=0.5):
    """A clone with one weight patch, as LoraLoaderModelOnly adds them (a diff on one UNet weight)."""
    clone = model.clone()
    key = "diffusion_model.out.2.weight"
    weight = clone.model.state_dict()[key]
    clone.add_patches({key: (torch.full_like(weight, 0.01),)}, strength)
    return clone


def zsnr(model):
    from comfy_extras.nodes_model_advanced import ModelSamplingDiscrete

    return ModelSamplingDiscrete().patch(model, "eps", True)[0]


def attention_patched(model):
    clone = model.clone()
    clone.set_model_attn1_patch(lambda q, k, v, extra_options: (q, k, v))
    return clone


def another_checkpoint(model):
    from dragon_dev import tiny_model as tm

    return tm.build_tiny_model(seed=0)  # same weights, another module: its patches may differ at any time


def build(nodes, model, t, bank, edit):
    with torch.inference_mode():
        return nodes["DragonGuider"]().build(model, t.positive, t.negative, bank, edit, 4.0)


def test_the_same_model_and_its_clones_are_accepted(bank_and_edit):
    nodes, t, bank, edit = bank_and_edit
    build(nodes, t.model, t, bank, edit)
    build(nodes, t.model.clone().clone(), t, bank, edit)


@pytest.mark.parametrize("variant, names", [
    (lora_like, "other weight patches (a LoRA added"),
    (zsnr, "other object patches (e.g. ModelSamplingDiscrete / zsnr"),
    (attention_patched, "other model options (attention patches"),
    (another_checkpoint, "another checkpoint"),
])
def test_a_bank_from_another_model_is_refused_naming_what_differs(bank_and_edit, variant, names):
    errors = importlib.import_module("dragon_pack.nodes.node_errors")
    nodes, t, bank, edit = bank_and_edit
    with pytest.raises(errors.DragonNodeError) as info:
        build(nodes, variant(t.model), t, bank, edit)
    message = str(info.value)
    assert message.startswith("memory_bank: was inverted with a different MODEL") and names in message, message
    assert "Connect the same MODEL output to DragonDDIMInversion" in message and len(message) < 400, message


def test_a_lora_model_matches_its_own_bank_and_not_another_strength(dragon_pack, tiny_model):
    identity = importlib.import_module("dragon_pack.nodes.model_identity")
    lora = lora_like(tiny_model.model)
    assert identity.model_tag(lora) == identity.model_tag(lora.clone())
    assert identity.model_tag(lora) != identity.model_tag(tiny_model.model)
    reweighted = tiny_model.model.clone()
    reweighted.patches = {k: [(0.8,) + tuple(e[1:]) for e in v] for k, v in lora.patches.items()}
    assert identity.model_tag(reweighted) != identity.model_tag(lora)

"""The decoder stage of demo/train_demo_model.py: it trains the decoder alone, so the encoder (hence every latent
the UNet learned from) stays as it was, and the export takes its weights only once the stage has finished."""
import argparse

import pytest
import torch

NOT_TRAINED = ("decoder.mid.attn_1.",)  # zeroed and frozen: the autoencoder stays fully convolutional


@pytest.fixture(scope="module")
def train(dragon_pack):
    """The script loaded as it runs (by path, outside the pack's package): the pack itself never imports it,
    which test_security checks in this same process."""
    from dragon_dev.bootstrap import load_module

    return load_module("demo/train_demo_model.py", "dragon_demo_training")


@pytest.fixture(scope="module")
def architecture(train):
    return train.architecture


def test_decoder_stage_changes_the_decoder_and_not_the_encoder(train, architecture):
    torch.manual_seed(0)
    ae = architecture.build_autoencoder(architecture.VAE_DDCONFIG)
    train.torch_default_init(ae)
    params = train.decoder_parameters(ae)
    trained = {name for name, p in ae.named_parameters() if any(p is q for q in params)}
    decoder_side = {name for name, _ in ae.named_parameters()
                    if name.startswith(("decoder.", "post_quant_conv.")) and not name.startswith(NOT_TRAINED)}
    assert trained == decoder_side
    assert not any(p.requires_grad for name, p in ae.named_parameters() if name not in decoder_side)
    # and a step moves them (the training signal reaches every trained layer)
    before = {k: v.clone() for k, v in ae.state_dict().items()}
    opt = torch.optim.Adam(params, lr=1e-3)
    z, x = torch.randn(2, 4, 4, 4), torch.rand(2, 3, 16, 16) * 2 - 1
    train.optimise(opt, params, (ae.decode(z) - x).abs().mean())
    changed = {k for k, v in ae.state_dict().items() if not torch.equal(before[k], v)}
    assert changed == decoder_side

def test_export_takes_the_decoder_stage_only_when_it_has_finished(train, tmp_path):
    opts = argparse.Namespace(work_dir=tmp_path)
    torch.save({"model": {"w": torch.zeros(1)}, "step": 3200, "history": []}, tmp_path / "vae.pt")
    assert train.trained_autoencoder(opts)["step"] == 3200
    running = {"model": {"w": torch.ones(1)}, "step": 100, "history": []}  # interrupted mid-stage
    torch.save(running, tmp_path / "decoder.pt")
    assert train.trained_autoencoder(opts)["step"] == 3200
    torch.save({**running, "step": 4400, "eval_psnr": 34.1}, tmp_path / "decoder.pt")
    assert train.trained_autoencoder(opts)["step"] == 4400

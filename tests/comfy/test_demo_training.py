"""The decoder stage of demo/train_demo_model.py (demo/train_autoencoder.py): it trains the decoder alone, so the
encoder (hence every latent the UNet learned from) stays as it was, and the export takes its weights only once the
stage has finished."""
import argparse
import json

import numpy as np
import pytest
import torch
from dragon_dev.bootstrap import demo_module, load_module

NOT_TRAINED = ("decoder.mid.attn_1.",)  # zeroed and frozen: the autoencoder stays fully convolutional


@pytest.fixture(scope="module")
def train(dragon_pack):
    """The script loaded as it runs (by path, outside the pack's package): the pack itself never imports it,
    which test_security checks in this same process."""
    return load_module("demo/train_demo_model.py", "dragon_demo_training")


@pytest.fixture(scope="module")
def architecture(train):
    return demo_module("architecture")


@pytest.fixture(scope="module")
def common(train):
    return demo_module("train_common")


@pytest.fixture(scope="module")
def autoencoder(train):
    return demo_module("train_autoencoder")


def test_decoder_stage_changes_the_decoder_and_not_the_encoder(common, autoencoder, architecture):
    torch.manual_seed(0)
    ae = architecture.build_autoencoder(architecture.vae_ddconfig())
    common.torch_default_init(ae)
    params = autoencoder.decoder_parameters(ae)
    trained = {name for name, p in ae.named_parameters() if any(p is q for q in params)}
    decoder_side = {name for name, _ in ae.named_parameters()
                    if name.startswith(("decoder.", "post_quant_conv.")) and not name.startswith(NOT_TRAINED)}
    assert trained == decoder_side
    assert not any(p.requires_grad for name, p in ae.named_parameters() if name not in decoder_side)
    # and a step moves them (the training signal reaches every trained layer)
    before = {k: v.clone() for k, v in ae.state_dict().items()}
    opt = torch.optim.Adam(params, lr=1e-3)
    z, x = torch.randn(2, 4, 4, 4), torch.rand(2, 3, 16, 16) * 2 - 1
    common.optimise(opt, params, (ae.decode(z) - x).abs().mean())
    changed = {k for k, v in ae.state_dict().items() if not torch.equal(before[k], v)}
    assert changed == decoder_side

def test_export_takes_the_decoder_stage_only_when_it_has_finished(autoencoder, tmp_path):
    opts = argparse.Namespace(work_dir=tmp_path)
    torch.save({"model": {"w": torch.zeros(1)}, "step": 3200, "history": []}, tmp_path / "vae.pt")
    assert autoencoder.trained_autoencoder(opts)["step"] == 3200
    running = {"model": {"w": torch.ones(1)}, "step": 100, "history": []}  # interrupted mid-stage
    torch.save(running, tmp_path / "decoder.pt")
    assert autoencoder.trained_autoencoder(opts)["step"] == 3200
    torch.save({**running, "step": 4400, "eval_psnr": 34.1}, tmp_path / "decoder.pt")
    assert autoencoder.trained_autoencoder(opts)["step"] == 4400


def test_next_model_fits_a_20_mb_file_with_attention_at_two_resolutions(architecture):
    from comfy.ldm.modules.attention import SpatialTransformer

    config = architecture.make_model_config(dict(architecture.UNET_CONFIG_LARGE, dtype=torch.float32), 1.0)
    unet = architecture.build_base_model(config).diffusion_model
    ae = architecture.build_autoencoder(architecture.vae_ddconfig(8))
    n = sum(p.numel() for p in unet.parameters()) + sum(p.numel() for p in ae.parameters())
    assert 2 * n <= 20e6  # fp16
    sizes = set()
    x = torch.zeros(1, 4, 16, 16)
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.add(tuple(o.shape[-2:])))
             for m in unet.modules() if isinstance(m, SpatialTransformer)]
    with torch.no_grad():
        unet(x, torch.zeros(1), context=torch.zeros(1, 4, 64))
    for h in hooks:
        h.remove()
    assert {(16, 16), (8, 8)} <= sizes


@pytest.mark.slow
def test_every_stage_runs_at_a_tiny_size_and_resumes(train, architecture, tmp_path):
    """The whole recipe on structured scenes with the large UNet and an 8-channel latent, a few steps each: the
    export is a weight file the pack's loader reads, with the configuration it was trained with; a rerun finds
    every stage done; a rerun with another latent width is refused, not half-resumed."""
    out = tmp_path / "demo.safetensors"
    argv = ["--work-dir", str(tmp_path), "--out", str(out), "--pool", "12", "--workers", "2",
            "--vae-phases", "2:32:2:1e-4,1:64:2:1e-4", "--decoder-phases", "2:32:2:1e-4",
            "--unet-steps", "2", "--unet-batch", "2", "--latent-channels", "8"]
    train.main(argv)
    rendered = np.load(tmp_path / "scenes.npy")
    assert rendered.shape == (12, 64, 64, 3) and rendered.dtype == np.uint8
    weights = architecture.read_demo_weights(out)
    assert weights.unet_config == dict(architecture.UNET_CONFIG_LARGE, in_channels=8, out_channels=8)
    assert weights.vae_ddconfig["z_channels"] == 8
    assert "--scenes structured --unet large --latent-channels 8" in weights.metadata["recipe"]
    assert len(json.loads(weights.metadata["latent_rgb_factors"])) == 8
    patcher, vae, positive, _ = demo_module("train_export").load_for_preview(out)
    latent = vae.encode(torch.rand(1, 64, 64, 3))
    assert latent.shape == (1, 8, 16, 16) and vae.decode(latent).shape == (1, 64, 64, 3)
    assert patcher.model.latent_format.latent_channels == 8
    with torch.no_grad():
        eps = patcher.model.apply_model(latent, torch.tensor([1.0]), c_crossattn=positive[0][0])
    assert eps.shape == latent.shape
    assert weights.metadata["unet_steps"] == "2" and weights.metadata["vae_decoder_steps"] == "2"
    log_before = (tmp_path / "train.log").read_text()
    train.main(argv)
    new_lines = (tmp_path / "train.log").read_text()[len(log_before):]
    for stage in ("render: done", "vae: done", "pool: done", "decoder: done", "unet: done"):
        assert stage in new_lines
    with pytest.raises(SystemExit, match="another model configuration"):
        train.main([a if a != "8" else "4" for a in argv] + ["--stage", "decoder"])

"""The trained model out of the work dir: the export and preview stages.

``export``: EMA weights -> fp16 safetensors with the recipe in its metadata; ``preview``: samples, round trips, and
DDIM inversion through the pack's own inversion.

A module of demo/train_demo_model.py (the developer script; the pack never imports it).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import architecture
from .train_autoencoder import trained_autoencoder
from .train_common import Log, load_checkpoint, psnr
from .train_data import EVAL_SEEDS, SCENE_SOURCES
from .train_unet import Trainee

def tail_mean(history: list[list[float]], column: int, points: int = 4) -> float:
    return float(np.mean([row[column] for row in history[-points:]]))


def export(opts: argparse.Namespace, log: Log) -> None:
    vae_ckpt = load_checkpoint(opts.work_dir / "vae.pt", map_location="cpu")
    autoencoder = trained_autoencoder(opts)
    pool = load_checkpoint(opts.work_dir / "pool.pt")
    unet_ckpt = load_checkpoint(opts.work_dir / "unet.pt", map_location="cpu")
    unet_config = architecture.unet_config(opts.unet, opts.latent_channels)
    ema = Trainee(pool["scale_factor"], unet_config)
    ema.load_state_dict(unet_ckpt["ema"])
    record = {
        "recipe": (f"demo/train_demo_model.py --seed {opts.seed} --scenes {opts.scenes} --unet {opts.unet} "
                   f"--latent-channels {opts.latent_channels} "
                   f"--vae-phases {opts.vae_phases} --vae-kl {opts.vae_kl} "
                   f"--decoder-phases {opts.decoder_phases} "
                   f"--pool {pool['count']} --unet-steps {unet_ckpt['step']} --unet-batch {opts.unet_batch} "
                   f"--unet-lr {opts.unet_lr} --null-prob {opts.null_prob} --ema {opts.ema}"),
        "seed": str(opts.seed),
        "vae_steps": str(vae_ckpt["step"]),
        "unet_steps": str(unet_ckpt["step"]),
        "vae_final_l1": f"{tail_mean(vae_ckpt['history'], 1):.5f}",
        "vae_final_mse": f"{tail_mean(vae_ckpt['history'], 2):.6f}",
        "vae_decoder_steps": str(autoencoder["step"] if "eval_psnr" in autoencoder else 0),
        "vae_heldout_psnr_db": f"{autoencoder.get('eval_psnr', pool['vae_eval_psnr']):.2f}",
        "unet_final_eps_mse": f"{tail_mean(unet_ckpt['history'], 1):.5f}",
        "training_data": f"demo/{SCENE_SOURCES[opts.scenes].__name__.rsplit('.', 1)[-1]}.py random_scene(seed), "
                         "seeds < HELDOUT_SEED_START, 64x64",
    }
    metadata = {
        "unet_config": json.dumps(unet_config),
        "vae_ddconfig": json.dumps(architecture.vae_ddconfig(opts.latent_channels)),
        "latent_scale_factor": f"{pool['scale_factor']:.6f}",
        "latent_rgb_factors": json.dumps([[round(v, 5) for v in row] for row in pool["rgb_factors"]]),
        "latent_rgb_factors_bias": json.dumps([round(v, 5) for v in pool["rgb_bias"]]),
        **record,
    }
    weights = architecture.DemoWeights(vae=autoencoder["model"], unet=ema.base.diffusion_model.state_dict(),
                                       positive=ema.positive, negative=ema.negative, metadata=metadata)
    architecture.save_demo_weights(opts.out, weights)
    log(f"export: {opts.out} ({opts.out.stat().st_size / 1e6:.2f} MB) {json.dumps(record)}")


def load_for_preview(path: Path) -> tuple[Any, Any, list, list]:
    import comfy.model_management
    import comfy.model_patcher

    weights = architecture.read_demo_weights(path)
    rgb = json.loads(weights.metadata["latent_rgb_factors"])
    config = architecture.make_model_config(dict(weights.unet_config, dtype=torch.float32),
                                            weights.latent_scale_factor, rgb,
                                            json.loads(weights.metadata["latent_rgb_factors_bias"]))
    base = architecture.build_base_model(config)
    base.load_model_weights({k: v.float() for k, v in weights.unet.items()}, "")
    patcher = comfy.model_patcher.ModelPatcher(base, load_device=comfy.model_management.get_torch_device(),
                                               offload_device=comfy.model_management.unet_offload_device())
    vae = architecture.make_vae({k: v.float() for k, v in weights.vae.items()}, weights.vae_ddconfig)
    return patcher, vae, [[weights.positive.float(), {}]], [[weights.negative.float(), {}]]


@torch.no_grad()
def ddim_invert(patcher: Any, latent: torch.Tensor, context: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The pack's DDIM inversion (dragon_core/inversion.py, cond only) on ``ddim_uniform`` sigmas; returns (x_T,
    sampling sigmas)."""
    import comfy.samplers

    # dragon_core as the top-level package train_demo_model.py loads (the training runs outside the pack).
    from dragon_core.inversion import ddim_invert as invert

    base = patcher.model
    sigmas = comfy.samplers.calculate_sigmas(base.model_sampling, "ddim_uniform", steps)

    def eps(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.view(1)
        return (x - base.apply_model(x, s, c_crossattn=context)) / s

    return invert(eps, base.process_latent_in(latent), sigmas)[0], sigmas


@torch.no_grad()
def preview(opts: argparse.Namespace, log: Log) -> None:
    import comfy.sample
    from PIL import Image

    patcher, vae, positive, negative = load_for_preview(opts.out)
    rows = []
    noise = torch.randn(8, 4, 16, 16, generator=torch.Generator().manual_seed(opts.seed))
    empty = torch.zeros_like(noise)
    for cfg in (1.0, 4.0):
        samples = comfy.sample.sample(patcher, noise, 20, cfg, "ddim", "ddim_uniform", positive, negative, empty,
                                      disable_pbar=True, seed=opts.seed)
        rows.append(vae.decode(samples))
    originals = torch.from_numpy(SCENE_SOURCES[opts.scenes].render_batch(EVAL_SEEDS[:8]))
    latent = vae.encode(originals)
    rows += [originals, vae.decode(latent)]
    x_t, sigmas = ddim_invert(patcher, latent, positive[0][0].expand(8, -1, -1), 50)
    recon = comfy.sample.sample(patcher, x_t / sigmas[0], 50, 1.0, "ddim", "ddim_uniform", positive, negative,
                                torch.zeros_like(latent), disable_pbar=True, seed=0)
    rows.append(vae.decode(recon))
    log(f"preview: VAE PSNR {psnr(rows[3], originals):.2f} dB, DDIM-50 inversion+reconstruction PSNR "
        f"{psnr(rows[4], originals):.2f} dB (vs the original image)")
    grid = torch.cat([torch.cat(list(r), dim=1) for r in rows], dim=0)
    out = opts.work_dir / "preview.png"
    Image.fromarray((grid.clamp(0, 1).numpy() * 255).round().astype(np.uint8)).resize(
        (grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(out)
    log(f"preview: rows = samples cfg 1, samples cfg 4, originals (held out), VAE round trip, "
        f"DDIM inversion + reconstruction -> {out}")

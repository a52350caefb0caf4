"""What every stage of the demo model's training shares.

Initialisation, the learning-rate schedule, per-step randomness, checkpoints, the log and the progress of a phased
stage.

A module of demo/train_demo_model.py (the developer script; the pack never imports it).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from .train_autoencoder import VaePhase


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


def load_checkpoint(path: Path, map_location: Any = None) -> Any:
    """A checkpoint this script wrote into its --work-dir: a whole pickle (optimiser states, histories), so only
    the training's own files are ever loaded here."""
    return torch.load(path, weights_only=False, map_location=map_location)


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
    ckpt = load_checkpoint(path, map_location="cpu")
    load_matching(model, ckpt["model"], path)
    opt.load_state_dict(ckpt["opt"])
    return {k: v for k, v in ckpt.items() if k not in ("model", "opt")}


def load_matching(model: torch.nn.Module, state_dict: dict[str, Any], path: Path) -> None:
    """Resume only a run of the same model: a checkpoint of another shape (e.g. another --latent-channels or
    --unet) is refused with the way out, not half-loaded."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise SystemExit(f"{path}: this checkpoint was trained with another model configuration (--unet, "
                         f"--latent-channels); use a new --work-dir or the options it was trained with.\n{exc}") from None


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

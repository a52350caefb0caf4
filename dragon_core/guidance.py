"""Energy guidance (DragonDiffusion Sec. 3.2-3.3, DiffEditor Sec. 3.3): the presets, the authors' per-mode
defaults, the step schedules, and the gradient of the energy with respect to the latent.

Presets (docs/ARCHITECTURE.md, "Presets"): ``DragonDiffusion (paper)`` and ``DiffEditor (paper)`` are the
authors' algorithm as their public code runs it; ``pack`` adds the pack's locks and sub-cell placement."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from .attention import InjectionMode
from .energy import EnergyWeights, edit_energy
from .errors import DragonInputError
from .geometry import EditGeometry

FeatureFn = Callable[[Tensor, Tensor], list]

SCHEDULES = ("DragonDiffusion", "DiffEditor")

PACK = "pack"
PAPER_PRESETS = {"DragonDiffusion (paper)": "DragonDiffusion", "DiffEditor (paper)": "DiffEditor"}
PRESETS = (PACK,) + tuple(PAPER_PRESETS)

# Authors' demo defaults per mode (their gradio demo's sliders and Sampler.guidance_*): energy scale (UI value,
# x1e3 internally), step size c (the gradient's factor), CFG.
MODE_DEFAULTS = {
    "move": dict(energy_scale=0.5, weights=EnergyWeights(4.0, 6.0, 0.2, 0.8), step_size=0.08, cfg=4.0,
                 attention=InjectionMode.REPLACE),
    "resize": dict(energy_scale=0.5, weights=EnergyWeights(4.0, 6.0, 0.2, 0.8), step_size=0.08, cfg=4.0,
                   attention=InjectionMode.REPLACE),
    "drag": dict(energy_scale=2.0, weights=EnergyWeights(4.0, 6.0, 0.0, 0.2), step_size=0.04, cfg=4.0,
                 attention=InjectionMode.CONCAT),
    "appearance": dict(energy_scale=2.0, weights=EnergyWeights(3.5, 5.0, 0.0, 0.0), step_size=0.04, cfg=5.0,
                       attention=InjectionMode.COMPOSE),
    "paste": dict(energy_scale=1.5, weights=EnergyWeights(4.0, 6.0, 0.0, 0.0), step_size=0.04, cfg=4.0,
                  attention=InjectionMode.COMPOSE),
}


@dataclass(frozen=True)
class GuidanceConfig:
    energy_scale: float                      # the authors' UI value; the energy is multiplied by 1e3 of it
    weights: EnergyWeights
    step_size: float                         # c: g = c * dE/dz (DragonDiffusion Eq. 9)
    guided_steps: frozenset[int]
    attention_mode: InjectionMode
    attention_steps: frozenset[int]
    sde_steps: frozenset[int] = frozenset()  # DiffEditor regional SDE
    sde_eta_inside: float = 0.4
    sde_eta_outside: float = 0.0
    time_travel_steps: frozenset[int] = frozenset()
    time_travel_repeats: int = 3
    background_steps: frozenset[int] = frozenset()  # background lock (dragon_core.background), beyond the paper
    background_grow: int = 1                         # latent cells of free margin around the edit region
    object_steps: frozenset[int] = frozenset()      # object lock (dragon_core.object_lock), beyond the paper
    preset: str = PACK
    cfg: Optional[float] = None     # the paper presets' per-mode CFG; None: the sampler node's cfg input
    whole_cells: bool = False       # the paper: whole-cell start latent and energy pairing (no sub-cell placement)
    paper_inversion: bool = False   # the paper: the bank must be inverted to alpha_bar_0 (DragonDDIMInversion)
    drag_step0_from_start: bool = False  # the paper: drag's step-0 energy reference is the copy-pasted z_T


def _at_fraction(steps: int, index_at_50: int) -> int:
    """A step index given for 50 steps, mapped onto ``steps`` (the schedules scale with the step count)."""
    return int(round(index_at_50 * steps / 50))


def guided_step_schedule(steps: int, schedule: str) -> frozenset[int]:
    end = _at_fraction(steps, 30)
    if schedule == "DragonDiffusion":
        return frozenset(range(end))
    if schedule == "DiffEditor":
        first = _at_fraction(steps, 10)
        return frozenset(i for i in range(end) if i < first or i % 2 == 0)
    raise DragonInputError("schedule", f"must be one of {SCHEDULES}, got {schedule!r}")


def attention_step_schedule(steps: int, mode: InjectionMode) -> frozenset[int]:
    if mode is InjectionMode.COMPOSE:
        return frozenset(range(min(steps, _at_fraction(steps, 35) + 1)))
    return frozenset(range(_at_fraction(steps, 5), steps))


# Fraction of the steps (from the first) with the background lock on by default. Measured on the demo model's
# held-out scenes (benchmarks/edit_quality.py): without it the unedited part drifts (benchmarks/README.md).
DEFAULT_KEEP_BACKGROUND = 1.0


# The same for the object lock (dragon_core.object_lock), measured likewise (benchmarks/README.md): the moved
# object arrives whole where asked, and appearance edits keep the reference's colour only when it holds to the end.
DEFAULT_KEEP_OBJECT = 1.0


def lock_step_schedule(steps: int, fraction: float, field_name: str = "keep_background") -> frozenset[int]:
    """The first ``fraction`` of the steps (the background and object locks)."""
    if not 0.0 <= fraction <= 1.0:
        raise DragonInputError(field_name, f"must be in [0, 1], got {fraction}")
    return frozenset(range(int(round(fraction * steps))))


def default_guidance(mode: str, steps: int, schedule: str = "DragonDiffusion") -> GuidanceConfig:
    """The pack preset: the authors' weights and schedules plus the pack's locks and sub-cell placement."""
    if mode not in MODE_DEFAULTS:
        raise DragonInputError("mode", f"must be one of {sorted(MODE_DEFAULTS)}, got {mode!r}")
    d = MODE_DEFAULTS[mode]
    cfg = GuidanceConfig(energy_scale=d["energy_scale"], weights=d["weights"], step_size=d["step_size"],
                         guided_steps=guided_step_schedule(steps, schedule), attention_mode=d["attention"],
                         attention_steps=attention_step_schedule(steps, d["attention"]),
                         background_steps=lock_step_schedule(steps, DEFAULT_KEEP_BACKGROUND),
                         object_steps=lock_step_schedule(steps, DEFAULT_KEEP_OBJECT, "keep_object"))
    if schedule == "DiffEditor":
        cfg = replace(cfg,
                      sde_steps=frozenset(range(_at_fraction(steps, 10) + 1, _at_fraction(steps, 20))),
                      time_travel_steps=time_travel_step_schedule(steps))
    return cfg


def time_travel_step_schedule(steps: int) -> frozenset[int]:
    """DiffEditor's time-travel steps (22, 24, 26, 28 of 50) at ``steps``. The last step is left out: it ends at
    the clean latent, where re-inverting would need eps at sigma 0 (a division by zero); at 50 steps the window
    is mid-trajectory, and only a count of 3 or fewer maps a step of it onto the last."""
    return frozenset(i for i in (_at_fraction(steps, k) for k in (22, 24, 26, 28)) if i < steps - 1)


def paper_guidance(mode: str, steps: int, preset: str) -> GuidanceConfig:
    """A paper preset: the authors' algorithm and nothing else (no locks, whole cells, their CFG and inversion)."""
    if preset not in PAPER_PRESETS:
        raise DragonInputError("preset", f"must be one of {PRESETS}, got {preset!r}")
    cfg = default_guidance(mode, steps, PAPER_PRESETS[preset])
    return replace(cfg, background_steps=frozenset(), object_steps=frozenset(), preset=preset,
                   cfg=MODE_DEFAULTS[mode]["cfg"], whole_cells=True, paper_inversion=True,
                   drag_step0_from_start=mode == "drag")


def guidance_for(mode: str, steps: int, preset: str = PACK, schedule: str = "DragonDiffusion") -> GuidanceConfig:
    """The defaults of ``preset`` for ``mode`` (``schedule`` only matters for the pack preset)."""
    if preset == PACK:
        return default_guidance(mode, steps, schedule)
    return paper_guidance(mode, steps, preset)


def without_idle_time_travel(cfg: GuidanceConfig) -> GuidanceConfig:
    """The authors repeat steps (time travel) only when the energy guidance is on (energy_scale != 0)."""
    return replace(cfg, time_travel_steps=frozenset()) if cfg.energy_scale == 0 else cfg


@dataclass
class GuidanceStats:
    """Counts for benchmarks: feature passes (forward with grad) and backward passes."""
    feature_passes: int = 0
    backward_passes: int = 0


def content_gradient_needed(step: int, cfg: GuidanceConfig, geom: EditGeometry) -> bool:
    """Whether the content energy's gradient at ``step`` is worth its backward pass.

    That gradient acts outside the gradient region. When the background lock holds the next step, the latent
    outside the lock's free region is replaced by the inversion's before the UNet sees it again, so the gradient
    survives only in the one-cell free ring around the region (benchmarks/README.md: dropping it there leaves
    edit quality unchanged, and it saves one of the two backward passes of every guided step). Not for a move or
    resize: there the content energy's contrast and inpainting terms act on the vacated place, which lies inside
    the lock's free region, outside the gradient region (the new place).
    """
    if step + 1 not in cfg.background_steps:
        return True
    return geom.vacated is not None and bool(geom.vacated.any())


def energy_gradient(features_fn: FeatureFn, x: Tensor, sigma: Tensor, inv_feats: Sequence[Tensor],
                    geom: EditGeometry, cfg: GuidanceConfig, rep_feats: Optional[Sequence[Tensor]] = None,
                    stats: Optional[GuidanceStats] = None, content: bool = True) -> Tensor:
    """g = c * [grad(es * E_edit) inside the gradient region + grad(es * E_content) outside], with respect to the
    UNet's input latent z = x / sqrt(1 + sigma^2), returned with the shape of x.

    The gradient region is where the edit is wanted (``EditGeometry.latent_gradient_region``): a move's new
    place only, as the authors' code splits on ``mask_cur``; the content energy's vacated-place terms thus act
    on the old place.

    ``features_fn(x, sigma)`` must be differentiable with respect to the sigma-space latent x. ``content=False``
    skips the content term's backward pass (see :func:`content_gradient_needed`): g is then zero outside.
    """
    es = cfg.energy_scale * 1e3
    with torch.enable_grad():
        x_leaf = x.detach().clone().requires_grad_(True)
        cur = features_fn(x_leaf, sigma)
        e_edit, e_content = edit_energy(cur, inv_feats, geom, cfg.weights, rep_feats)
        if stats is not None:
            stats.feature_passes += 1
        region = geom.latent_gradient_region.to(device=x.device, dtype=x.dtype)
        grad = torch.zeros_like(x)
        terms = [(e_edit, region)] + ([(e_content, 1.0 - region)] if content else [])
        terms = [(t, m) for t, m in terms if t.requires_grad]
        for k, (term, mask) in enumerate(terms):
            (g,) = torch.autograd.grad(es * term, x_leaf, retain_graph=k < len(terms) - 1)
            grad = grad + g * mask
            if stats is not None:
                stats.backward_passes += 1
    # dE/dz = sqrt(1 + sigma^2) dE/dx, since x = z * sqrt(1 + sigma^2)
    sigma = torch.as_tensor(sigma)
    sigma = sigma.to(torch.promote_types(sigma.dtype, torch.float32))
    return cfg.step_size * grad * (1.0 + sigma ** 2).sqrt().to(x.dtype)


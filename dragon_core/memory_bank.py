"""The memory bank: what one DDIM inversion pass records for the edit (docs/SPEC.md §1, §2).

- ``latents[i]``: the inverted latent at ``sigmas[i]`` (sigma space), i = 0 (x_T) .. steps (x_0);
- ``attention[(i, layer)]``: the normalised input of each recorded decoder self-attention layer in the
  inversion branch at step i ([1, N, C]); the K/V projections are applied at use time;
- ``features[i]``: the decoder feature maps the energy compares against, at guided steps.
Everything is stored in ``policy.dtype`` on ``policy.device`` (the host's offload device by default).
``torch.int8`` stores attention tokens quantised per token (symmetric, absmax scale), as int8 KV caches do:
a quarter of float32, half of float16, with a relative error of at most 1/254 of each token's largest value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

import torch
from torch import Tensor

from .errors import DragonInputError


@dataclass
class QuantizedTokens:
    """Per-token int8 tokens: value = q * scale / 127."""
    q: Tensor       # int8 [1, N, C]
    scale: Tensor   # float32 [1, N, 1]

    @staticmethod
    def quantize(tokens: Tensor, device) -> "QuantizedTokens":
        t = tokens.detach().float()
        scale = t.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8)
        q = torch.round(t / scale * 127.0).to(torch.int8)
        return QuantizedTokens(q.to(device), scale.to(device))

    def dequantize(self) -> Tensor:
        return self.q.float() * (self.scale.float() / 127.0)

    def nbytes(self) -> int:
        return self.q.numel() * self.q.element_size() + self.scale.numel() * self.scale.element_size()


@dataclass(frozen=True)
class AttentionLayer:
    """A decoder self-attention layer of the layer map (docs/LAYER_MAP.md): its bank name ("block.index"), the
    latent cells one of its tokens covers per side, and its width (channels)."""
    name: str
    downscale: int
    channels: int

    def tokens(self, latent_hw: tuple[int, int]) -> int:
        # the UNet's stride-2 convolutions round up at every level
        return -(-latent_hw[0] // self.downscale) * -(-latent_hw[1] // self.downscale)


@dataclass(frozen=True)
class BankPolicy:
    """What to record and where. ``None`` step (layer) sets mean every step (layer)."""
    dtype: torch.dtype = torch.float16
    device: str = "cpu"
    attention_steps: Optional[frozenset[int]] = None
    feature_steps: Optional[frozenset[int]] = None
    record_attention: bool = True
    record_features: bool = True
    attention_layers: Optional[frozenset[str]] = None

    def wants_attention(self, step: int, layer: Optional[str] = None) -> bool:
        """Whether ``step`` is recorded (and, given ``layer``, that layer at that step). A layer left out is not
        recomputed at edit time: the edit's self-attention runs on its own keys there."""
        if not self.record_attention or (self.attention_steps is not None and step not in self.attention_steps):
            return False
        return layer is None or self.attention_layers is None or layer in self.attention_layers

    def wants_features(self, step: int) -> bool:
        return self.record_features and (self.feature_steps is None or step in self.feature_steps)


@dataclass
class MemoryBank:
    sigmas: Tensor                      # descending sampling sigmas, ending with 0 (float32, cpu)
    latent_shape: tuple[int, ...]       # [1, C, h, w]
    model_tag: str                      # identifies the model that made it
    policy: BankPolicy = field(default_factory=BankPolicy)
    latents: list[Tensor] = field(default_factory=list)
    attention: dict[tuple[int, str], Tensor] = field(default_factory=dict)
    features: dict[int, list[Tensor]] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.sigmas) - 1

    def step_index(self, sigma: float, rel_tol: float = 1e-4) -> Optional[int]:
        """The sampling step whose sigma is ``sigma`` (None when it is not one of this bank's sigmas)."""
        diffs = (self.sigmas[:-1] - float(sigma)).abs()
        i = int(torch.argmin(diffs))
        return i if float(diffs[i]) <= rel_tol * max(float(sigma), 1e-8) + 1e-7 else None

    def record_attention(self, step: int, layer: str, tokens: Tensor) -> None:
        if not self.policy.wants_attention(step, layer):
            return
        if self.policy.dtype == torch.int8:
            self.attention[(step, layer)] = QuantizedTokens.quantize(tokens, self.policy.device)
        else:
            self.attention[(step, layer)] = tokens.detach().to(device=self.policy.device, dtype=self.policy.dtype,
                                                               copy=True)

    def record_features(self, step: int, feats: list[Tensor]) -> None:
        if self.policy.wants_features(step):
            dtype = torch.float16 if self.policy.dtype == torch.int8 else self.policy.dtype
            self.features[step] = [f.detach().to(device=self.policy.device, dtype=dtype, copy=True) for f in feats]

    def attention_at(self, step: int, layer: str) -> Optional[Tensor]:
        entry = self.attention.get((step, layer))
        return entry.dequantize() if isinstance(entry, QuantizedTokens) else entry

    def inverted_latent(self, step: int) -> Tensor:
        """z_inv(step): this bank's image inverted to the noise level of sampling step ``step``."""
        return self.latents[step]

    def nbytes(self) -> int:
        tensors = list(self.latents) + [f for fs in self.features.values() for f in fs]
        attention = sum(a.nbytes() if isinstance(a, QuantizedTokens) else a.numel() * a.element_size()
                        for a in self.attention.values())
        return attention + sum(t.numel() * t.element_size() for t in tensors)

    def release(self) -> None:
        self.latents.clear()
        self.attention.clear()
        self.features.clear()

    def check_compatible(self, sigmas: Tensor, latent_shape: tuple[int, ...], field_name: str = "memory_bank") -> None:
        """Refuse a bank made for other sampling sigmas or another latent size."""
        if not self.latents:
            raise DragonInputError(field_name, "is empty (released or interrupted): run the inversion again")
        if tuple(latent_shape[-2:]) != tuple(self.latent_shape[-2:]):
            raise DragonInputError(field_name, f"was made for a {self.latent_shape[-1]}x{self.latent_shape[-2]} latent, "
                                   f"this one is {latent_shape[-1]}x{latent_shape[-2]}: invert this image")
        if len(sigmas) != len(self.sigmas) or not torch.allclose(sigmas.float().cpu(), self.sigmas, rtol=1e-4, atol=1e-6):
            raise DragonInputError(field_name, f"was inverted over {self.steps} steps with other sigmas; sample with the "
                                   "inversion's sigmas (DragonBankSigmas) and the same step count")

    def describe(self) -> str:
        mb = self.nbytes() / 2 ** 20
        layers = len({layer for _, layer in self.attention})
        return (f"{self.steps} steps, latent {self.latent_shape[-1]}x{self.latent_shape[-2]}, "
                f"{len(self.attention)} attention entries over {layers} layers, {len(self.features)} feature steps, "
                f"{mb:.1f} MiB ({str(self.policy.dtype).replace('torch.', '')} on {self.policy.device})")


# The default bank's budget. Users of drag-editing packs run 8-12 GB cards; the bank lives on the offload device
# (CPU RAM) by default, and 1 GB is what an SDXL edit can add there next to the model's own offloaded copy.
DEFAULT_BANK_BUDGET_BYTES = 10 ** 9


def estimate_bank_bytes(policy: BankPolicy, layers: Sequence[AttentionLayer], latent_shape: tuple[int, ...],
                        steps: int) -> int:
    """Bytes of a bank recorded with ``policy`` over ``steps`` steps (latents and attention; features, when
    recorded, are not counted): what ``MemoryBank.nbytes`` reports after the inversion."""
    latent_hw = tuple(latent_shape[-2:])
    latents = (steps + 1) * math.prod(latent_shape) * 4
    per_step = 0
    for layer in layers:
        if policy.attention_layers is not None and layer.name not in policy.attention_layers:
            continue
        tokens = layer.tokens(latent_hw)
        if policy.dtype == torch.int8:
            per_step += tokens * layer.channels + tokens * 4  # int8 values, one float32 scale per token
        else:
            per_step += tokens * layer.channels * torch.empty((), dtype=policy.dtype).element_size()
    recorded = sum(1 for step in range(steps) if policy.wants_attention(step))
    return latents + recorded * per_step


def default_policy(layers: Sequence[AttentionLayer], latent_shape: tuple[int, ...], steps: int, device: str,
                   budget: int = DEFAULT_BANK_BUDGET_BYTES) -> BankPolicy:
    """The bank recorded when no options are given: int8 attention at every step, energy features recomputed.

    Every decoder self-attention layer when that fits ``budget`` (SD-1.5 at 512 px); otherwise whole decoder
    levels, finest first, as long as they fit (SDXL at 1024 px: its 64x64 level). The finest attended level
    carries the most spatial detail of the inversion branch, which is what cross-branch attention keeps; the
    coarse levels of SDXL hold 30 of its 36 layers at a quarter of the tokens each. When not even the finest
    level fits, nothing but the latents is recorded and the inversion branch is recomputed per step (lean)."""
    full = BankPolicy(dtype=torch.int8, device=device, record_features=False)
    if estimate_bank_bytes(full, layers, latent_shape, steps) <= budget:
        return full
    chosen: list[str] = []
    for downscale in sorted({layer.downscale for layer in layers}):
        trial = chosen + [layer.name for layer in layers if layer.downscale == downscale]
        if estimate_bank_bytes(replace(full, attention_layers=frozenset(trial)), layers, latent_shape, steps) > budget:
            break
        chosen = trial
    if not chosen:
        return replace(full, record_attention=False)
    return replace(full, attention_layers=frozenset(chosen))

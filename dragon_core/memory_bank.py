"""The memory bank: what one DDIM inversion pass records for the edit (SPEC §1, §2).

- ``latents[i]``: the inverted latent at ``sigmas[i]`` (sigma space), i = 0 (x_T) .. steps (x_0);
- ``attention[(i, layer)]``: the normalised input of each recorded decoder self-attention layer in the
  reference branch at step i ([1, N, C]); the K/V projections are applied at use time;
- ``features[i]``: the decoder feature maps the energy compares against, at guided steps.
Everything is stored in ``policy.dtype`` on ``policy.device`` (the host's offload device by default).
``torch.int8`` stores attention tokens quantised per token (symmetric, absmax scale), as int8 KV caches do:
a quarter of float32, half of float16, with a relative error of at most 1/254 of each token's largest value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

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
class BankPolicy:
    """What to record and where. ``None`` step sets mean every step."""
    dtype: torch.dtype = torch.float16
    device: str = "cpu"
    attention_steps: Optional[frozenset[int]] = None
    feature_steps: Optional[frozenset[int]] = None
    record_attention: bool = True
    record_features: bool = True

    def wants_attention(self, step: int) -> bool:
        return self.record_attention and (self.attention_steps is None or step in self.attention_steps)

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
        if not self.policy.wants_attention(step):
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

    def reference_latent(self, step: int) -> Tensor:
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

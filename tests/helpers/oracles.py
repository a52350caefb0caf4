"""Test oracles (not product code): DDIM sampling sigmas (the pack takes them from ComfyUI) and plain
multi-head attention (the host runs its own)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def ddim_uniform_sigmas(train_sigmas: Tensor, steps: int) -> Tensor:
    """Descending sampling sigmas ending with 0, the timesteps 1, 1+k, 1+2k, ... (k = T // steps).

    ComfyUI's ``ddim_uniform`` scheduler, and for 50 steps of a 1000-step model the DDIM timesteps 981, 961,
    ..., 1 that the authors' code uses (SD's scheduler config: steps_offset 1)."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if steps > len(train_sigmas) - 1:
        raise ValueError(f"steps: at most {len(train_sigmas) - 1} for this model, got {steps}")
    stride = max(len(train_sigmas) // steps, 1)
    picked = train_sigmas[1::stride][:steps]
    return torch.cat([picked.flip(0), picked.new_zeros(1)]).to(torch.float32)


def attention(q: Tensor, k: Tensor, v: Tensor, heads: int) -> Tensor:
    """Reference multi-head attention on [B, N, heads*d] tensors."""
    b, n, inner = q.shape
    d = inner // heads
    q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, d).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(1, 2).reshape(b, n, inner)

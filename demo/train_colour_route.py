"""The autoencoder's starting point: a near-linear colour route through ComfyUI's AutoencoderKL.

Training then refines shape and edges from a model that already carries colour.

A module of demo/train_demo_model.py (the developer script; the pack never imports it).
"""
from __future__ import annotations

from typing import Any

import torch

from . import architecture
from .train_common import zero_

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


def colour_route_init(ae: torch.nn.Module, images: torch.Tensor, cfg: dict[str, Any]) -> None:
    """Start the autoencoder as a near-linear one: the latent's first three channels are the 4x4 means of
    R, G, B and the decoder upsamples them back (about 26 dB on these scenes).

    Why: from a random init, every run of this architecture collapsed to grey images at about 20 dB for
    thousands of steps: the weak colour-difference directions must cross two GroupNorms (32 groups) that
    normalise away each group's per-image mean and scale. Holding the colour signal in groups (s, -s, 10)
    keeps those norms near-affine (the mean is exactly 10/3, the scale varies by ~1 %), so colour passes
    from the first step and training refines shape and edges instead. Residual branches start at zero.
    """
    from comfy.ldm.modules.diffusionmodules.model import ResnetBlock

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
        z_in = torch.cat([pooled, pooled.new_zeros(pooled.shape[0], z - 3, *pooled.shape[2:])], dim=1)
        h = dec.conv_in(ae.post_quant_conv(z_in))
        h = dec.mid.block_2(dec.mid.attn_1(dec.mid.block_1(h)))
        for level in reversed(dec.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        target = torch.nn.functional.interpolate(pooled, scale_factor=architecture.LATENT_DOWNSCALE)
        _calibrate(dec.conv_out, torch.nn.functional.silu(dec.norm_out(h)), target, 3)

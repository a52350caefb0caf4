"""Checks that the edit, the latent and the banks belong together, with errors naming the input at fault."""
from __future__ import annotations

import torch

from ..dragon_core.grids import ImageSize
from ..dragon_core.errors import DragonInputError
from .model_identity import check_same_model
from .unet_layout import vae_factor


def check_edit_matches_latent(size: ImageSize, latent_hw: tuple[int, int], factor: int) -> None:
    """Refuses an edit drawn on an image that is not the one encoded into this latent."""
    if (size.height, size.width) != (latent_hw[0] * factor, latent_hw[1] * factor):
        raise DragonInputError("edit", f"was drawn on a {size.width}x{size.height} image but the latent is "
                               f"{latent_hw[1]}x{latent_hw[0]} (a {latent_hw[1] * factor}x{latent_hw[0] * factor} image "
                               "for this model); connect the image that was VAE-encoded")


def check_reference_bank(edit, reference_bank, model) -> None:
    """Refuses a reference bank that is not the inversion of the edit's reference image with this MODEL."""
    check_same_model(getattr(reference_bank, "model_tag", ""), model, "reference_bank", "the reference image")
    size = getattr(edit, "reference_size", None)
    if size is None:
        return
    factor = vae_factor(model)
    h, w = tuple(reference_bank.latent_shape[-2:])
    if (size.height, size.width) != (h * factor, w * factor):
        raise DragonInputError("reference_bank", f"was made from a {w * factor}x{h * factor} image ({w}x{h} latent) but "
                               f"reference_image is {size.width}x{size.height}; invert the reference image itself "
                               "(VAEEncode it and connect its DragonDDIMInversion)")


def check_latent(latent: dict) -> torch.Tensor:
    if not isinstance(latent, dict) or "samples" not in latent:
        raise DragonInputError("latent", "must be a LATENT (connect VAEEncode)")
    if "noise_mask" in latent:
        raise DragonInputError("latent", "has a noise_mask (from SetLatentNoiseMask / VAEEncodeForInpaint); "
                               "DragonDiffusion needs a plain VAEEncode latent")
    samples = latent["samples"]
    if getattr(samples, "is_nested", False) or samples.dim() != 4:
        raise DragonInputError("latent", f"must be an image latent [B, C, H, W], got shape {tuple(samples.shape)}")
    if samples.shape[0] != 1:
        raise DragonInputError("latent", f"has a batch of {samples.shape[0]}; DragonDiffusion edits one image at a "
                               "time (use a batch of 1, e.g. with LatentFromBatch)")
    if not torch.isfinite(samples).all():
        raise DragonInputError("latent", "contains NaN or infinite values")
    return samples

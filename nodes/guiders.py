"""The ComfyUI guiders: the inversion's recording guider and the edit's guider (attention, guidance, locks)."""
from __future__ import annotations

from typing import Optional

import torch

import comfy.samplers

from ..dragon_core.background import background_keep_mask
from ..dragon_core.errors import DragonInputError
from ..dragon_core.geometry import build_geometry
from ..dragon_core.guidance import GuidanceConfig, content_gradient_needed, energy_gradient
from ..dragon_core.memory_bank import BankPolicy, MemoryBank
from ..dragon_core.object_lock import object_lock
from ..dragon_core.sampling import step_sigma_down
from ..dragon_core.start_latent import start_latent
from ..dragon_core.step import Blend, edit_step_x0
from .grad_weights import inference_tensors_as_normal, normal_tensor
from .input_checks import check_edit_matches_latent, check_reference_bank
from .model_identity import check_same_model
from .patches import EDIT, FEATURES, PLAIN, RECORD, FeaturesReady, patched_clone, with_pass
from .runs import EditRun, RecordRun
from .sampler_support import check_noise, check_sampler, off_grid_error
from .unet_layout import unet_layout, vae_factor



class DragonInversionGuider(comfy.samplers.CFGGuider):
    """Cond-only guider whose UNet passes record the memory bank."""

    def __init__(self, model, positive, run: RecordRun):
        super().__init__(patched_clone(model, run, RECORD))
        self.inner_set_conds({"positive": positive})
        self.run = run

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        return comfy.samplers.sampling_function(self.inner_model, x, timestep, None, self.conds.get("positive"),
                                                1.0, model_options=model_options, seed=seed)


class DragonGuider(comfy.samplers.CFGGuider):
    """CFG guider with DragonDiffusion's cross-branch attention and energy guidance.

    Works with euler, ddim and the pack's dragon_ddim on the inversion's sigmas: the energy gradient is folded
    into the returned x0 so that their step equals the paper's guided DDIM step (dragon_core.step holds the
    per-step recipe; this class adapts it to ComfyUI). ``sde_eta`` is set by the dragon_ddim sampler while it
    runs, so that the fold matches its regional-SDE steps. Every other sampler, added noise and any evaluation
    off the bank's sigmas are refused (nodes/sampler_support.py says why).
    """

    def __init__(self, model, positive, negative, cfg: float, bank: MemoryBank, edit, guidance: GuidanceConfig,
                 reference_bank: Optional[MemoryBank] = None):
        layout = unet_layout(model)
        check_same_model(bank.model_tag, model, "memory_bank", "the image")
        latent_hw = tuple(bank.latent_shape[-2:])
        check_edit_matches_latent(edit.size, latent_hw, vae_factor(model))
        if reference_bank is not None:
            check_reference_bank(edit, reference_bank, model)
        if guidance.paper_inversion:
            for name, b in (("memory_bank", bank), ("reference_bank", reference_bank)):
                if b is not None and float(b.sigmas[-1]) == 0.0:
                    raise DragonInputError(name, f"was inverted to a clean latent (sigma 0); the preset "
                                           f"{guidance.preset!r} follows the authors' inversion, which starts from "
                                           "alpha_bar_0: set DragonDDIMInversion's inversion_end to "
                                           "'alpha_bar_0 (paper)' (or use the pack preset)")
        with torch.inference_mode(False):
            geometry = build_geometry(edit, latent_hw, whole_cells=guidance.whole_cells)
            self.background_keep = background_keep_mask(geometry.latent_edit_region, guidance.background_grow)
            reference_clean = reference_bank.latents[-1] if reference_bank is not None else None
            self.object_lock = object_lock(geometry, bank.latents[-1].clone(), reference_clean)
            # the authors' drag writes its start latent into the stored inversion: step 0's energy target
            self.step0_inverted = (start_latent(bank.latents[0], geometry)
                                   if guidance.drag_step0_from_start and geometry.mode == "drag" else None)
        self.sde_eta: Optional[torch.Tensor] = None
        self.run = EditRun(bank, reference_bank, geometry, guidance, layout)
        super().__init__(patched_clone(model, self.run, EDIT))
        self.set_conds(positive, negative)
        self.set_cfg(cfg)
        self.bank = bank
        self.reference_bank = reference_bank

    # ComfyUI entry point: every sampler step calls this
    def predict_noise(self, x, timestep, model_options={}, seed=None):
        sigma = timestep.flatten()[0]
        step = self.bank.step_index(float(sigma))
        if step is None:
            raise off_grid_error(float(sigma), self.bank.sigmas)
        cfg_prediction = super().predict_noise
        g = self.run.guidance
        if step in g.attention_steps:
            self.recompute_inversion_branch(step, model_options)
        blends = []
        if step in g.background_steps:
            blends.append(Blend(self.bank.inverted_latent(step), self.background_keep))
        if step in g.object_steps and self.object_lock.keep is not None:
            blends.append(Blend(self.carried_inversion(step), self.object_lock.keep))
        sigma_next = self.bank.sigmas[step + 1].to(x)
        sigma_down = step_sigma_down(step, sigma, sigma_next, g.sde_steps, self.sde_eta)
        energy = None
        if step in g.guided_steps and g.energy_scale != 0:
            content = content_gradient_needed(step, g, self.run.geometry)
            energy = lambda x_in: self.energy_gradient(x_in, sigma, step, model_options, content=content)
        return edit_step_x0(x, sigma, sigma_down, lambda x_in: cfg_prediction(x_in, timestep, model_options, seed),
                            blends=blends, energy_grad=energy,
                            x0_transform=self.object_lock.x0 if step in g.object_steps else None)

    def carried_inversion(self, step: int) -> torch.Tensor:
        """The inverted latent of ``step`` with the object carried to its target (see dragon_core.object_lock)."""
        ref = self.reference_bank.inverted_latent(step) if self.reference_bank is not None else None
        return self.object_lock.carried(self.bank.inverted_latent(step), ref)

    def energy_gradient(self, x, sigma, step, model_options, content: bool = True):
        inv = self.inverted_features(self.bank, step, model_options)  # no grad needed: plain inference
        rep = (self.inverted_features(self.reference_bank, step, model_options)
               if self.reference_bank is not None else None)
        # the feature pass and its backward see the model's inference weights as normal aliases: no copy
        with inference_tensors_as_normal(), torch.enable_grad():
            inv = [normal_tensor(f) for f in inv]
            rep = [normal_tensor(f) for f in rep] if rep is not None else None
            x_plain = normal_tensor(x)
            sigma_plain = normal_tensor(sigma)
            return energy_gradient(lambda xx, ss: self.features(xx, ss, model_options), x_plain, sigma_plain, inv,
                                   self.run.geometry, self.run.guidance, rep, self.run.stats, content)

    def features(self, x, sigma, model_options):
        """Decoder features of a cond-only, bank-free UNet pass that stops after the last needed block."""
        options = with_pass(model_options, FEATURES)
        self.run.feature_sink = []
        timestep = sigma.reshape(1).expand(x.shape[0]).to(x.device)
        try:
            comfy.samplers.calc_cond_batch(self.inner_model, [self.conds.get("positive")], x, timestep, options)
        except FeaturesReady:
            pass
        feats, self.run.feature_sink = self.run.feature_sink, []
        if len(feats) != 2:
            raise RuntimeError(f"feature pass captured {len(feats)} maps instead of 2 (layout {self.run.layout})")
        return feats

    def recompute_inversion_branch(self, step: int, model_options) -> None:
        """For a bank that did not record this step's attention (lean), run the inversion branch now: one
        cond-only pass on the inverted latent z_inv(step) records its attention inputs and features."""
        self.run.scratch.clear()
        for bank in (self.bank, self.reference_bank):
            if bank is None or bank.policy.wants_attention(step):
                continue
            scratch = MemoryBank(sigmas=bank.sigmas, latent_shape=bank.latent_shape, model_tag=bank.model_tag,
                                 policy=BankPolicy(dtype=torch.float32, device=str(self.model_patcher.load_device)))
            device = self.model_patcher.load_device
            x_inv = bank.inverted_latent(step).to(device)
            timestep = bank.sigmas[step].to(device).reshape(1)
            self.run.recording = scratch
            try:
                comfy.samplers.sampling_function(self.inner_model, x_inv, timestep, None, self.conds.get("positive"),
                                                 1.0, model_options=with_pass(model_options, RECORD))
            finally:
                self.run.recording = None
            self.run.scratch[id(bank)] = scratch

    def inverted_features(self, bank: MemoryBank, step: int, model_options):
        override = self.step0_inverted if bank is self.bank and step == 0 else None
        stored = bank.features.get(step) if override is None else None
        scratch = self.run.scratch.get(id(bank))
        if stored is None and scratch is not None and override is None:
            stored = scratch.features.get(step)
        device = self.model_patcher.load_device
        if stored is not None:
            return [f.to(device=device, dtype=torch.float32).clone() for f in stored]
        with torch.no_grad():
            x_inv = (bank.inverted_latent(step) if override is None else override).to(device)
            feats = self.features(normal_tensor(x_inv), bank.sigmas[step].to(device), model_options)
        return [f.detach().float() for f in feats]

    def plain_eps(self, x, sigma, model_options):
        """eps of a cond-only pass without bank attention (time travel's re-inversion)."""
        options = with_pass(model_options, PLAIN)
        timestep = sigma.reshape(1).expand(x.shape[0]).to(x.device)
        denoised = comfy.samplers.sampling_function(self.inner_model, x, timestep, None, self.conds.get("positive"),
                                                    1.0, model_options=options)
        return (x - denoised) / sigma

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
               seed=None):
        from .samplers import dragon_ddim_function  # samplers.py imports this module

        check_sampler(sampler, (dragon_ddim_function,))
        check_noise(noise)
        self.bank.check_compatible(sigmas, tuple(latent_image.shape))
        if self.reference_bank is not None:
            self.reference_bank.check_compatible(sigmas, self.reference_bank.latent_shape, "reference_bank")
        if denoise_mask is not None:
            raise DragonInputError("latent", "has a noise_mask; DragonDiffusion keeps the background through its "
                                   "energy and attention, remove the mask (or use an edit region instead)")
        # A copy: samplers may write into the sigmas (uni_pc does), and these are often DragonBankSigmas' output,
        # which ComfyUI caches and hands to the next prompt.
        return super().sample(noise, latent_image, sampler, sigmas.clone(), denoise_mask, callback, disable_pbar,
                              seed)

"""The adapter between ComfyUI and dragon_core: UNet layout, ModelPatcher patches, guiders and the samplers.

Nothing here touches the incoming MODEL: every run works on ``model.clone()`` and registers its hooks through
ModelPatcher methods (attn1_patch, output_block_patch) that live in the clone's model_options only. Which pass
is running (inversion recording, edited sampling, feature extraction, plain) travels in
``transformer_options["dragon_pass"]``, so the same patches serve every pass without global state.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import torch

import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.samplers
import comfy.utils
import latent_preview
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

from ..dragon_core.attention import InjectionMode, self_attention_context, token_grid, token_mask
from ..dragon_core.background import background_keep_mask, blend_toward_reference, refold_denoised
from ..dragon_core.object_lock import object_lock
from ..dragon_core.edit_spec import ImageSize
from ..dragon_core.errors import DragonInputError
from ..dragon_core.geometry import EditGeometry, build_geometry
from ..dragon_core.guidance import GuidanceConfig, GuidanceStats, content_gradient_needed, energy_gradient
from ..dragon_core.inversion import ddim_invert
from ..dragon_core.memory_bank import BankPolicy, MemoryBank
from ..dragon_core.sampling import sample_dragon, seeded_noise
from ..dragon_core.schedule import guided_denoised
from ..dragon_core.features import feature_blocks

PASS_KEY = "dragon_pass"
RECORD, EDIT, FEATURES, PLAIN = "record", "edit", "features", "plain"


# ------------------------------------------------------------------------------------------ UNet layout


@dataclass(frozen=True)
class UNetLayout:
    architecture: str
    feature_blocks: tuple[int, int]   # output blocks whose input h is the (semantic, geometric) feature
    decoder_attention: tuple[str, ...]  # "block.index" of every decoder self-attention layer


def unet_layout(model) -> UNetLayout:
    """The layer map of a ComfyUI MODEL, or a DragonInputError naming what is unsupported."""
    base = model.model
    arch = type(base).__name__
    model_type = getattr(base, "model_type", None)
    if model_type != comfy.model_base.ModelType.EPS:
        name = getattr(model_type, "name", str(model_type))
        raise DragonInputError("model", f"{arch} is a {name} model; DragonDiffusion's DDIM inversion needs an "
                               "eps-prediction UNet (SD-1.x, SD-2.x base, SDXL)")
    prediction = _patched_prediction(model)
    if prediction is not None:
        raise DragonInputError("model", f"{arch} samples as {prediction} here (its model_sampling is patched, e.g. by "
                               "ModelSamplingDiscrete or ModelSamplingSD3); DragonDiffusion's DDIM inversion needs "
                               "eps prediction: remove that node or set its sampling to eps")
    unet = getattr(base, "diffusion_model", None)
    if not isinstance(unet, UNetModel):
        raise DragonInputError("model", f"{arch} ({type(unet).__name__}) is not a UNet; supported: SD-1.x, SD-2.x "
                               "base, SDXL and other eps-prediction UNets of ComfyUI's UNetModel family")
    per_level = [n + 1 for n in reversed(list(unet.num_res_blocks))]
    starts = [sum(per_level[:k]) for k in range(len(per_level))]
    if len(starts) < 2:
        raise DragonInputError("model", f"{arch} has a single-level UNet; multi-scale features need two levels")
    attn = []
    for b, block in enumerate(unet.output_blocks):
        for module in block:
            if isinstance(module, SpatialTransformer):
                attn += [f"{b}.{k}" for k in range(len(module.transformer_blocks))]
    if not attn:
        raise DragonInputError("model", f"{arch} has no self-attention in its decoder; cross-branch attention "
                               "needs one")
    return UNetLayout(arch, (starts[-2], starts[-1]), tuple(attn))


def _patched_prediction(model) -> Optional[str]:
    """None when the MODEL's effective model_sampling (object patches included) is ComfyUI's eps parametrisation;
    otherwise the class that defines what it predicts (V_PREDICTION, EDM, CONST = flow, X0, LCM ...)."""
    import comfy.model_sampling

    sampling = model.get_model_object("model_sampling")
    for method in ("calculate_denoised", "calculate_input", "noise_scaling"):
        owner = next((c for c in type(sampling).__mro__ if method in vars(c)), None)
        if owner is not comfy.model_sampling.EPS:
            return getattr(owner, "__name__", type(sampling).__name__)
    return None


def model_tag(model) -> str:
    return f"{type(model.model).__name__}@{id(model.model):x}"


# ------------------------------------------------------------------------------- inference-mode weights


class GradCapableWeights:
    """Normal copies of the inference-mode weights of some modules, in place only while autograd needs them.

    ComfyUI runs nodes under torch.inference_mode(), and weights created or patched there cannot be saved for
    backward. The copies are made once per edit (not per step: they are cached here) and swapped in around each
    energy gradient; everywhere else the modules hold their own tensors, and because the MODEL is shared, after
    the edit it is exactly as it was. ``release`` drops the copies.

    The copies are views into one flat buffer per (device, dtype), not one allocation per tensor. Measured on
    the CPU (SD-1.5, glibc malloc): with ~700 separately allocated copies held, every later UNet pass had its
    activations freshly mapped by the allocator (~650k page faults, +15-30 % time per CFG pass, also in the steps
    without guidance); with one buffer the passes run as fast as without copies.
    """

    _ALIGN_BYTES = 64  # each view starts on a cache line, as the allocator aligns separate tensors

    def __init__(self):
        self._copies: dict[tuple[int, str, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self.copied_bytes = 0

    @contextmanager
    def swapped_in(self, modules):
        swapped = []
        try:
            with torch.inference_mode(False):
                wanted = {(id(module), kind, name): (module, kind, table, name, tensor)  # a module reached twice: once
                          for root in modules for module in root.modules()
                          for kind, table in (("parameter", module._parameters), ("buffer", module._buffers))
                          for name, tensor in list(table.items())
                          if tensor is not None and tensor.is_inference()}.values()
                self._copy_missing(wanted)
                for module, kind, table, name, tensor in wanted:
                    table[name] = self._copies[(id(module), kind, name)][1]
                    swapped.append((table, name, tensor))
            yield
        finally:
            for table, name, original in swapped:
                table[name] = original

    def _copy_missing(self, wanted) -> None:
        """Copy the tensors not cached yet (or replaced since, e.g. re-patched weights) into flat buffers."""
        groups: dict[tuple, list] = {}
        for module, kind, _, name, tensor in wanted:
            key = (id(module), kind, name)
            cached = self._copies.get(key)
            if cached is None or cached[0] is not tensor:
                groups.setdefault((tensor.device, tensor.dtype), []).append((key, kind, tensor))
        for (device, dtype), entries in groups.items():
            align = max(1, self._ALIGN_BYTES // torch.empty((), dtype=dtype).element_size())
            offsets, total = [], 0
            for _, _, tensor in entries:
                offsets.append(total)
                total += -(-tensor.numel() // align) * align
            flat = torch.empty(total, device=device, dtype=dtype)
            for offset, (key, kind, tensor) in zip(offsets, entries):
                copy = flat[offset:offset + tensor.numel()].view(tensor.shape)
                copy.copy_(tensor)
                if kind == "parameter":
                    copy = torch.nn.Parameter(copy, requires_grad=False)
                self._copies[key] = (tensor, copy)
                self.copied_bytes += tensor.numel() * tensor.element_size()

    def release(self) -> None:
        self._copies.clear()


def _normal(t: torch.Tensor) -> torch.Tensor:
    return t.clone() if t.is_inference() else t


def _control_modules(conds) -> list:
    found = []
    for cond_list in conds.values():
        for c in cond_list or []:
            control = c.get("control")
            while control is not None:
                model = getattr(control, "control_model", None)
                if isinstance(model, torch.nn.Module):
                    found.append(model)
                control = getattr(control, "previous_controlnet", None)
    return found


# ----------------------------------------------------------------------------------------------- patches


class FeaturesReady(Exception):
    """Stops a feature pass once the last needed decoder block has been reached."""


class _PatchBase:
    def __init__(self, run):
        self.run = run

    def __deepcopy__(self, memo):  # ModelPatcher.clone deep-copies model_options; the run is shared state
        return self


class BankAttentionPatch(_PatchBase):
    """attn1_patch: records the reference branch's tokens (RECORD) or feeds them to the edit (EDIT)."""

    def __call__(self, n, context, value, extra_options):
        kind = extra_options.get(PASS_KEY)
        block = extra_options.get("block")
        if kind not in (RECORD, EDIT) or block is None or block[0] != "output":
            return n, context, value
        layer = f"{block[1]}.{extra_options.get('block_index', 0)}"
        if kind == RECORD:
            self.run.record_attention(n, layer, extra_options)
            return n, context, value
        injected = self.run.attention_context(n, layer, extra_options)
        if injected is None:
            return n, context, value
        return n, injected, injected


class FeatureCapturePatch(_PatchBase):
    """output_block_patch: takes the decoder features (RECORD, FEATURES); a FEATURES pass stops there."""

    def __call__(self, h, hsp, transformer_options):
        kind = transformer_options.get(PASS_KEY)
        if kind not in (RECORD, FEATURES):
            return h, hsp
        block = transformer_options["block"][1]
        blocks = self.run.layout.feature_blocks
        if block in blocks:
            self.run.feature_sink.append(h)
            if block == blocks[-1]:
                if kind == FEATURES:
                    raise FeaturesReady()
                self.run.commit_features(transformer_options)
        return h, hsp


class SkipCopyPatch(_PatchBase):
    """input_block_patch_after_skip: in a FEATURES pass with grad, the next encoder block gets a copy of h.

    ComfyUI's UNet adds ControlNet residuals to the skip tensors in place when the decoder pops them
    (openaimodel.apply_control: ``hsp += ctrl``). Without the copy, the next encoder block has saved that same
    tensor for backward and autograd fails with "modified by an inplace operation"; with it, the tensor kept in
    the skip list is saved by nobody. Costs one copy of each encoder output, in the grad pass only."""

    def __call__(self, h, transformer_options):
        if transformer_options.get(PASS_KEY) == FEATURES and h.requires_grad:
            return h.clone()
        return h


def _with_pass(model_options: dict, kind: str) -> dict:
    options = comfy.model_patcher.create_model_options_clone(model_options)
    options.setdefault("transformer_options", {})[PASS_KEY] = kind
    return options


def _step_of(bank: MemoryBank, options: dict) -> Optional[int]:
    sigmas = options.get("sigmas")
    return None if sigmas is None else bank.step_index(float(sigmas.flatten()[0]))


def _cond_rows(x: torch.Tensor, options: dict) -> torch.Tensor:
    """The rows of a batched UNet input that belong to the positive (cond) chunk."""
    chunks = options.get("cond_or_uncond") or [0]
    per = x.shape[0] // len(chunks)
    k = chunks.index(0) if 0 in chunks else 0
    return x[k * per:(k + 1) * per][:1]


# ------------------------------------------------------------------------------------------------ runs


class RecordRun:
    """State of one inversion: fills a MemoryBank while the UNet runs."""

    def __init__(self, bank: MemoryBank, layout: UNetLayout):
        self.bank = bank
        self.layout = layout
        self.feature_sink: list = []

    def record_attention(self, n, layer, options):
        step = _step_of(self.bank, options)
        if step is not None:
            self.bank.record_attention(step, layer, _cond_rows(n, options))

    def commit_features(self, options):
        step = _step_of(self.bank, options)
        feats, self.feature_sink = self.feature_sink, []
        if step is not None:
            self.bank.record_features(step, [_cond_rows(f, options) for f in feats])


class EditRun:
    """State of one guided edit: the bank, the geometry on this latent, the guidance, and counters."""

    def __init__(self, bank: MemoryBank, reference_bank: Optional[MemoryBank], geometry: EditGeometry,
                 guidance: GuidanceConfig, layout: UNetLayout):
        self.bank = bank
        self.reference_bank = reference_bank
        self.geometry = geometry
        self.guidance = guidance
        self.layout = layout
        self.feature_sink: list = []
        self.stats = GuidanceStats()
        self._token_masks: dict = {}
        # Reference-branch passes recomputed at edit time when a bank did not record a step (lean banks):
        # one-step scratch banks keyed by id(bank), and the one being filled by the running RECORD pass.
        self.scratch: dict[int, MemoryBank] = {}
        self.recording: Optional[MemoryBank] = None

    def attention_for(self, bank: MemoryBank, step: int, layer: str):
        stored = bank.attention_at(step, layer)
        if stored is not None:
            return stored
        scratch = self.scratch.get(id(bank))
        return scratch.attention_at(step, layer) if scratch is not None else None

    def record_attention(self, n, layer, options):
        if self.recording is not None:
            step = _step_of(self.recording, options)
            if step is not None:
                self.recording.record_attention(step, layer, _cond_rows(n, options))

    def attention_context(self, n, layer, options):
        step = _step_of(self.bank, options)
        if step is None or step not in self.guidance.attention_steps:
            return None
        own = self.attention_for(self.bank, step, layer)
        if own is None or own.shape[1] != n.shape[1]:
            return None
        mode = self.guidance.attention_mode
        if mode is not InjectionMode.COMPOSE:
            return self_attention_context(n, mode, own)
        ref = self.attention_for(self.reference_bank, step, layer) if self.reference_bank is not None else None
        if ref is None:
            return None
        keep_base, keep_ref = self._compose_masks(n.shape[1], ref.shape[1])
        if not keep_ref.any():
            return None
        return self_attention_context(n, mode, own, ref, keep_base, keep_ref)

    def _compose_masks(self, n_base: int, n_ref: int):
        key = (n_base, n_ref)
        if key not in self._token_masks:
            g = self.geometry
            base_hw = token_grid(g.latent_hw, n_base)
            ref_latent = self.reference_bank.latent_shape[-2:]
            ref_hw = token_grid(tuple(ref_latent), n_ref)
            self._token_masks[key] = (token_mask(g.keep_mask, base_hw), token_mask(g.reference_mask, ref_hw))
        return self._token_masks[key]

    def commit_features(self, options):
        feats, self.feature_sink = self.feature_sink, []
        if self.recording is not None:
            step = _step_of(self.recording, options)
            if step is not None:
                self.recording.record_features(step, [_cond_rows(f, options) for f in feats])


# ------------------------------------------------------------------------------------------------ guiders


def _patched_clone(model, run, kind: str):
    patched = model.clone()
    patched.set_model_attn1_patch(BankAttentionPatch(run))
    patched.set_model_output_block_patch(FeatureCapturePatch(run))
    patched.set_model_input_block_patch_after_skip(SkipCopyPatch(run))
    patched.model_options.setdefault("transformer_options", {})[PASS_KEY] = kind
    return patched


class DragonInversionGuider(comfy.samplers.CFGGuider):
    """Cond-only guider whose UNet passes record the memory bank."""

    def __init__(self, model, positive, run: RecordRun):
        super().__init__(_patched_clone(model, run, RECORD))
        self.inner_set_conds({"positive": positive})
        self.run = run

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        return comfy.samplers.sampling_function(self.inner_model, x, timestep, None, self.conds.get("positive"),
                                                1.0, model_options=model_options, seed=seed)


class DragonGuider(comfy.samplers.CFGGuider):
    """CFG guider with DragonDiffusion's cross-branch attention and energy guidance.

    Works with any first-order sampler (euler, ddim, the pack's dragon_ddim) on the inversion's sigmas: the
    energy gradient is folded into the returned x0 so that the step equals the paper's guided DDIM step.
    """

    def __init__(self, model, positive, negative, cfg: float, bank: MemoryBank, edit, guidance: GuidanceConfig,
                 reference_bank: Optional[MemoryBank] = None):
        layout = unet_layout(model)
        if bank.model_tag != model_tag(model):
            raise DragonInputError("memory_bank", f"was made with another model ({bank.model_tag}); invert the image "
                                   f"with this MODEL ({model_tag(model)})")
        latent_hw = tuple(bank.latent_shape[-2:])
        check_edit_matches_latent(edit.size, latent_hw, vae_factor(model))
        if reference_bank is not None:
            check_reference_bank(edit, reference_bank, model)
        with torch.inference_mode(False):
            geometry = build_geometry(edit, latent_hw)
            self.background_keep = background_keep_mask(geometry.latent_edit_region, guidance.background_grow)
            reference_clean = reference_bank.latents[-1] if reference_bank is not None else None
            self.object_lock = object_lock(geometry, bank.latents[-1].clone(), reference_clean)
        self.run = EditRun(bank, reference_bank, geometry, guidance, layout)
        super().__init__(_patched_clone(model, self.run, EDIT))
        self.set_conds(positive, negative)
        self.set_cfg(cfg)
        self.bank = bank
        self.reference_bank = reference_bank
        self.grad_weights = GradCapableWeights()

    # ComfyUI entry point: every sampler step calls this
    def predict_noise(self, x, timestep, model_options={}, seed=None):
        sigma = timestep.flatten()[0]
        step = self.bank.step_index(float(sigma))
        g = self.run.guidance
        if step is not None and step in g.attention_steps:
            self.recompute_reference_branch(step, model_options)
        x_in = x
        if step is not None and step in g.background_steps:
            x_in = blend_toward_reference(x, self.bank.reference_latent(step), self.background_keep)
        if step is not None and step in g.object_steps and self.object_lock.keep is not None:
            x_in = blend_toward_reference(x_in, self.carried_reference(step), self.object_lock.keep)
        denoised = super().predict_noise(x_in, timestep, model_options, seed)
        if step is None:
            return denoised
        sigma_next = self.bank.sigmas[step + 1].to(x)
        if step in g.guided_steps and g.energy_scale != 0:
            eps = (x_in - denoised) / sigma
            grad = self.energy_gradient(x_in, sigma, step, model_options,
                                        content=content_gradient_needed(step, g.background_steps))
            denoised = guided_denoised(x_in, eps, grad.to(x.dtype), sigma, sigma_next)
        if x_in is not x:
            denoised = refold_denoised(denoised, x_in, x, sigma, sigma_next)
        if step in g.object_steps:
            denoised = self.object_lock.x0(denoised)
        return denoised

    def carried_reference(self, step: int) -> torch.Tensor:
        """The inverted latent of ``step`` with the object carried to its target (see dragon_core.object_lock)."""
        ref = self.reference_bank.reference_latent(step) if self.reference_bank is not None else None
        return self.object_lock.carried(self.bank.reference_latent(step), ref)

    def energy_gradient(self, x, sigma, step, model_options, content: bool = True):
        # reference features need no grad: computed on the model's own (faster) weights, outside the swap
        ref = self.reference_features(self.bank, step, model_options)
        rep = (self.reference_features(self.reference_bank, step, model_options)
               if self.reference_bank is not None else None)
        modules = [self.inner_model.diffusion_model] + _control_modules(self.conds)
        with torch.inference_mode(False), torch.enable_grad(), self.grad_weights.swapped_in(modules):
            ref = [_normal(f) for f in ref]
            rep = [_normal(f) for f in rep] if rep is not None else None
            x_plain = _normal(x)
            sigma_plain = _normal(sigma)
            return energy_gradient(lambda xx, ss: self.features(xx, ss, model_options), x_plain, sigma_plain, ref,
                                   self.run.geometry, self.run.guidance, rep, self.run.stats, content)

    def features(self, x, sigma, model_options):
        """Decoder features of a cond-only, bank-free UNet pass that stops after the last needed block."""
        options = _with_pass(model_options, FEATURES)
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

    def recompute_reference_branch(self, step: int, model_options) -> None:
        """For a bank that did not record this step's attention (lean), run the reference branch now: one
        cond-only pass on the inverted latent z_ref(step) records its attention inputs and features."""
        self.run.scratch.clear()
        for bank in (self.bank, self.reference_bank):
            if bank is None or bank.policy.wants_attention(step):
                continue
            scratch = MemoryBank(sigmas=bank.sigmas, latent_shape=bank.latent_shape, model_tag=bank.model_tag,
                                 policy=BankPolicy(dtype=torch.float32, device=str(self.model_patcher.load_device)))
            device = self.model_patcher.load_device
            x_ref = bank.reference_latent(step).to(device)
            timestep = bank.sigmas[step].to(device).reshape(1)
            self.run.recording = scratch
            try:
                comfy.samplers.sampling_function(self.inner_model, x_ref, timestep, None, self.conds.get("positive"),
                                                 1.0, model_options=_with_pass(model_options, RECORD))
            finally:
                self.run.recording = None
            self.run.scratch[id(bank)] = scratch

    def reference_features(self, bank: MemoryBank, step: int, model_options):
        stored = bank.features.get(step)
        scratch = self.run.scratch.get(id(bank))
        if stored is None and scratch is not None:
            stored = scratch.features.get(step)
        device = self.model_patcher.load_device
        if stored is not None:
            return [f.to(device=device, dtype=torch.float32).clone() for f in stored]
        with torch.no_grad():
            x_ref = bank.reference_latent(step).to(device)
            feats = self.features(_normal(x_ref), bank.sigmas[step].to(device), model_options)
        return [f.detach().float() for f in feats]

    def plain_eps(self, x, sigma, model_options):
        """eps of a cond-only pass without bank attention (time travel's re-inversion)."""
        options = _with_pass(model_options, PLAIN)
        timestep = sigma.reshape(1).expand(x.shape[0]).to(x.device)
        denoised = comfy.samplers.sampling_function(self.inner_model, x, timestep, None, self.conds.get("positive"),
                                                    1.0, model_options=options)
        return (x - denoised) / sigma

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
               seed=None):
        self.bank.check_compatible(sigmas, tuple(latent_image.shape))
        if self.reference_bank is not None:
            self.reference_bank.check_compatible(sigmas, self.reference_bank.latent_shape, "reference_bank")
        if denoise_mask is not None:
            raise DragonInputError("latent", "has a noise_mask; DragonDiffusion keeps the background through its "
                                   "energy and attention, remove the mask (or use an edit region instead)")
        try:
            return super().sample(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)
        finally:
            self.grad_weights.release()

    @property
    def weights_copied_bytes(self) -> int:
        """Bytes of inference-mode weights this guider copied for autograd (once per edit, not per step)."""
        return self.grad_weights.copied_bytes


def vae_factor(model) -> int:
    """Image pixels per latent cell. ComfyUI 0.3.75's latent formats don't say (newer ones have
    spacial_downscale_ratio); every UNet family it ships uses 8."""
    return int(getattr(model.model.latent_format, "spacial_downscale_ratio", 8))


def check_edit_matches_latent(size: ImageSize, latent_hw: tuple[int, int], factor: int) -> None:
    """Refuses an edit drawn on an image that is not the one encoded into this latent."""
    if (size.height, size.width) != (latent_hw[0] * factor, latent_hw[1] * factor):
        raise DragonInputError("edit", f"was drawn on a {size.width}x{size.height} image but the latent is "
                               f"{latent_hw[1]}x{latent_hw[0]} (a {latent_hw[1] * factor}x{latent_hw[0] * factor} image "
                               "for this model); connect the image that was VAE-encoded")


def check_reference_bank(edit, reference_bank, model) -> None:
    """Refuses a reference bank that is not the inversion of the edit's reference image with this MODEL."""
    if getattr(reference_bank, "model_tag", None) != model_tag(model):
        raise DragonInputError("reference_bank", f"was made with another model ({reference_bank.model_tag}); invert "
                               f"the reference image with this MODEL ({model_tag(model)})")
    size = getattr(edit, "reference_size", None)
    if size is None:
        return
    factor = vae_factor(model)
    h, w = tuple(reference_bank.latent_shape[-2:])
    if (size.height, size.width) != (h * factor, w * factor):
        raise DragonInputError("reference_bank", f"was made from a {w * factor}x{h * factor} image ({w}x{h} latent) but "
                               f"reference_image is {size.width}x{size.height}; invert the reference image itself "
                               "(VAEEncode it and connect its DragonDDIMInversion)")


# ----------------------------------------------------------------------------------------------- samplers


def _interrupt_check():
    comfy.model_management.throw_exception_if_processing_interrupted()


def inversion_sampler_function(model, x, sigmas, extra_args=None, callback=None, disable=None, bank=None):
    """A KSAMPLER function running DDIM inversion; ``sigmas`` are the descending sampling sigmas."""
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])

    def eps_fn(x_in, sigma):
        _interrupt_check()
        return (x_in - model(x_in, sigma * s_in, **extra_args)) / sigma

    def on_step(i, x_level):
        if callback is not None:
            callback({"x": x_level, "i": bank.steps - 1 - i, "sigma": sigmas[i], "sigma_hat": sigmas[i],
                      "denoised": x_level})

    trajectory = ddim_invert(eps_fn, x, sigmas, on_step)
    bank.latents[:] = [t.detach().to(device=bank.policy.device, dtype=torch.float32, copy=True) for t in trajectory]
    return trajectory[0]


class _SigmaPassThrough(comfy.samplers.KSAMPLER):
    """KSAMPLER that starts from the given latent as is (the inversion starts at sigma 0)."""

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        extra_args["denoise_mask"] = denoise_mask
        k_callback = None
        total_steps = len(sigmas) - 1
        if callback is not None:
            k_callback = lambda d: callback(d["i"], d["denoised"], d["x"], total_steps)
        model_k = comfy.samplers.KSamplerX0Inpaint(model_wrap, sigmas)
        return self.sampler_function(model_k, latent_image, sigmas, extra_args=extra_args, callback=k_callback,
                                     disable=disable_pbar, **self.extra_options)


def run_inversion(model, latent: dict, positive, steps: int, policy: BankPolicy) -> tuple[MemoryBank, dict]:
    """DDIM-invert a LATENT with the model, recording the memory bank in the same UNet passes."""
    layout = unet_layout(model)
    samples = check_latent(latent)
    model_sampling = model.get_model_object("model_sampling")
    max_steps = len(model_sampling.sigmas) - 1
    if not 1 <= steps <= max_steps:
        raise DragonInputError("steps", f"must be 1..{max_steps} for this model (its training schedule has "
                               f"{max_steps + 1} timesteps), got {steps}")
    sigmas = comfy.samplers.calculate_sigmas(model_sampling, "ddim_uniform", steps).cpu()
    sigmas = sigmas.float()
    bank = MemoryBank(sigmas=sigmas, latent_shape=tuple(samples.shape), model_tag=model_tag(model), policy=policy)
    run = RecordRun(bank, layout)
    guider = DragonInversionGuider(model, positive, run)
    sampler = _SigmaPassThrough(inversion_sampler_function, extra_options={"bank": bank})
    callback = latent_preview.prepare_callback(guider.model_patcher, steps)
    try:
        x_T = guider.sample(torch.zeros_like(samples), samples, sampler, sigmas, callback=callback,
                            disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=0)
    except BaseException:
        bank.release()
        raise
    return bank, {"samples": x_T.cpu()}


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


def dragon_ddim_function(model, x, sigmas, extra_args=None, callback=None, disable=None, seed=0):
    """KSAMPLER function: DDIM with DiffEditor's regional SDE and time travel, for DragonGuider."""
    guider = getattr(model, "inner_model", None)
    if not isinstance(guider, DragonGuider):
        raise DragonInputError("sampler", "dragon_ddim runs only under DragonGuider (or the DragonSampler node)")
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])
    g = guider.run.guidance
    geometry = guider.run.geometry

    def denoise(x_, sigma, i):
        _interrupt_check()
        return model(x_, sigma * s_in, **extra_args)

    eta = None
    if g.sde_steps:
        region = geometry.latent_edit_region.to(device=x.device, dtype=x.dtype)
        eta = g.sde_eta_inside * region + g.sde_eta_outside * (1.0 - region)

    def invert_eps(x_in, sigma):
        _interrupt_check()
        return guider.plain_eps(x_in, sigma, extra_args.get("model_options", {}))

    def on_step(i, x_next, x0):
        if callback is not None:
            callback({"x": x_next, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": x0})

    return sample_dragon(denoise, x, sigmas, sde_steps=g.sde_steps, sde_eta=eta, noise_fn=seeded_noise(seed),
                         time_travel_steps=g.time_travel_steps, time_travel_repeats=g.time_travel_repeats,
                         invert_eps=invert_eps, callback=on_step)

"""What the cost and memory benchmarks share: a random-weight UNet built through ComfyUI, its inputs, and the
three things they time: plain DDIM inversion + CFG sampling, the inversion with the memory bank, and the edit.

Random weights: the compute and the memory of a UNet pass do not depend on them, and nothing can be downloaded
on the machines these run on. Every function needs ``start(cpu)`` first (the real ComfyUI in this process).
"""
from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from dragon_dev.bootstrap import in_process_pack  # noqa: E402

import torch  # noqa: E402

ARCHITECTURES = ("sd15", "sdxl", "tiny", "narrow-sdxl")  # the last two: CPU smoke runs of the scripts
_pack = None


def start(cpu: bool = True):
    """Set up ComfyUI in this process and import the pack (once)."""
    global _pack
    if _pack is None:
        _pack = in_process_pack(cpu=cpu)
        import comfy.utils

        comfy.utils.PROGRESS_BAR_ENABLED = False
    return _pack


@dataclass
class Workload:
    """A MODEL and the inputs of one edit at ``size`` px over ``steps`` steps."""
    arch: str
    model: object
    positive: list
    negative: list
    latent: dict
    image: torch.Tensor
    size: int
    steps: int
    cfg: float = 4.0


def build_model(arch: str, dtype: torch.dtype = torch.float32):
    """The UNet of ``arch`` with seeded random weights, built under inference mode as a checkpoint loader does."""
    from dragon_dev import tiny_model as tm

    with torch.inference_mode():
        if arch == "sd15":
            return tm.build_model(tm.sd15_config(), seed=0, dtype=dtype, in_place=True)
        if arch == "sdxl":
            return tm.build_model(tm.sdxl_config(), seed=0, dtype=dtype, in_place=True)
        if arch == "tiny":
            return tm.build_model(tm.tiny_config(), seed=0, dtype=dtype)
        if arch == "narrow-sdxl":
            return tm.build_narrow_sdxl(seed=0)
    raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")


def layout_model(arch: str):
    """The MODEL of ``arch`` on the meta device: its module tree and layer map, no weights allocated."""
    from dragon_dev import tiny_model as tm

    configs = {"sd15": tm.sd15_config, "sdxl": tm.sdxl_config, "tiny": tm.tiny_config}
    if arch not in configs:
        raise ValueError(f"no layout-only model for {arch!r}; one of {sorted(configs)}")
    return tm.layout_only_model(configs[arch]())


def weight_bytes(arch: str, dtype: torch.dtype) -> int:
    """The UNet's weights in bytes at ``dtype``, from its module tree on the meta device (nothing allocated)."""
    if arch == "narrow-sdxl":
        return 0
    unet = layout_model(arch).model.diffusion_model
    return sum(p.numel() for p in unet.parameters()) * torch.empty((), dtype=dtype).element_size()


def available_ram() -> int:
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024


def workload(arch: str, model, size: int, steps: int) -> Workload:
    from dragon_dev import tiny_model as tm

    gen = torch.Generator().manual_seed(0)
    if arch in ("sdxl", "narrow-sdxl"):
        context = 2048 if arch == "sdxl" else 64
        positive = tm.sdxl_conditioning(1, 10, tokens=77, context_dim=context, size=size)
        negative = tm.sdxl_conditioning(2, 20, tokens=77, context_dim=context, size=size)
    else:
        context = 768 if arch == "sd15" else tm.TINY_CONTEXT_DIM
        positive = [[torch.randn(1, 77, context, generator=gen), {}]]
        negative = [[torch.randn(1, 77, context, generator=gen), {}]]
    lat = size // 8
    return Workload(arch, model, positive, negative, {"samples": torch.randn(1, 4, lat, lat, generator=gen)},
                    torch.rand(1, size, size, 3, generator=gen), size, steps)


def plain_inversion(w: Workload) -> torch.Tensor:
    """The baseline's first half: DDIM inversion (cond only, nothing recorded); returns x_T."""
    import comfy.samplers

    pack = start()
    samplers = pack.nodes.samplers
    BankPolicy, MemoryBank = pack.dragon_core.memory_bank.BankPolicy, pack.dragon_core.memory_bank.MemoryBank
    sigmas = _sigmas(w)
    bank = MemoryBank(sigmas=sigmas, latent_shape=tuple(w.latent["samples"].shape), model_tag="plain",
                      policy=BankPolicy(record_attention=False, record_features=False))
    inv = comfy.samplers.CFGGuider(w.model)
    inv.set_conds(w.positive, w.positive)
    inv.set_cfg(1.0)
    sampler = comfy.samplers.KSAMPLER(samplers.inversion_sampler_function, extra_options={"bank": bank})
    return inv.sample(torch.zeros_like(w.latent["samples"]), w.latent["samples"], sampler, sigmas,
                      disable_pbar=True, seed=0)


def plain_sampling(w: Workload, x_T: torch.Tensor) -> torch.Tensor:
    """The baseline's second half: CFG sampling from ``x_T`` with the stock sampler."""
    import comfy.samplers

    guider = comfy.samplers.CFGGuider(w.model)
    guider.set_conds(w.positive, w.negative)
    guider.set_cfg(w.cfg)
    return guider.sample(torch.zeros_like(x_T), x_T, comfy.samplers.sampler_object("euler"), _sigmas(w),
                         disable_pbar=True, seed=0)


def plain(w: Workload) -> torch.Tensor:
    """What the edit is compared with: DDIM inversion (cond only, nothing recorded) + CFG sampling from its x_T."""
    return plain_sampling(w, plain_inversion(w))


def _sigmas(w: Workload) -> torch.Tensor:
    import comfy.samplers

    return comfy.samplers.calculate_sigmas(w.model.get_model_object("model_sampling"), "ddim_uniform",
                                           w.steps).cpu().float()


def invert(w: Workload, options: Optional[dict] = None):
    """DragonDDIMInversion's work: the bank with the default policy (or DragonBankOptions' ``options``)."""
    nodes = start().nodes
    policy = nodes.inversion_nodes.policy_from_options(options, w.steps, w.model, w.latent)
    return nodes.samplers.run_inversion(w.model, w.latent, w.positive, w.steps, policy)[0]


def warm_up(w: Workload, device) -> None:
    """One short plain run and one short edit, untimed: first model load, first kernels, one-time allocations."""
    small = replace(w, steps=2)
    measure(lambda: plain(small), device)
    measure(lambda: edit(small, invert(small)), device)


def edit(w: Workload, bank, schedule: str = "DragonDiffusion", mode: str = "move"):
    """DragonSampler's work on ``bank``: (the guider, whose stats count the passes; the edited latent)."""
    nodes = start().nodes
    s = w.size
    if mode == "move":
        box = [s // 4, s // 4, s // 4, s // 4]
        spec = nodes.edit_nodes.DragonEditMove().build(w.image, s // 8, s // 16, 1.0, json.dumps({"boxes": [box]}))[0]
    else:
        spec = nodes.edit_nodes.DragonEditDrag().build(w.image, json.dumps({"points": [[s // 3, s // 3, s // 2,
                                                                                        s // 2]]}))[0]
    options = dict(nodes.sampling_nodes.guidance_option_defaults(), schedule=schedule)
    guider = nodes.sampling_nodes.make_guider(w.model, w.positive, w.negative, bank, spec, w.cfg, options)
    return guider, nodes.sampling_nodes.run_edit(guider, 0)


# ------------------------------------------------------------------------------------------- measuring


class PeakRSS:
    """Peak resident memory of this process while the block runs, sampled every millisecond by a thread, above
    what it held when the block began. Honest only when freed memory goes back to the kernel at once: run the
    process with ``TRACKING_MALLOC`` (see ``reexec_with``)."""

    def __enter__(self):
        self._stop = threading.Event()
        self.start_bytes = self.peak_bytes = _rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.001):
            self.peak_bytes = max(self.peak_bytes, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, _rss())

    @property
    def growth(self) -> int:
        return self.peak_bytes - self.start_bytes


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# glibc: every allocation of 64 KiB or more is its own mapping, returned to the kernel when freed, so resident
# memory follows what is alive (costs page faults: for memory figures, never for timings).
TRACKING_MALLOC = "glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=0"
# glibc: never return freed memory, never map afresh: timings measure arithmetic rather than page faults.
STEADY_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


def reexec_with(tunables: str) -> None:
    """Restart this script with glibc's malloc configured by ``tunables`` (it is read at process start)."""
    if os.environ.get("GLIBC_TUNABLES") != tunables:
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, GLIBC_TUNABLES=tunables))


@dataclass
class Measured:
    seconds: float
    cpu_seconds: float     # this process's CPU time (all its threads): less sensitive than wall time to load
    peak_bytes: int        # above the start: CUDA max_memory_allocated - allocated at start, or RSS growth
    peak_total_bytes: int  # CUDA max_memory_allocated, or peak RSS of the process
    result: object = None


def measure(fn: Callable[[], object], device: torch.device) -> Measured:
    """Time ``fn`` under inference mode (as ComfyUI runs nodes) and its peak memory on ``device``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start_t, start_cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            out = fn()
        torch.cuda.synchronize()
        seconds, cpu = time.perf_counter() - start_t, time.process_time() - start_cpu
        peak = torch.cuda.max_memory_allocated()
        return Measured(seconds, cpu, peak - base, peak, out)
    with PeakRSS() as rss:
        start_t, start_cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            out = fn()
        seconds, cpu = time.perf_counter() - start_t, time.process_time() - start_cpu
    return Measured(seconds, cpu, rss.growth, rss.peak_bytes, out)


class SavedActivations:
    """What one gradient pass holds for its backward, measured in the guider's first energy gradient:

    - ``bytes``: the storages autograd saves in it (the activations of the feature pass and the energies).
      Storages shared with the model's weights (the aliases of nodes/grad_weights.py) are not counted: they are
      the model's own memory.
    - ``graph_bytes``: the heap the feature pass with grad adds besides the bytes of the storages it saves and of
      the features it returns: the autograd graph's own bookkeeping (a node per operation, about a kilobyte
      each, whatever the image size) and the allocator's rounding of those storages (page-sized under
      ``TRACKING_MALLOC``). From glibc's ``mallinfo2``; None where that is not available."""

    def __init__(self, model):
        self.weights = {t.untyped_storage().data_ptr() for t in list(model.model.parameters()) +
                        list(model.model.buffers())}
        self.bytes: Optional[int] = None
        self.graph_bytes: Optional[int] = None

    def __enter__(self):
        guiders = start().nodes.guiders
        self._module, self._real = guiders, guiders.energy_gradient
        self._guider, self._real_features = guiders.DragonGuider, guiders.DragonGuider.__dict__["features"]
        seen: dict[int, int] = {}

        def pack(t):
            ptr = t.untyped_storage().data_ptr()
            if ptr not in self.weights:
                seen[ptr] = t.untyped_storage().nbytes()
            return t

        def spy(*args, **kwargs):
            if self.bytes is not None:
                return self._real(*args, **kwargs)
            seen.clear()
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out = self._real(*args, **kwargs)
            self.bytes = sum(seen.values())
            return out

        def features(guider, *args, **kwargs):
            # the first energy gradient's feature pass with grad only (spy sets bytes when that gradient ends)
            if self.bytes is not None or not torch.is_grad_enabled():
                return self._real_features(guider, *args, **kwargs)
            saved_before, heap_before = sum(seen.values()), heap_in_use()
            feats = self._real_features(guider, *args, **kwargs)
            if heap_before is not None:
                returned = sum(f.untyped_storage().nbytes() for f in feats)
                self.graph_bytes = heap_in_use() - heap_before - (sum(seen.values()) - saved_before) - returned
            return feats

        guiders.energy_gradient = spy
        self._guider.features = features
        return self

    def __exit__(self, *exc):
        self._module.energy_gradient = self._real
        self._guider.features = self._real_features


def heap_in_use() -> Optional[int]:
    """Bytes glibc's malloc has handed out and not taken back (``mallinfo2``), or None without glibc 2.33+."""
    mallinfo2 = _mallinfo2()
    if mallinfo2 is None:
        return None
    info = mallinfo2()
    return info.uordblks + info.hblkhd  # in use from the heap + in separate mappings


@functools.cache
def _mallinfo2():
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                          "fsmblks", "uordblks", "fordblks", "keepcost")]
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = MallInfo2
    return fn


class PhaseTimers:
    """Own time (nested calls' time taken out) spent in DragonGuider's phases while the block runs, summed over
    calls. This process only: the methods are wrapped on the class on entry and restored on exit (a benchmark's
    instrument, not the pack's).

    ``seconds`` maps labels to seconds; the labels' times add up to the edit sampling's ``predict_noise`` total.
    The guider's ``features`` runs twice per guided step: with grad (the energy's forward) and without (the
    inverted latent's features, called from ``inverted_features``); they get separate labels."""

    FEATURES_WITH_GRAD = "feature pass with grad (forward, truncated)"
    INVERTED_FEATURES = "inverted-latent features (no-grad truncated pass)"
    ENERGY = "energies + backward passes"
    RECOMPUTE = "inversion branch recompute (lean banks)"
    STEP = "CFG passes with bank attention + the step's own work"
    _METHODS = {"predict_noise": STEP, "energy_gradient": ENERGY, "inverted_features": INVERTED_FEATURES,
                "recompute_inversion_branch": RECOMPUTE, "features": None}

    def __init__(self, guider_class=None):
        self._guider = guider_class  # DragonGuider unless given (tests pass a stand-in)

    def __enter__(self):
        from collections import defaultdict

        self._guider = self._guider or start().nodes.guiders.DragonGuider
        self._originals = {name: self._guider.__dict__[name] for name in self._METHODS}
        self.seconds = defaultdict(float)
        self._stack = []  # [label, start, time spent in nested timed calls]
        for name, label in self._METHODS.items():
            setattr(self._guider, name, self._timed(self._originals[name], label))
        return self

    def _timed(self, original, label):
        def wrapper(*args, **kwargs):
            this = label or (self.FEATURES_WITH_GRAD if torch.is_grad_enabled() else self.INVERTED_FEATURES)
            self._stack.append([this, time.perf_counter(), 0.0])
            try:
                return original(*args, **kwargs)
            finally:
                this, t0, nested = self._stack.pop()
                elapsed = time.perf_counter() - t0
                self.seconds[this] += elapsed - nested
                if self._stack:
                    self._stack[-1][2] += elapsed
        return wrapper

    def __exit__(self, *exc):
        for name, original in self._originals.items():
            setattr(self._guider, name, original)


def spread(values: list[float]) -> float:
    """(max - min) / median: how far apart repeated measurements of one ratio lie."""
    return (max(values) - min(values)) / median(values)


def mib(n: Optional[float]) -> Optional[float]:
    return None if n is None else round(n / 2 ** 20, 1)

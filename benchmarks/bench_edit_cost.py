"""Cost of a DragonDiffusion edit against plain DDIM inversion + sampling, on the real SD-1.5 UNet
architecture built through ComfyUI with random weights (compute does not depend on the weights).

    .venv/bin/python benchmarks/bench_edit_cost.py                       # CPU: 256 px, 20 steps
    python benchmarks/bench_edit_cost.py --device cuda --size 512 --steps 50 --dtype fp16

Measures, in one process: (a) plain DDIM inversion + CFG sampling (run before and after (b), averaged), (b) the
full edit through the nodes (inversion with memory bank + DragonSampler, DragonDiffusion schedule), (c) the
DiffEditor schedule on the same bank; prints wall times, (b)/(a) and (c)/(a), UNet forward/backward counts,
memory-bank bytes (measured, and scaled to 512 px / 50 steps) and peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import inprocess_host  # noqa: E402

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--size", type=int, default=256, help="image side in pixels (latent = size / 8)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--dtype", choices=["fp32", "fp16"], default="fp32")
    ap.add_argument("--mode", choices=["move", "drag"], default="move")
    ap.add_argument("--bank", choices=list(BANK_PRESETS), default="default",
                    help="memory-bank policy: default (int8 attention, features recomputed), fast (float16 attention "
                         "and features recorded), lean (nothing recorded but latents)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--allocator", choices=["default", "steady"], default="default",
                    help="steady: rerun this script with glibc malloc told to keep freed memory (GLIBC_TUNABLES), so "
                         "CPU timings measure compute rather than page faults (see benchmarks/README.md)")
    args = ap.parse_args()
    if args.allocator == "steady" and os.environ.get("GLIBC_TUNABLES") != STEADY_MALLOC:
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, GLIBC_TUNABLES=STEADY_MALLOC))

    pack = inprocess_host.host(cpu=args.device == "cpu")
    import comfy.model_management as mm
    import comfy.patcher_extension
    import comfy.samplers
    from dragon_test_helpers import tiny_model as tm

    samplers = pack.nodes.samplers
    sampling_nodes = pack.nodes.sampling_nodes
    inversion_nodes = pack.nodes.inversion_nodes
    edit_nodes = pack.nodes.edit_nodes
    MemoryBank = pack.dragon_core.memory_bank.MemoryBank
    BankPolicy = pack.dragon_core.memory_bank.BankPolicy

    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    t0 = time.perf_counter()
    with torch.inference_mode():  # as CheckpointLoaderSimple builds it: inference tensors, as in a real graph
        base = tm.build_model(tm.sd15_config(), seed=0, dtype=dtype)
    build_s = time.perf_counter() - t0
    device = mm.get_torch_device()

    calls = {"forward": 0, "rows": 0}
    model = base.clone()

    def count(executor, x, *a, **kw):
        calls["forward"] += 1
        calls["rows"] += x.shape[0]
        return executor(x, *a, **kw)

    model.add_wrapper(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, count)
    gen = torch.Generator().manual_seed(0)
    positive = [[torch.randn(1, 77, 768, generator=gen), {}]]
    negative = [[torch.randn(1, 77, 768, generator=gen), {}]]
    lat = args.size // 8
    latent = {"samples": torch.randn(1, 4, lat, lat, generator=gen)}
    image = torch.rand(1, args.size, args.size, 3, generator=gen)
    cfg = 4.0

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    faults = {}

    def timed(fn, label=None):
        calls.update(forward=0, rows=0)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync()
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        with torch.inference_mode():
            out = fn()
        sync()
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        if label:  # page faults and kernel time: where the allocator, not the arithmetic, takes the time
            faults[label] = {"minor_page_faults": after.ru_minflt - before.ru_minflt,
                             "system_s": round(after.ru_stime - before.ru_stime, 1)}
        peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
        return out, seconds, dict(calls), peak

    # (a) plain: DDIM inversion (cond only, nothing recorded) + CFG sampling from its x_T
    def plain(steps=args.steps):
        bank = MemoryBank(sigmas=None, latent_shape=tuple(latent["samples"].shape), model_tag="plain",
                          policy=BankPolicy(record_attention=False, record_features=False))
        ms = model.get_model_object("model_sampling")
        sigmas = comfy.samplers.calculate_sigmas(ms, "ddim_uniform", steps).cpu().float()
        bank.sigmas = sigmas
        inv = comfy.samplers.CFGGuider(model)
        inv.set_conds(positive, positive)
        inv.set_cfg(1.0)
        sampler = samplers._SigmaPassThrough(samplers.inversion_sampler_function, extra_options={"bank": bank})
        x_T = inv.sample(torch.zeros_like(latent["samples"]), latent["samples"], sampler, sigmas, seed=0)
        guider = comfy.samplers.CFGGuider(model)
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg)
        return guider.sample(torch.zeros_like(x_T), x_T, comfy.samplers.sampler_object("euler"), sigmas, seed=0)

    options = BANK_PRESETS[args.bank]
    if options is not None:
        options = dict(options, device=str(mm.unet_offload_device()), feature_until_step=round(args.steps * 0.6))

    def edit_spec(bank):
        if args.mode == "move":
            box = [args.size // 4, args.size // 4, args.size // 4, args.size // 4]
            return edit_nodes.DragonEditMove().build(image, args.size // 8, args.size // 16, 1.0,
                                                     json.dumps({"boxes": [box]}))[0]
        s = args.size
        return edit_nodes.DragonEditDrag().build(image, json.dumps({"points": [[s // 3, s // 3, s // 2, s // 2]]}))[0]

    def invert():
        return samplers.run_inversion(model, latent, positive, args.steps,
                                  inversion_nodes.policy_from_options(options, args.steps))[0]

    def edit(schedule, bank):
        def run():
            guider = sampling_nodes.make_guider(model, positive, negative, bank, edit_spec(bank), cfg,
                                                dict(sampling_nodes.guidance_option_defaults(), schedule=schedule))
            sampling_nodes.run_edit(guider, 0)
            return guider
        return run

    timed(lambda: plain(1))  # warm-up (first model load, first kernels): untimed, else it lands on the baseline
    # The baseline runs before and after the edit it is compared with, and the ratio uses their mean: the phases
    # take minutes each, and a machine that drifts in speed would otherwise bias the ratio one way.
    _, plain_before_s, plain_calls, plain_peak = timed(plain, "a_before")
    bank, inversion_s, inversion_calls, inversion_peak = timed(invert, "inversion")
    guider_b, edit_b_s, edit_b_calls, edit_b_peak = timed(edit("DragonDiffusion", bank), "b")
    _, plain_after_s, _, _ = timed(plain, "a_after")
    guider_c, edit_c_s, edit_c_calls, edit_c_peak = timed(edit("DiffEditor", bank), "c")
    plain_s = (plain_before_s + plain_after_s) / 2

    per_step = bank.nbytes() / bank.steps
    mib = lambda v: None if v is None else round(v / 2 ** 20, 1)
    figures = {
        "device": str(device), "dtype": args.dtype, "allocator": args.allocator, "size": args.size,
        "steps": args.steps, "mode": args.mode,
        "bank_policy": args.bank, "model_build_s": round(build_s, 1),
        "a_plain_inversion_plus_sampling_s": round(plain_s, 2),
        "a_before_and_after_b_s": [round(plain_before_s, 2), round(plain_after_s, 2)],
        "inversion_with_bank_s": round(inversion_s, 2),
        "b_dragondiffusion_sampling_s": round(edit_b_s, 2),
        "c_diffeditor_sampling_s": round(edit_c_s, 2),
        "ratio_b_over_a": round((inversion_s + edit_b_s) / plain_s, 3),
        "ratio_c_over_a": round((inversion_s + edit_c_s) / plain_s, 3),
        "unet_forward_calls(rows)": {k: f"{v['forward']} ({v['rows']})" for k, v in
                                     (("a_plain", plain_calls), ("inversion", inversion_calls),
                                      ("b_sampling", edit_b_calls), ("c_sampling", edit_c_calls))},
        "b_feature_passes": guider_b.run.stats.feature_passes, "b_backward_passes": guider_b.run.stats.backward_passes,
        "c_feature_passes": guider_c.run.stats.feature_passes, "c_backward_passes": guider_c.run.stats.backward_passes,
        "weights_copied_for_grad_MiB": mib(guider_b.weights_copied_bytes),
        "bank_MiB": mib(bank.nbytes()),
        "bank_MiB_scaled_to_512px_50_steps": mib(per_step * (512 / args.size) ** 2 * 50),
        "peak_gpu_MiB": {"a": mib(plain_peak), "inversion": mib(inversion_peak), "b": mib(edit_b_peak),
                         "c": mib(edit_c_peak)},
        "max_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "page_faults_and_system_time": faults,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


# glibc: never return freed memory to the kernel, never serve an allocation by a fresh mmap. Left dynamic,
# malloc's choice to trim or mmap depends on the heap's history, and the same phase ran 140 s in one run and
# 217 s in the next with hundreds of thousands of page faults per UNet pass (PyTorch's CPU tuning guide suggests
# jemalloc/tcmalloc for the same reason). Applies to the whole process: baseline and edit alike.
STEADY_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"

BANK_PRESETS = {
    "default": None,
    "fast": {"dtype": "float16", "record_attention": True, "attention_from_step": 0, "record_features": True},
    "lean": {"dtype": "float16", "record_attention": False, "attention_from_step": 0, "record_features": False},
}


if __name__ == "__main__":
    main()

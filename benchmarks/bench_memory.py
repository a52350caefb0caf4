"""Peak memory of an edit against plain sampling, and the memory bank per policy, from the UNet's layer map.

    .venv/bin/python benchmarks/bench_memory.py --arch sd15 --sizes 256 512 --steps 4
    .venv/bin/python benchmarks/bench_memory.py --arch sdxl --dtype bf16 --sizes 256 384 --steps 4
    .venv/bin/python benchmarks/bench_memory.py --arch sdxl --bank-only     # the bank table alone, no weights

Random-weight UNets built through ComfyUI. For each size: the peak memory that plain DDIM inversion + CFG
sampling adds to the loaded model, the peak that the inversion with the bank + the edit adds, the bank, and the
bytes autograd saves in one gradient pass (the activations of the feature pass and the energies) with the
feature pass's graph bookkeeping (about a kilobyte per operation node, whatever the image size, with the
allocator's rounding of the saved storages), and whether

    edit peak <= plain peak + bank + one gradient pass's activations + its graph bookkeeping.

On the CPU the process reruns itself with glibc returning every freed block at once (harness.TRACKING_MALLOC),
so resident memory follows live tensors. With two sizes it fits the growth per latent cell and scales the peaks
to the architecture's native size (SD-1.5 512 px, SDXL 1024 px). Then the bank per policy at the native size and
50 steps (dragon_core.memory_bank.estimate_bank_bytes on the layer map), and a VRAM estimate for a native-size
fp16 edit: the model's weights + the edit's scaled peak at 2 bytes per value.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

import harness
import torch

NATIVE = {"sd15": 512, "sdxl": 1024, "tiny": 128, "narrow-sdxl": 128}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--arch", choices=harness.ARCHITECTURES, default="sd15")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--dtype", choices=list(DTYPES), default="fp32")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--bank-only", action="store_true",
                    help="only the bank per policy: the UNet's layer map on the meta device (no weights, no run)")
    args = ap.parse_args()
    if args.bank_only:
        pack = harness.start(cpu=True)
        figures = {"arch": args.arch, **bank_per_policy(pack, harness.layout_model(args.arch), NATIVE[args.arch])}
        return report(figures, args.json)
    if args.device == "cpu":
        harness.reexec_with(harness.TRACKING_MALLOC)

    pack = harness.start(cpu=args.device == "cpu")
    import comfy.model_management as mm

    device = mm.get_torch_device()
    if device.type == "cpu":
        need = harness.weight_bytes(args.arch, DTYPES[args.dtype]) * 1.2 + 2 ** 30
        free = harness.available_ram()
        if free < need:
            raise SystemExit(f"{args.arch} needs about {need / 2 ** 30:.1f} GiB of RAM here (weights + 20 % + 1 GiB), "
                             f"{free / 2 ** 30:.1f} GiB are available: not started (a shared machine would start "
                             "killing processes)")
    model = harness.build_model(args.arch, DTYPES[args.dtype])
    weights = sum(t.numel() * t.element_size() for t in model.model.diffusion_model.parameters())
    params = sum(t.numel() for t in model.model.diffusion_model.parameters())
    value_bytes = torch.empty((), dtype=DTYPES[args.dtype]).element_size()
    harness.warm_up(harness.workload(args.arch, model, args.sizes[0], args.steps), device)

    rows = []
    for size in args.sizes:
        w = harness.workload(args.arch, model, size, args.steps)
        a = harness.measure(lambda: harness.plain(w), device)
        with harness.SavedActivations(model) as saved:
            b = harness.measure(lambda: (harness.invert(w), None)[0], device)
            bank = b.result
            e = harness.measure(lambda: harness.edit(w, bank), device)
        # the bank exists through the edit: the edit's peak counts from before the inversion
        edit_peak = max(b.peak_bytes, bank.nbytes() + e.peak_bytes)
        graph = saved.graph_bytes or 0
        allowed = a.peak_bytes + bank.nbytes() + (saved.bytes or 0) + graph
        rows.append({"size": size, "latent_cells": (size // 8) ** 2, "plain_peak": a.peak_bytes,
                     "edit_peak": edit_peak, "bank": bank.nbytes(), "grad_pass_activations": saved.bytes,
                     "grad_pass_graph": saved.graph_bytes, "bound": allowed, "within": edit_peak <= allowed,
                     "within_without_graph": edit_peak <= allowed - graph, "plain_s": round(a.seconds, 1),
                     "edit_s": round(b.seconds + e.seconds, 1), "bank_describe": bank.describe()})
        r = rows[-1]
        print(f"{size:5d} px: plain peak {harness.mib(r['plain_peak']):8.1f} MiB | edit peak {harness.mib(edit_peak):8.1f}"
              f" MiB | bank {harness.mib(r['bank']):7.1f} MiB | grad-pass activations "
              f"{harness.mib(saved.bytes or 0):7.1f} MiB + graph {harness.mib(graph):5.1f} MiB | bound "
              f"{harness.mib(allowed):8.1f} MiB -> "
              f"{'within' if r['within'] else 'EXCEEDS'} ({r['plain_s']} s / {r['edit_s']} s)", flush=True)

    native = NATIVE[args.arch]
    figures = {"device": str(device), "arch": args.arch, "dtype": args.dtype, "steps": args.steps, "rows": rows,
               "unet_weights_MiB": harness.mib(weights), "unet_parameters": params}
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        cells = (native // 8) ** 2
        for key in ("plain_peak", "edit_peak", "grad_pass_activations"):
            slope = (hi[key] - lo[key]) / (hi["latent_cells"] - lo["latent_cells"])
            figures[f"{key}_per_latent_cell_bytes"] = round(slope, 1)
            figures[f"{key}_at_{native}px_MiB"] = harness.mib(hi[key] + slope * (cells - hi["latent_cells"]))
        edit_native = figures[f"edit_peak_at_{native}px_MiB"] * 2 ** 20
        fp16_edit = edit_native * 2 / value_bytes
        figures[f"vram_estimate_fp16_{native}px_GiB"] = round((params * 2 + fp16_edit) / 2 ** 30, 2)
        print(f"scaled to {native} px by the growth per latent cell: plain peak "
              f"{figures[f'plain_peak_at_{native}px_MiB']} MiB, edit peak {figures[f'edit_peak_at_{native}px_MiB']} MiB "
              f"({args.dtype})")
        print(f"VRAM estimate, {native} px fp16 edit: weights {params * 2 / 2 ** 30:.2f} GiB + edit peak "
              f"{fp16_edit / 2 ** 30:.2f} GiB = {figures[f'vram_estimate_fp16_{native}px_GiB']} GiB (bank on the offload "
              "device, as by default)")

    figures.update(bank_per_policy(pack, model, native))
    report(figures, args.json)


def bank_per_policy(pack, model, native: int) -> dict:
    """The bank of each policy at the native size and 50 steps, from the model's layer map (printed)."""
    mb = pack.dragon_core.memory_bank
    layers = pack.nodes.unet_layout.unet_layout(model).attention_layers
    shape = (1, 4, native // 8, native // 8)
    int8 = mb.BankPolicy(dtype=torch.int8, record_features=False)
    policies = {"default": mb.default_policy(layers, shape, 50, "cpu"), "int8, every layer": int8,
                "float16, every layer": replace(int8, dtype=torch.float16),
                "int8, every layer, steps 5-49": replace(int8, attention_steps=frozenset(range(5, 50))),
                "lean (latents only)": replace(int8, record_attention=False)}
    table = {}
    print(f"bank at {native} px, 50 steps (layer map; features not recorded):")
    for name, policy in policies.items():
        size = mb.estimate_bank_bytes(policy, layers, shape, 50)
        kept = len(layers) if policy.attention_layers is None else len(policy.attention_layers)
        table[name] = round(size / 1e6, 1)
        print(f"  {name:32s} {size / 1e6:8.1f} MB  ({kept if policy.record_attention else 0} of {len(layers)} layers)")
    return {"bank_at_native_50_steps_MB": table}


def report(figures: dict, path) -> None:
    print(json.dumps(figures, indent=2, default=str))
    if path:
        with open(path, "w") as f:
            json.dump(figures, f, indent=2, default=str)


if __name__ == "__main__":
    main()

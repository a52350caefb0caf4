"""The GPU run, prepared: SD-1.5 at 512 px and SDXL at 1024 px, fp16, 50 steps, random weights.

    python benchmarks/gpu_check.py                       # one GPU, under 8 minutes (H200-class: about 2)
    .venv/bin/python benchmarks/gpu_check.py --device cpu --configs tiny:64 narrow-sdxl:64 --steps 4 --dtype fp32

For each configuration, after an untimed 2-step warm-up: (a) plain DDIM inversion + CFG sampling and (b) the
inversion with the memory bank (default policy) + the DragonDiffusion move edit, each timed with its peak
memory (``torch.cuda.max_memory_allocated``, the loaded model included). Prints one line per configuration:
time of (a) and (b), the ratio (b) / (a), peak VRAM of each, the bank's size and policy, and whether the edit's
output is finite. Weights are random (nothing can be downloaded there); compute and memory do not depend on them.
"""
from __future__ import annotations

import argparse
import gc
import json
import time

import harness
import torch

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def run_config(arch: str, size: int, steps: int, dtype: torch.dtype, device: torch.device) -> dict:
    import comfy.model_management as mm

    t0 = time.perf_counter()
    model = harness.build_model(arch, dtype)
    build_s = time.perf_counter() - t0
    w = harness.workload(arch, model, size, steps)
    harness.warm_up(w, device)
    a = harness.measure(lambda: harness.plain(w), device)
    inversion = harness.measure(lambda: harness.invert(w), device)
    bank = inversion.result
    b = harness.measure(lambda: harness.edit(w, bank), device)
    guider, out = b.result
    edit_s = inversion.seconds + b.seconds
    row = {
        "arch": arch, "size": size, "steps": steps, "dtype": str(dtype).replace("torch.", ""),
        "model_build_s": round(build_s, 1),
        "plain_s": round(a.seconds, 3), "edit_s": round(edit_s, 3), "ratio": round(edit_s / a.seconds, 3),
        "plain_peak_MiB": harness.mib(a.peak_total_bytes),
        "edit_peak_MiB": harness.mib(max(inversion.peak_total_bytes, b.peak_total_bytes)),
        "bank_MiB": harness.mib(bank.nbytes()), "bank": bank.describe(),
        "edit_output_finite": bool(torch.isfinite(out).all()),
        "feature_passes": guider.run.stats.feature_passes, "backward_passes": guider.run.stats.backward_passes,
        "unet_weights_MiB": harness.mib(sum(p.numel() * p.element_size()
                                            for p in model.model.diffusion_model.parameters())),
    }
    del w, bank, guider, out, a, b, inversion, model
    mm.unload_all_models()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    ap.add_argument("--configs", nargs="+", default=["sd15:512", "sdxl:1024"], help="arch:size pairs")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--dtype", choices=list(DTYPES), default="fp16")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    harness.start(cpu=args.device == "cpu")
    import comfy.model_management as mm

    device = mm.get_torch_device()
    print(f"device {device}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""), flush=True)
    rows = []
    for config in args.configs:
        arch, size = config.split(":")
        row = run_config(arch, int(size), args.steps, DTYPES[args.dtype], device)
        rows.append(row)
        unit = "VRAM" if device.type == "cuda" else "RSS"
        print(f"{arch} {size} px {row['dtype']} {args.steps} steps: plain {row['plain_s']} s, edit {row['edit_s']} s, "
              f"ratio {row['ratio']}; peak {unit} plain {row['plain_peak_MiB']} MiB, edit {row['edit_peak_MiB']} MiB; "
              f"bank {row['bank_MiB']} MiB ({row['bank']}); weights {row['unet_weights_MiB']} MiB; "
              f"output finite: {row['edit_output_finite']}", flush=True)
    print(json.dumps(rows, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

"""Cost of a DragonDiffusion edit against plain DDIM inversion + sampling, measured as alternating pairs.

    .venv/bin/python benchmarks/bench_edit_cost.py --pairs 3                      # CPU: SD-1.5, 256 px, 10 steps
    python benchmarks/bench_edit_cost.py --device cuda --size 512 --steps 50 --dtype fp16 --pairs 5

The real SD-1.5 UNet architecture built through ComfyUI with random weights. Runs A (plain DDIM inversion +
CFG sampling) and B (DDIM inversion with the memory bank + the edit through the pack's nodes) alternate
A, B, A, B, ... after an untimed warm-up; each pair gives B / A. Prints every pair, the median ratio and its
spread ((max - min) / median), and a warning when the spread exceeds ``--max-spread``: on a loaded machine a
single A-before-B comparison says nothing (the same plain run has varied several-fold in one process). The
process's CPU time is printed beside the wall time: other processes' load changes it far less.
"""
from __future__ import annotations

import argparse
import json
from statistics import median

import harness
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--arch", choices=harness.ARCHITECTURES, default="sd15")
    ap.add_argument("--size", type=int, default=256, help="image side in pixels (latent = size / 8)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--dtype", choices=["fp32", "fp16"], default="fp32")
    ap.add_argument("--mode", choices=["move", "drag"], default="move")
    ap.add_argument("--schedule", choices=["DragonDiffusion", "DiffEditor"], default="DragonDiffusion")
    ap.add_argument("--pairs", type=int, default=3, help="A/B pairs (the ratio's median is taken over them)")
    ap.add_argument("--max-spread", type=float, default=0.10, help="warn above this spread of the pair ratios")
    ap.add_argument("--allocator", choices=["default", "steady"], default="default",
                    help="steady: glibc malloc keeps freed memory (GLIBC_TUNABLES), so CPU timings measure compute "
                         "rather than page faults (see benchmarks/README.md)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    if args.allocator == "steady":
        harness.reexec_with(harness.STEADY_MALLOC)

    harness.start(cpu=args.device == "cpu")
    import comfy.model_management as mm

    device = mm.get_torch_device()
    model = harness.build_model(args.arch, torch.float16 if args.dtype == "fp16" else torch.float32)
    w = harness.workload(args.arch, model, args.size, args.steps)

    def edit_run():
        bank = harness.invert(w)
        guider, _ = harness.edit(w, bank, args.schedule, args.mode)
        return bank, guider

    harness.warm_up(w, device)
    pairs = []
    for k in range(args.pairs):
        a = harness.measure(lambda: harness.plain(w), device)
        b = harness.measure(edit_run, device)
        pairs.append({"a_plain_s": round(a.seconds, 2), "b_edit_s": round(b.seconds, 2),
                      "ratio": round(b.seconds / a.seconds, 3), "a_cpu_s": round(a.cpu_seconds, 2),
                      "b_cpu_s": round(b.cpu_seconds, 2), "cpu_ratio": round(b.cpu_seconds / a.cpu_seconds, 3)})
        print(f"pair {k + 1}: plain {a.seconds:7.1f} s   edit {b.seconds:7.1f} s   ratio {b.seconds / a.seconds:.3f}   "
              f"(process CPU time: {a.cpu_seconds:7.1f} s / {b.cpu_seconds:7.1f} s = "
              f"{b.cpu_seconds / a.cpu_seconds:.3f})", flush=True)
    bank, guider = b.result
    ratios = [p["ratio"] for p in pairs]
    cpu_ratios = [p["cpu_ratio"] for p in pairs]
    figures = {
        "device": str(device), "arch": args.arch, "dtype": args.dtype, "allocator": args.allocator,
        "size": args.size, "steps": args.steps, "mode": args.mode, "schedule": args.schedule, "pairs": pairs,
        "median_ratio": round(median(ratios), 3), "spread": round(harness.spread(ratios), 3),
        "median_cpu_ratio": round(median(cpu_ratios), 3), "cpu_spread": round(harness.spread(cpu_ratios), 3),
        "feature_passes_with_grad": guider.run.stats.feature_passes,
        "backward_passes": guider.run.stats.backward_passes,
        "bank_MiB": harness.mib(bank.nbytes()), "bank": bank.describe(),
    }
    print(json.dumps(figures, indent=2))
    print(f"edit / (plain inversion + sampling): median {figures['median_ratio']:.3f} over {len(ratios)} pairs, "
          f"spread {figures['spread']:.1%}; by process CPU time: median {figures['median_cpu_ratio']:.3f}, spread "
          f"{figures['cpu_spread']:.1%}")
    if len(ratios) < 3:
        print("WARNING: fewer than 3 pairs: the spread says little")
    if figures["spread"] > args.max_spread:
        print(f"WARNING: spread {figures['spread']:.1%} > {args.max_spread:.0%}: the machine's speed changed between "
              "runs (other load?); the median is the best figure here, rerun on an idle machine to trust it")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()

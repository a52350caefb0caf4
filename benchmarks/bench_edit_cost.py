"""Cost of a DragonDiffusion edit against plain DDIM inversion + sampling, measured as alternating pairs.

    .venv/bin/python benchmarks/bench_edit_cost.py --pairs 3                      # CPU: SD-1.5, 256 px, 10 steps
    python benchmarks/bench_edit_cost.py --device cuda --size 512 --steps 50 --dtype fp16 --pairs 5

The real SD-1.5 UNet architecture built through ComfyUI with random weights. Runs A (plain DDIM inversion +
CFG sampling) and B (DDIM inversion with the memory bank + the edit through the pack's nodes) alternate
A, B, A, B, ... after a warm-up; each pair gives B / A. Prints every pair, the median ratio and its spread
((max - min) / median), and a warning when the spread exceeds ``--max-spread``: on a loaded machine a single
A-before-B comparison says nothing (the same plain run has varied several-fold in one process). The process's
CPU time is printed beside the wall time: other processes' load changes it far less.

The warm-up is a 2-step plain run and edit, then ``--warm-up-pairs`` full-size pairs that are printed but not
counted: the first full-size pair of a process ran faster or slower than the rest even on an idle machine
(first-touch of the full-size activations, the allocator's growth), so it is kept out of the median.

Each run is timed in its two halves (inversion, sampling), and the edit's sampling by DragonGuider's phases, so
the script also prints where the edit's extra cost over the baseline goes (medians over the counted pairs).
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
    ap.add_argument("--warm-up-pairs", type=int, default=1,
                    help="full-size A/B pairs run first and left out of the median (printed as pair 0, -1, ...)")
    ap.add_argument("--max-spread", type=float, default=0.10, help="warn above this spread of the pair ratios")
    ap.add_argument("--allocator", choices=["default", "steady"], default="default",
                    help="steady: glibc malloc keeps freed memory (GLIBC_TUNABLES), so CPU timings measure compute "
                         "rather than page faults (see benchmarks/README.md)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    if args.pairs < 1 or args.warm_up_pairs < 0:
        ap.error(f"--pairs must be >= 1 and --warm-up-pairs >= 0 (got {args.pairs} and {args.warm_up_pairs})")
    if args.allocator == "steady":
        harness.reexec_with(harness.STEADY_MALLOC)

    harness.start(cpu=args.device == "cpu")
    import comfy.model_management as mm

    device = mm.get_torch_device()
    model = harness.build_model(args.arch, torch.float16 if args.dtype == "fp16" else torch.float32)
    w = harness.workload(args.arch, model, args.size, args.steps)

    harness.warm_up(w, device)
    pairs = []
    for k in range(1 - args.warm_up_pairs, args.pairs + 1):
        pair, (bank, guider) = timed_pair(w, args, device)
        counted = k >= 1
        label = f"pair {k}" if counted else f"warm-up pair {k} (not counted)"
        print(f"{label}: plain {pair['a_plain_s']:7.1f} s   edit {pair['b_edit_s']:7.1f} s   ratio {pair['ratio']:.3f}   "
              f"(process CPU time: {pair['a_cpu_s']:7.1f} s / {pair['b_cpu_s']:7.1f} s = {pair['cpu_ratio']:.3f})",
              flush=True)
        if counted:
            pairs.append(pair)
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
        "extra_cost_over_plain": extra_cost(pairs),
    }
    print(json.dumps(figures, indent=2))
    print(f"edit / (plain inversion + sampling): median {figures['median_ratio']:.3f} over {len(ratios)} pairs, "
          f"spread {figures['spread']:.1%}; by process CPU time: median {figures['median_cpu_ratio']:.3f}, spread "
          f"{figures['cpu_spread']:.1%}")
    print("where the edit's extra cost goes, as a fraction of the plain run (medians over the counted pairs):")
    for name, value in figures["extra_cost_over_plain"].items():
        print(f"  {name:62s} {value:+.3f}")
    if len(ratios) < 3:
        print("WARNING: fewer than 3 pairs: the spread says little")
    if figures["spread"] > args.max_spread:
        print(f"WARNING: spread {figures['spread']:.1%} > {args.max_spread:.0%}: the machine's speed changed between "
              "runs (other load?); the median is the best figure here, rerun on an idle machine to trust it")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


def timed_pair(w, args, device) -> tuple[dict, tuple]:
    """One A/B pair: plain inversion, plain sampling, inversion with the bank, the edit (with phase timers)."""
    a_inv = harness.measure(lambda: harness.plain_inversion(w), device)
    a_smp = harness.measure(lambda: harness.plain_sampling(w, a_inv.result), device)
    b_inv = harness.measure(lambda: harness.invert(w), device)
    with harness.PhaseTimers() as phases:
        b_smp = harness.measure(lambda: harness.edit(w, b_inv.result, args.schedule, args.mode), device)
    a_s, b_s = a_inv.seconds + a_smp.seconds, b_inv.seconds + b_smp.seconds
    a_cpu, b_cpu = a_inv.cpu_seconds + a_smp.cpu_seconds, b_inv.cpu_seconds + b_smp.cpu_seconds
    pair = {"a_plain_s": round(a_s, 2), "b_edit_s": round(b_s, 2), "ratio": round(b_s / a_s, 3),
            "a_cpu_s": round(a_cpu, 2), "b_cpu_s": round(b_cpu, 2), "cpu_ratio": round(b_cpu / a_cpu, 3),
            "a_inversion_s": round(a_inv.seconds, 2), "a_sampling_s": round(a_smp.seconds, 2),
            "b_inversion_s": round(b_inv.seconds, 2), "b_sampling_s": round(b_smp.seconds, 2),
            "b_phases_s": {label: round(sec, 2) for label, sec in phases.seconds.items()}}
    return pair, (b_inv.result, b_smp.result[0])


def extra_parts(pair: dict) -> dict:
    """(B - A) / A of one pair split into parts that add up to its ratio - 1: the inversion's share, the edit
    sampling's guided phases (own times, harness.PhaseTimers), and the rest of the edit's sampling over plain
    sampling (bank attention in the CFG passes, the step's blends and fold)."""
    a, phases = pair["a_plain_s"], pair["b_phases_s"]
    T = harness.PhaseTimers
    guided = [T.FEATURES_WITH_GRAD, T.ENERGY, T.INVERTED_FEATURES, T.RECOMPUTE]
    parts = {"inversion with the bank - plain inversion": (pair["b_inversion_s"] - pair["a_inversion_s"]) / a}
    parts.update({label: phases.get(label, 0.0) / a for label in guided})
    parts["the rest of the edit's sampling - plain sampling"] = (
        pair["b_sampling_s"] - pair["a_sampling_s"] - sum(phases.get(label, 0.0) for label in guided)) / a
    parts["total (ratio - 1)"] = (pair["b_edit_s"] - a) / a
    return parts


def extra_cost(pairs: list[dict]) -> dict:
    """Each part of :func:`extra_parts`, as its median over ``pairs`` (medians need not add up exactly)."""
    per_pair = [extra_parts(p) for p in pairs]
    return {name: round(median(parts[name] for parts in per_pair), 3) for name in per_pair[0]}


if __name__ == "__main__":
    main()

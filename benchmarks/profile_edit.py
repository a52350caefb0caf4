"""Where an edit's time goes: phase timings and torch profiler's top operators, SD-1.5 architecture.

    .venv/bin/python benchmarks/profile_edit.py --size 256 --steps 10
"""
from __future__ import annotations

import argparse
import time

import harness
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=harness.ARCHITECTURES, default="sd15")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()

    harness.start(cpu=True)
    w = harness.workload(args.arch, harness.build_model(args.arch), args.size, args.steps)
    with torch.inference_mode():
        bank = harness.invert(w)
    with harness.PhaseTimers() as phases, torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        with torch.inference_mode():
            harness.edit(w, bank)
        total = time.perf_counter() - start
    print(f"edit sampling: {total:.1f} s for {bank.steps} steps at {args.size} px (profiler on)")
    for label, seconds in phases.seconds.items():
        print(f"  {label:62s} {seconds:7.1f} s  {100 * seconds / total:5.1f} %")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()

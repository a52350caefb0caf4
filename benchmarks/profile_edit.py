"""Where an edit's time goes: phase timings and torch profiler's top operators, SD-1.5 architecture.

    .venv/bin/python benchmarks/profile_edit.py --size 256 --steps 10
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from dragon_dev.bootstrap import in_process_pack  # noqa: E402

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()

    pack = in_process_pack(cpu=True)
    import comfy.utils
    from dragon_dev import tiny_model as tm

    comfy.utils.PROGRESS_BAR_ENABLED = False
    guiders, samplers, sampling_nodes = pack.nodes.guiders, pack.nodes.samplers, pack.nodes.sampling_nodes
    with torch.inference_mode():
        model = tm.build_model(tm.sd15_config(), seed=0)
    gen = torch.Generator().manual_seed(0)
    positive = [[torch.randn(1, 77, 768, generator=gen), {}]]
    negative = [[torch.randn(1, 77, 768, generator=gen), {}]]
    lat = args.size // 8
    latent = {"samples": torch.randn(1, 4, lat, lat, generator=gen)}
    image = torch.rand(1, args.size, args.size, 3, generator=gen)
    s = args.size

    # Phase timers: wrap the guider's phases on the class for this process only (a benchmark, not the pack).
    phases = defaultdict(float)

    def timed(cls, name, label):
        original = getattr(cls, name)

        def wrapper(self, *a, **k):
            start = time.perf_counter()
            try:
                return original(self, *a, **k)
            finally:
                phases[label] += time.perf_counter() - start
        setattr(cls, name, wrapper)

    timed(guiders.DragonGuider, "energy_gradient", "energy gradient (feature pass + backward + energy)")
    timed(guiders.DragonGuider, "features", "  of which feature passes (forward with grad, truncated)")
    timed(guiders.DragonGuider, "inverted_features", "inverted-latent features (truncated no-grad pass)")
    timed(guiders.DragonGuider, "recompute_inversion_branch", "inversion branch recompute (lean banks)")
    timed(guiders.DragonGuider, "predict_noise", "predict_noise total (CFG + all of the above)")

    with torch.inference_mode():
        bank, _ = samplers.run_inversion(model, latent, positive, args.steps, pack.nodes.inversion_nodes.policy_from_options(None, args.steps))
        (edit,) = pack.nodes.edit_nodes.DragonEditMove().build(image, s // 8, s // 16, 1.0,
                                                               json.dumps({"boxes": [[s // 4, s // 4, s // 4, s // 4]]}))
        guider = sampling_nodes.make_guider(model, positive, negative, bank, edit, 4.0, None)
        start = time.perf_counter()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            sampling_nodes.run_edit(guider, 0)
        total = time.perf_counter() - start
    print(f"edit sampling: {total:.1f} s for {bank.steps} steps at {args.size} px (profiler on)")
    for label, seconds in phases.items():
        print(f"  {label:58s} {seconds:7.1f} s  {100 * seconds / total:5.1f} %")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()

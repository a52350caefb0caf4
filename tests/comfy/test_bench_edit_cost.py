"""benchmarks/bench_edit_cost.py at a tiny size on the CPU: the warm-up pair stays out of the median, each run is
timed in halves, and the extra cost's parts add up to the ratio."""
import json
import subprocess
import sys
import time
from statistics import median

import pytest
import torch

from dragon_test_helpers import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "bench_edit_cost.py"


def bench_module():
    """The script as a module; its ``import harness`` finds the sibling loaded first under that name."""
    from dragon_dev.bootstrap import load_module

    load_module("benchmarks/harness.py", "harness")
    return load_module("benchmarks/bench_edit_cost.py", "dragon_bench_edit_cost")


def run(tmp_path, *args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=1800,
                          cwd=tmp_path)  # minutes on a loaded machine


@pytest.mark.slow
def test_cost_script_counts_only_the_pairs_after_the_warm_up_and_splits_the_extra_cost(comfy_host, tmp_path):
    out = tmp_path / "cost.json"
    proc = run(tmp_path, "--arch", "tiny", "--size", "64", "--steps", "4", "--pairs", "2", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    figures = json.loads(out.read_text())
    assert "warm-up pair 0 (not counted)" in proc.stdout
    assert "pair 1:" in proc.stdout and "pair 2:" in proc.stdout and "pair 3:" not in proc.stdout
    assert len(figures["pairs"]) == 2
    for pair in figures["pairs"]:
        assert pair["a_plain_s"] == pytest.approx(pair["a_inversion_s"] + pair["a_sampling_s"], abs=0.011)
        assert pair["b_edit_s"] == pytest.approx(pair["b_inversion_s"] + pair["b_sampling_s"], abs=0.011)
        phases = pair["b_phases_s"]
        recompute = phases.pop("inversion branch recompute (lean banks)")
        assert recompute < 0.05  # the default bank recorded every attention step: nothing to recompute
        assert set(phases) == {"feature pass with grad (forward, truncated)", "energies + backward passes",
                               "inverted-latent features (no-grad truncated pass)",
                               "CFG passes with bank attention + the step's own work"}
        assert all(seconds > 0 for seconds in phases.values())
        # own times: together they are the edit sampling's predict_noise calls, within the sampling's time
        assert sum(phases.values()) <= pair["b_sampling_s"] + 0.03
    # a move keeps both backward passes of every guided step (the content term clears the vacated place)
    assert figures["backward_passes"] == 2 * figures["feature_passes_with_grad"] > 0
    extra = figures["extra_cost_over_plain"]
    assert extra["total (ratio - 1)"] == pytest.approx(
        median(p["b_edit_s"] / p["a_plain_s"] - 1 for p in figures["pairs"]), abs=0.001)
    assert "where the edit's extra cost goes" in proc.stdout


def test_the_extra_cost_parts_add_up_to_the_ratio(comfy_host):
    bench = bench_module()
    T = bench.harness.PhaseTimers
    pair = {"a_plain_s": 10.0, "b_edit_s": 19.0, "a_inversion_s": 4.0, "a_sampling_s": 6.0, "b_inversion_s": 4.5,
            "b_sampling_s": 14.5, "b_phases_s": {T.FEATURES_WITH_GRAD: 2.0, T.ENERGY: 3.0, T.INVERTED_FEATURES: 1.5,
                                                 T.STEP: 7.5}}
    parts = bench.extra_parts(pair)
    assert parts == pytest.approx({
        "inversion with the bank - plain inversion": 0.05, T.FEATURES_WITH_GRAD: 0.2, T.ENERGY: 0.3,
        T.INVERTED_FEATURES: 0.15, T.RECOMPUTE: 0.0,
        # 14.5 - 6 - (2 + 3 + 1.5) = 2 s of the edit's sampling besides its guided parts
        "the rest of the edit's sampling - plain sampling": 0.2, "total (ratio - 1)": 0.9})
    assert sum(v for k, v in parts.items() if k != "total (ratio - 1)") == pytest.approx(parts["total (ratio - 1)"])
    assert bench.extra_cost([pair, pair])["total (ratio - 1)"] == 0.9


def test_phase_timers_count_own_time_and_split_the_feature_passes_by_grad():
    bench = bench_module()
    T = bench.harness.PhaseTimers
    nested = 0.3  # long nested calls, short own work: a timer that did not take nesting out would show them

    class Guider:
        """DragonGuider's nesting: predict_noise > energy_gradient > (inverted_features > features without grad,
        features with grad)."""

        def predict_noise(self):
            time.sleep(0.02)
            self.energy_gradient()

        def energy_gradient(self):
            time.sleep(0.02)
            self.inverted_features()
            with torch.enable_grad():
                self.features()

        def inverted_features(self):
            time.sleep(0.02)
            with torch.no_grad():
                self.features()

        def features(self):
            time.sleep(nested)

        def recompute_inversion_branch(self):
            raise AssertionError("not called")

    originals = dict(Guider.__dict__)
    with T(Guider) as timers:
        start = time.perf_counter()
        Guider().predict_noise()
        total = time.perf_counter() - start
    assert all(Guider.__dict__[name] is originals[name] for name in T._METHODS)  # restored on exit
    seconds = dict(timers.seconds)
    assert set(seconds) == {T.STEP, T.ENERGY, T.INVERTED_FEATURES, T.FEATURES_WITH_GRAD}
    assert sum(seconds.values()) == pytest.approx(total, abs=0.005)
    assert 0.02 <= seconds[T.STEP] < nested and 0.02 <= seconds[T.ENERGY] < nested
    assert nested + 0.02 <= seconds[T.INVERTED_FEATURES] < 2 * nested
    assert nested <= seconds[T.FEATURES_WITH_GRAD] < 2 * nested


def test_cost_script_refuses_zero_pairs(tmp_path):
    proc = run(tmp_path, "--pairs", "0")
    assert proc.returncode == 2
    assert "--pairs must be >= 1" in proc.stderr

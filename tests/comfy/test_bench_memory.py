"""benchmarks/bench_memory.py --bank-only: the bank table of a full-size SDXL from its layer map alone (the UNet on
the meta device), as benchmarks/README.md quotes it."""
import json
import subprocess
import sys

import pytest

from dragon_test_helpers import REPO_ROOT


@pytest.mark.slow  # a ComfyUI start in a subprocess: minutes on a loaded machine
def test_bank_only_prints_the_sdxl_bank_per_policy_without_weights(comfy_host, tmp_path):
    out = tmp_path / "bank.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_memory.py"), "--arch", "sdxl", "--bank-only",
         "--json", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = json.loads(out.read_text())["bank_at_native_50_steps_MB"]
    # docs/LAYER_MAP.md: 36 decoder self-attentions, 55 050 240 values a step at 1024 px; int8 keeps one byte a
    # value plus a per-token scale, float16 two bytes; the default keeps the 64x64 level within the 1 GB budget.
    assert 2 * 55_050_240 * 50 / 1e6 < table["float16, every layer"] < 2 * 55_050_240 * 50 / 1e6 + 20
    assert 55_050_240 * 50 / 1e6 < table["int8, every layer"] < table["float16, every layer"] / 1.9
    assert table["lean (latents only)"] < table["default"] <= 1000 < table["int8, every layer"]
    assert table["int8, every layer, steps 5-49"] < table["int8, every layer"]
    assert "default" in proc.stdout and "(6 of 36 layers)" in proc.stdout


@pytest.mark.slow  # a ComfyUI start in a subprocess
def test_memory_bound_counts_the_gradient_pass_activations_and_its_graph(comfy_host, tmp_path):
    out = tmp_path / "memory.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_memory.py"), "--arch", "tiny", "--sizes", "64",
         "--steps", "2", "--json", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (row,) = json.loads(out.read_text())["rows"]
    # the tiny UNet's truncated feature pass: a few hundred autograd nodes of about a kilobyte each, plus the
    # activations it saves; both are positive and the bound is their sum with plain sampling's peak and the bank
    assert 100_000 < row["grad_pass_graph"] < 4 * 2 ** 20
    assert row["grad_pass_activations"] > 0
    assert row["bound"] == row["plain_peak"] + row["bank"] + row["grad_pass_activations"] + row["grad_pass_graph"]
    assert row["within"] == (row["edit_peak"] <= row["bound"])
    assert row["within_without_graph"] == (row["edit_peak"] <= row["bound"] - row["grad_pass_graph"])
    assert "+ graph" in proc.stdout

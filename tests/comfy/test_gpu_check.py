"""benchmarks/gpu_check.py, the prepared GPU run, at a tiny size on the CPU: it runs both kinds of UNet (an
SD-1.5-like and an SDXL-layout one) end to end and reports every figure it promises."""
import json
import subprocess
import sys

import pytest

from dragon_test_helpers import REPO_ROOT


@pytest.mark.slow
def test_gpu_script_runs_at_a_tiny_size_on_the_cpu(comfy_host, tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--configs", "tiny:64",
         "narrow-sdxl:64", "--steps", "3", "--dtype", "fp32", "--json", str(out)],
        capture_output=True, text=True, timeout=1800, cwd=tmp_path)  # minutes on a loaded machine
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = json.loads(out.read_text())
    assert [(r["arch"], r["size"], r["steps"]) for r in rows] == [("tiny", 64, 3), ("narrow-sdxl", 64, 3)]
    for row in rows:
        assert row["plain_s"] > 0 and row["edit_s"] > 0
        # The ratio is taken before the times are rounded to 3 decimals: allow exactly that rounding, no more.
        ratio = row["edit_s"] / row["plain_s"]
        rounding = ratio * (0.0005 / row["plain_s"] + 0.0005 / row["edit_s"]) + 0.0005
        assert abs(row["ratio"] - ratio) <= rounding, (row["ratio"], ratio)
        assert row["bank_MiB"] >= 0 and "attention entries" in row["bank"]
        assert row["edit_output_finite"] and row["feature_passes"] > 0
        assert row["edit_peak_MiB"] > 0 and row["plain_peak_MiB"] > 0
        line = next(l for l in proc.stdout.splitlines() if l.startswith(f"{row['arch']} 64 px"))
        assert f"ratio {row['ratio']}" in line and "peak RSS plain" in line

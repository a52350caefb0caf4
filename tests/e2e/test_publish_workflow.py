"""The registry publish workflow (.github/workflows/publish.yml) refuses to publish while pyproject.toml's
addresses are the placeholders: its guard step, run here with bash as GitHub runs it, against this checkout's
pyproject.toml and against one whose addresses were set for the repository."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import yaml

from dragon_test_helpers import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "publish.yml"
PLACEHOLDER = "dragondiffusion/comfyui-dragondiffusion"


def steps() -> list[dict]:
    jobs = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]
    assert list(jobs) == ["publish-node"], list(jobs)
    return jobs["publish-node"]["steps"]


def guard() -> dict:
    found = [s for s in steps() if "run" in s and "pyproject.toml" in s["run"]]
    assert len(found) == 1, "publish.yml needs one step that checks pyproject.toml's addresses"
    return found[0]


def run_guard(folder, repository: str) -> subprocess.CompletedProcess:
    step = guard()
    assert step.get("shell") == "bash"
    env = {"PATH": os.environ["PATH"], "GITHUB_REPOSITORY": repository}
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=60)


def test_the_guard_runs_before_publishing_and_the_job_is_not_skipped():
    names = [s.get("uses", s.get("name")) for s in steps()]
    publish = next(k for k, s in enumerate(steps()) if str(s.get("uses", "")).startswith("Comfy-Org/publish-node"))
    assert steps().index(guard()) < publish, names
    # no job-level condition that would skip the guard (and so publish nothing, silently) in another repository
    job = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["publish-node"]
    assert "if" not in job, job.get("if")


def test_placeholder_addresses_stop_the_publish_with_a_clear_message(tmp_path):
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = run_guard(tmp_path, "someone/comfyui-dragondiffusion")
    assert result.returncode != 0, result.stdout
    assert "::error file=pyproject.toml::" in result.stdout, result.stdout
    assert "placeholders" in result.stdout and PLACEHOLDER in result.stdout, result.stdout
    assert "https://github.com/someone/comfyui-dragondiffusion" in result.stdout, result.stdout


def test_addresses_set_for_the_repository_let_the_publish_go_on(tmp_path):
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert text.count(PLACEHOLDER) >= 4  # Repository, Issues, Documentation, Icon
    (tmp_path / "pyproject.toml").write_text(text.replace(PLACEHOLDER, "Someone/comfyui-dragon"), encoding="utf-8")
    result = run_guard(tmp_path, "someone/comfyui-dragon")  # GitHub names are case-insensitive
    assert result.returncode == 0, result.stdout + result.stderr
    # one address left behind (here the Icon) still stops it
    partly = re.sub(r"raw\.githubusercontent\.com/Someone/comfyui-dragon", f"raw.githubusercontent.com/{PLACEHOLDER}",
                    (tmp_path / "pyproject.toml").read_text(encoding="utf-8"))
    (tmp_path / "pyproject.toml").write_text(partly, encoding="utf-8")
    result = run_guard(tmp_path, "someone/comfyui-dragon")
    assert result.returncode != 0 and PLACEHOLDER in result.stdout, result.stdout

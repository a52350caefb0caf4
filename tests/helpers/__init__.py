"""Shared test harness for the DragonDiffusion pack (importable in tests as ``dragon_test_helpers``).

tests/conftest.py registers this folder under that name; the repository root is never put on sys.path,
because the pack's ``nodes/`` package would shadow ComfyUI's top-level ``nodes.py``.

Modules:
  inprocess      locate the ComfyUI tree, set it up in this process on the CPU, import the pack
  tiny_model     tiny (and SD-1.5-shaped) ComfyUI models without a checkpoint, seeded conditioning
  server_process the real ComfyUI server in a child process (ComfyServer)
  launch_comfy   the script that child process runs
  browser        headless Debian chromium through playwright, opening ComfyUI's front end
  architecture   the node table of docs/ARCHITECTURE.md, parsed
"""
import importlib.util
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests"
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"  # git-ignored; server logs and screenshots land here
PACK_FOLDER_NAME = "comfyui-dragondiffusion"  # the folder name the pack gets inside custom_nodes/


def load_script(name: str, relative_path: str):
    """A repository file that is not part of an importable package (a benchmark, a demo script) loaded by path
    as module ``name``, once per process. Registered in sys.modules first: dataclasses look their module up."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relative_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]

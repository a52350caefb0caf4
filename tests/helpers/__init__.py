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
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests"
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"  # git-ignored; server logs and screenshots land here
PACK_FOLDER_NAME = "comfyui-dragondiffusion"  # the folder name the pack gets inside custom_nodes/

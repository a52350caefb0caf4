"""Developer tools shared by tests, scripts, benchmarks and the demo's training script (never by the pack).

Lives in scripts/ because that folder is first on sys.path when a script runs (benchmarks and the training
script put it there), and is named after the project so it cannot shadow one of ComfyUI's top-level modules
(``utils``, ``app``, ``nodes``, ``server``, ``execution``, ``folder_paths``, ``tests``) or a PyPI package.

Modules:
  bootstrap      find the ComfyUI tree, set it up in this process, import the pack, import a file by path
  tiny_model     tiny (and SD-1.5/SDXL-shaped) ComfyUI models without a checkpoint, seeded conditioning
  server_process the real ComfyUI server in a child process (ComfyServer)
  launch_comfy   the script that child process runs
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"  # git-ignored; server logs and screenshots land here
PACK_FOLDER_NAME = "comfyui-dragondiffusion"  # the folder name the pack gets inside custom_nodes/

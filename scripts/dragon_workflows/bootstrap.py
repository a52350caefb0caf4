"""Finding the pieces a generator run needs outside this package, through the one bootstrap
(scripts/dragon_dev/bootstrap.py): files of the checkout imported by path, the ComfyUI tree for an in-process
``import comfy``, and a temporary ComfyUI server with this pack."""
from __future__ import annotations

import tempfile
from pathlib import Path

from dragon_dev import bootstrap
from dragon_dev.server_process import ComfyServer


def load_repo_module(relative: str, name: str):
    """Import a file of this checkout by path (the checkout root must not go on sys.path: its nodes/ package
    would shadow ComfyUI's nodes.py)."""
    return bootstrap.load_module(relative, name)


def demo_module(name: str):
    """A module of demo/ (``demo/<name>.py``), imported with the demo folder as its package."""
    return bootstrap.demo_module(name)


def import_comfy(comfy_dir: str | None = None) -> None:
    """Make ``import comfy`` work (CPU) for the add-on builders: ComfyUI's folder (``comfy_dir``, else the current
    folder when it is a ComfyUI, else the tree of bootstrap.comfy_tree) goes on sys.path."""
    if comfy_dir is None and (Path.cwd() / "comfy" / "model_management.py").is_file():
        comfy_dir = str(Path.cwd())
    try:
        bootstrap.import_comfy(comfy_dir, cpu=True)  # the add-ons are built and saved on the CPU
    except RuntimeError as exc:
        raise SystemExit(f"make_workflows: {exc}; run --demo-addons from the ComfyUI folder or pass --comfyui DIR")


def start_server():
    server = ComfyServer(Path(tempfile.mkdtemp(prefix="dragon_workflows_")))
    server.start(timeout=300)
    return server

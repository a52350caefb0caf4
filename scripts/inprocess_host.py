"""Gives scripts and benchmarks the real ComfyUI in this process and the pack, reusing the test harness.

The repository root must not go on sys.path (the pack's nodes/ would shadow ComfyUI's nodes.py), so the two
folders are imported by name through a meta-path finder, as tests/conftest.py does.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO_ROOT]


class _Folders(importlib.abc.MetaPathFinder):
    folders = {"dragon_test_helpers": REPO_ROOT / "tests" / "helpers"}

    def find_spec(self, fullname, path=None, target=None):
        folder = self.folders.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(fullname, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])


sys.meta_path.insert(0, _Folders())


def host(cpu: bool = True):
    """Set up ComfyUI in this process (on the CPU unless ``cpu`` is False) and import the pack as ``dragon_pack``."""
    from dragon_test_helpers import inprocess

    inprocess.setup_host(tempfile.mkdtemp(prefix="dragon_bench_"), cpu=cpu)
    return inprocess.load_pack("dragon_pack")

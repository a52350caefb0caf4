"""The rooms of docs/ARCHITECTURE.md ("Map of the house") keep to their import rules, and product files stay small.

Read from the source with ``ast`` (nothing is imported), so a rule broken anywhere in the checkout fails here."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# ComfyUI's own top-level modules: a pack file that imports one of these needs ComfyUI.
COMFY_TOP_LEVEL = {"comfy", "comfy_extras", "comfy_api", "comfy_execution", "comfy_config", "comfy_api_nodes",
                   "nodes", "folder_paths", "execution", "server", "utils", "app", "latent_preview",
                   "node_helpers", "main", "protocol", "middleware", "api_server"}
CORE_THIRD_PARTY = {"torch", "einops"}
ROOMS = {"dragon_core", "nodes", "demo", "web", "scripts", "benchmarks", "tests"}

MAX_LINES = 500
CODE_SUFFIXES = {".py", ".js", ".mjs", ".css", ".html", ".sh", ".md"}


def tracked(*folders: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", "--", *folders], cwd=REPO_ROOT, capture_output=True, check=True)
    return [REPO_ROOT / p for p in out.stdout.decode().split("\0") if p and (REPO_ROOT / p).is_file()]


def python_files(*folders: str) -> list[Path]:
    return [p for p in tracked(*folders) if p.suffix == ".py"]


def imports(path: Path) -> list[tuple[int, str, int]]:
    """(level, dotted module, line) of every import in the file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or "", node.lineno))
            if node.level and not node.module:  # "from . import x": x is the module
                found += [(node.level, alias.name, node.lineno) for alias in node.names]
    return found


def rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else path.name


def core_problems(files: list[Path]) -> list[str]:
    problems = []
    for path in files:
        for level, module, line in imports(path):
            top = module.split(".")[0]
            if level > 1:
                problems.append(f"{rel(path)}:{line}: reaches out of dragon_core (from {'.' * level}{module})")
            elif level == 0 and top in COMFY_TOP_LEVEL:
                problems.append(f"{rel(path)}:{line}: imports ComfyUI ({module})")
            elif level == 0 and top not in sys.stdlib_module_names and top not in CORE_THIRD_PARTY:
                problems.append(f"{rel(path)}:{line}: imports {module} (dragon_core is torch and the standard "
                                "library; the rest of the checkout imports it, not the other way round)")
    return problems


def pack_problems(files: list[Path]) -> list[str]:
    problems = []
    for path in files:
        for level, module, line in imports(path):
            top = module.split(".")[0]
            if top in {"dragon_dev", "dragon_test_helpers", "dragon_workflows", "scripts", "benchmarks", "tests"}:
                problems.append(f"{rel(path)}:{line}: imports {module}")
            elif level == 2 and top not in {"dragon_core", "demo"}:
                problems.append(f"{rel(path)}:{line}: reaches ..{module} (a sibling room but dragon_core, demo)")
    return problems


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def reach_into_tests(files: list[Path]) -> list[str]:
    """Imports of the tests by name (``dragon_test_helpers``, ``tests``) or by path (a "tests" folder in code)."""
    problems = []
    for path in files:
        for _, module, line in imports(path):
            if module.split(".")[0] in {"dragon_test_helpers", "tests"}:
                problems.append(f"{rel(path)}:{line}: imports {module}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                    and (node.value.strip("/") == "tests" or "tests/helpers" in node.value
                         or "dragon_test_helpers" in node.value)):
                problems.append(f"{rel(path)}:{node.lineno}: names the tests folder in code ({node.value!r})")
    return problems


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8", errors="replace").splitlines())


def oversized(files: list[Path]) -> dict[str, int]:
    """Code files over MAX_LINES; generated JSON and binary data (workflows, weights, images) are not code."""
    return {rel(p): _lines(p) for p in files if p.suffix in CODE_SUFFIXES and _lines(p) > MAX_LINES}


def test_dragon_core_imports_only_torch_the_standard_library_and_itself():
    problems = core_problems(python_files("dragon_core"))
    assert not problems, "\n".join(problems)


def is_script(path: Path) -> bool:
    return '__name__ == "__main__"' in path.read_text(encoding="utf-8")


def test_the_pack_imports_no_developer_tool():
    """What ComfyUI loads (the root __init__.py, nodes/, dragon_core/, demo/ but its scripts) never reaches
    scripts/, benchmarks/ or tests/, and nodes/ reaches only dragon_core and demo."""
    files = [REPO_ROOT / "__init__.py"] + python_files("nodes", "dragon_core", "demo")
    problems = pack_problems([p for p in files if not is_script(p)])
    assert not problems, "\n".join(problems)


def test_nothing_outside_tests_imports_tests():
    problems = reach_into_tests([p for p in python_files(".") if not rel(p).startswith("tests/")])
    assert not problems, "\n".join(problems)


def test_no_product_file_is_over_500_lines():
    too_long = oversized([p for p in tracked(".") if not rel(p).startswith("tests/")])
    assert not too_long, f"over {MAX_LINES} lines (split by job; docs/ARCHITECTURE.md): {too_long}"


def test_each_check_catches_a_planted_offence(tmp_path):
    """The checks above read the real checkout; here each one fails on a file that breaks its rule, so none of
    them can pass vacuously."""
    def planted(name: str, text: str) -> list[Path]:
        path = tmp_path / name
        path.write_text(text)
        return [path]

    assert len(core_problems(planted("core.py", "import comfy.samplers\nfrom ..nodes import guiders\n"
                                                 "def f():\n    import numpy\nfrom .energy import x\n"))) == 3
    assert len(pack_problems(planted("pack.py", "def f():\n    from dragon_dev.bootstrap import load_module\n"
                                                 "from ..scripts import x\nfrom ..dragon_core import y\n"))) == 2
    assert len(reach_into_tests(planted("reach.py", '"""Docs may say tests/helpers."""\n'
                                                         'from pathlib import Path\nP = Path("x") / "tests" / "helpers"\n'
                                                         "import dragon_test_helpers\n"))) == 2
    assert list(oversized(planted("big.py", "x = 1\n" * (MAX_LINES + 1)))) == ["big.py"]
    assert not oversized(planted("data.json", "1\n" * (MAX_LINES + 1)))

"""The pack runs no code from workflow data, reads no file a workflow names, and its web extension writes no
workflow text into the DOM as HTML.

- Python: an AST scan of the pack (nodes/, dragon_core/, demo/, __init__.py) for eval/exec/compile, pickle and
  friends, torch.load without weights_only=True, yaml.load, subprocess/os.system, __import__, and
  importlib.import_module of anything but constant module names.
- JavaScript: a scan of every web/**/*.js (comments and string contents stripped by a small tokenizer) for
  innerHTML/outerHTML/insertAdjacentHTML/document.write/srcdoc/createContextualFragment with a non-constant
  value, eval, new Function, and string timers. The scanner is checked on known-bad and known-good snippets.
- JSON limits: oversized and deeply nested editor_json are refused by name, within a time bound.
- No file inputs: every STRING/COMBO input of every node is a validated JSON field or a fixed list, the demo
  model's ``example`` list is the built-in scene names (not files), and the demo weights path is a constant
  inside the pack that no input reaches.
"""
from __future__ import annotations

import ast
import importlib
import json
import re
import time
from pathlib import Path

import pytest
import torch

from dragon_test_helpers import REPO_ROOT

PYTHON_ROOTS = ("nodes", "dragon_core", "demo")
# Development tools inside the pack folder that ComfyUI never imports (test_dev_tools_are_not_imported_at_runtime
# proves it): the demo model's training script and its modules.
DEV_TOOLS = {"demo/train_demo_model.py", "demo/train_common.py", "demo/train_data.py", "demo/train_colour_route.py",
             "demo/train_autoencoder.py", "demo/train_unet.py", "demo/train_export.py"}
# Findings accepted for them. Each entry: (file, finding prefix) -> why it is not reachable from workflow data.
# Keep this list short; prefer fixing the tool.
DEV_TOOL_FINDINGS = {
    ("demo/train_common.py", "torch.load without weights_only=True"):
        "load_checkpoint loads only the checkpoints the training script itself wrote into its --work-dir (run by "
        "hand)",
}

# STRING inputs that are parsed as the editor JSON, with limits, and nothing else (dragon_core.editor_json).
JSON_STRING_INPUTS = {("DragonEditMove", "editor_json"), ("DragonEditDrag", "editor_json"),
                      ("DragonEditAppearance", "editor_json")}
# STRING inputs that are point lists from other nodes, parsed with the same text limits (dragon_core.point_lists).
POINT_LIST_INPUTS = {("DragonEditDrag", "handle_points"), ("DragonEditDrag", "target_points")}


def pack_python_files() -> list[Path]:
    files = [REPO_ROOT / "__init__.py"]
    for root in PYTHON_ROOTS:
        files += sorted((REPO_ROOT / root).rglob("*.py"))
    return [f for f in files if "__pycache__" not in f.parts]


# ------------------------------------------------------------------------------------------ Python scan


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def _constant_tuples(tree: ast.Module) -> dict[str, tuple]:
    """Module-level NAME = ("a", "b", ...) assignments of string constants."""
    found = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, (ast.Tuple, ast.List)):
            if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in stmt.value.elts):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = tuple(e.value for e in stmt.value.elts)
    return found


def _constant_loop_names(tree: ast.Module) -> set[str]:
    """Loop variables of ``for NAME in CONSTANT_TUPLE`` loops."""
    tuples = _constant_tuples(tree)
    return {node.target.id for node in ast.walk(tree)
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Name) and node.iter.id in tuples}


def _is_constant_module_name(arg: ast.AST, loop_names: set[str]) -> bool:
    """A string constant, or an f-string of constants, __name__ and loop variables over constant tuples."""
    if isinstance(arg, ast.Constant):
        return isinstance(arg.value, str)
    if isinstance(arg, ast.JoinedStr):
        for part in arg.values:
            if isinstance(part, ast.Constant):
                continue
            value = part.value if isinstance(part, ast.FormattedValue) else None
            if not (isinstance(value, ast.Name) and (value.id == "__name__" or value.id in loop_names)):
                return False
        return True
    return False


FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve",
                     "subprocess", "pty", "code", "codeop"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "os.system", "os.popen", "os.execv", "os.execve",
                   "os.execl", "os.execvp", "os.spawnl", "os.spawnv", "os.startfile", "builtins.eval",
                   "builtins.exec", "pickle.load", "pickle.loads"}


def scan_python(source: str, filename: str = "<snippet>") -> list[str]:
    """Findings (one line each) of code-execution and unsafe-deserialisation constructs in ``source``."""
    tree = ast.parse(source, filename)
    loop_names = _constant_loop_names(tree)
    findings = []

    def add(node, what):
        findings.append(f"{what} (line {node.lineno})")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    add(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                add(node, f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in FORBIDDEN_CALLS:
                add(node, f"{name}()")
            elif name == "torch.load" or name.endswith(".torch.load"):
                weights_only = keywords.get("weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    add(node, "torch.load without weights_only=True")
            elif name in ("np.load", "numpy.load"):
                allow_pickle = keywords.get("allow_pickle")
                if not (isinstance(allow_pickle, ast.Constant) and allow_pickle.value is False):
                    add(node, f"{name} without allow_pickle=False")
            elif name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load"):
                loader = _dotted(keywords.get("Loader", ast.Constant(None)))
                if name != "yaml.load" or not loader.endswith("SafeLoader"):
                    add(node, f"{name} without SafeLoader")
            elif name.endswith("import_module"):
                if not node.args or not _is_constant_module_name(node.args[0], loop_names):
                    add(node, "importlib.import_module of a non-constant name")
    return findings


def test_python_scanner_catches_known_bad_code_and_passes_known_good():
    bad = {
        "eval(text)": "eval()", "exec(code)": "exec()", "__import__(name)": "__import__()",
        "import pickle": "import pickle", "from subprocess import run": "from subprocess",
        "import os\nos.system(cmd)": "os.system()", "torch.load(path)": "torch.load without weights_only=True",
        "torch.load(path, weights_only=False)": "torch.load without weights_only=True",
        "import yaml\nyaml.load(s)": "yaml.load without SafeLoader",
        "np.load(path)": "np.load without allow_pickle=False",
        "numpy.load(path, allow_pickle=True)": "numpy.load without allow_pickle=False",
        "importlib.import_module(user_value)": "importlib.import_module of a non-constant name",
        "importlib.import_module(f'.{x}', __name__)": "importlib.import_module of a non-constant name",
    }
    for source, expected in bad.items():
        findings = scan_python(source)
        assert any(f.startswith(expected) for f in findings), (source, findings)
    good = ["torch.load(path, weights_only=True)", "np.load(path, allow_pickle=False)", "yaml.load(s, Loader=yaml.SafeLoader)", "json.loads(text)",
            "FAMILIES = ('a', 'b')\nfor f in FAMILIES:\n    importlib.import_module(f'.{f}', __name__)",
            "x = 'eval(text)'  # eval(text)"]
    for source in good:
        assert scan_python(source) == [], source


def test_pack_python_executes_no_code_from_data():
    findings, accepted = [], []
    for path in pack_python_files():
        rel = path.relative_to(REPO_ROOT).as_posix()
        for finding in scan_python(path.read_text(encoding="utf-8"), rel):
            if any(rel == f and finding.startswith(prefix) for f, prefix in DEV_TOOL_FINDINGS):
                accepted.append(f"{rel}: {finding}")
            else:
                findings.append(f"{rel}: {finding}")
    assert not findings, "code execution / unsafe deserialisation in the pack:\n" + "\n".join(findings)


def _imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
            names.update("." * node.level + (node.module + "." if node.module else "") + a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_dev_tools_are_not_imported_at_runtime(dragon_pack):
    """The files with accepted findings are never imported by the pack as ComfyUI loads it."""
    import sys

    assert {path for path, _ in DEV_TOOL_FINDINGS} <= DEV_TOOLS
    for tool in DEV_TOOLS:
        assert (REPO_ROOT / tool).is_file(), f"{tool} is gone: take it off DEV_TOOLS"
        module = "dragon_pack." + tool[:-3].replace("/", ".")
        assert module not in sys.modules, f"{tool} was imported by the pack"
        stem = Path(tool).stem
        for path in pack_python_files():
            if path.relative_to(REPO_ROOT).as_posix() in DEV_TOOLS:
                continue
            assert not any(name.split(".")[-1] == stem for name in _imports_of(path)), (path, tool)


# ------------------------------------------------------------------------------------------ JavaScript scan


_REGEX_PRECEDERS = set("(,=:[!&|?{};+-*%<>~^") | {""}
_REGEX_KEYWORDS = {"return", "typeof", "case", "do", "else", "in", "of", "void", "delete", "throw", "new", "yield",
                   "await", "instanceof"}


def js_code_only(source: str) -> str:
    """``source`` with comments removed, every plain string literal replaced by "S", every template literal
    without ${} by "S", one with ${} by "T" (not constant), and regex literals by "R"."""
    out = []
    i, n = 0, len(source)
    last_word = ""

    def previous_significant() -> str:
        for chunk in reversed(out):
            stripped = chunk.rstrip()
            if stripped:
                return stripped[-1]
        return ""

    while i < n:
        c = source[i]
        if source.startswith("//", i):
            j = source.find("\n", i)
            i = n if j < 0 else j
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c in "'\"":
            j = i + 1
            while j < n and source[j] != c:
                j += 2 if source[j] == "\\" else 1
            out.append('"S"')
            i = j + 1
        elif c == "`":
            j, depth, interpolated = i + 1, 0, False
            while j < n:
                if source[j] == "\\":
                    j += 2
                    continue
                if depth == 0 and source[j] == "`":
                    break
                if source.startswith("${", j):
                    interpolated, depth, j = True, depth + 1, j + 2
                    continue
                if depth and source[j] == "}":
                    depth -= 1
                j += 1
            out.append('"T"' if interpolated else '"S"')
            i = j + 1
        elif c == "/" and (previous_significant() in _REGEX_PRECEDERS or last_word in _REGEX_KEYWORDS):
            j, in_class = i + 1, False
            while j < n and source[j] != "\n":
                if source[j] == "\\":
                    j += 2
                    continue
                if source[j] == "[":
                    in_class = True
                elif source[j] == "]":
                    in_class = False
                elif source[j] == "/" and not in_class:
                    break
                j += 1
            j += 1
            while j < n and source[j].isalpha():  # flags
                j += 1
            out.append('"R"')
            i = j
        else:
            m = re.match(r"[A-Za-z_$][\w$]*", source[i:])
            if m:
                last_word = m.group(0)
                out.append(last_word)
                i += len(last_word)
                continue
            if not c.isspace():
                last_word = ""
            out.append(c)
            i += 1
    return "".join(out)


_CONST = r'\s*"S"\s*'
JS_RULES = [
    # (name, pattern that matches a use, pattern its argument/value must match in full to be accepted)
    ("innerHTML/outerHTML assignment", re.compile(r"\.(?:inner|outer)HTML\s*\+?=(?!=)\s*([^;\n]*)"),
     re.compile(_CONST)),
    ("insertAdjacentHTML", re.compile(r"\.insertAdjacentHTML\s*\(([^;\n]*)\)"), re.compile(r'\s*"S"\s*,' + _CONST)),
    ("document.write", re.compile(r"\bdocument\s*\.\s*write(?:ln)?\s*\(([^;\n]*)\)"), re.compile(_CONST)),
    ("srcdoc assignment", re.compile(r"\.srcdoc\s*=(?!=)\s*([^;\n]*)"), re.compile(_CONST)),
    ("createContextualFragment", re.compile(r"\.createContextualFragment\s*\(([^;\n]*)\)"), re.compile(_CONST)),
    ("eval", re.compile(r"(?<![\w$.])eval\s*\(([^;\n]*)\)"), re.compile(r"(?!)")),
    ("new Function", re.compile(r"\bnew\s+Function\s*\(([^;\n]*)\)"), re.compile(r"(?!)")),
    ("string timer", re.compile(r"\bset(?:Timeout|Interval)\s*\(\s*(\"[ST]\"[^;\n]*)\)"), re.compile(r"(?!)")),
]


def scan_js(source: str) -> list[str]:
    code = js_code_only(source)
    findings = []
    for name, use, accepted in JS_RULES:
        for m in use.finditer(code):
            value = m.group(1).strip().rstrip(")").strip() if name != "insertAdjacentHTML" else m.group(1)
            if not accepted.fullmatch(value):
                line = code.count("\n", 0, m.start()) + 1
                findings.append(f"{name} with a non-constant value (line {line}): {m.group(0)[:80]}")
    return findings


def test_js_scanner_catches_known_bad_code_and_passes_known_good():
    bad = ["el.innerHTML = label;", "el.innerHTML = `<b>${name}</b>`;", "el.innerHTML += '<i>' + text;",
           "el.outerHTML = html", "el.insertAdjacentHTML('beforeend', row);", "document.write(s);",
           "eval(code);", "const f = new Function('a', body);", "setTimeout('run()', 10);",
           "frame.srcdoc = page;", "range.createContextualFragment(markup);"]
    for source in bad:
        assert scan_js(source), source
    good = ["el.innerHTML = '';", "el.innerHTML = `<b>static</b>`;", "el.textContent = label;",
            "// el.innerHTML = label;", "/* eval(code) */ x = 1;", "const s = 'el.innerHTML = label';",
            "const r = /innerHTML = x/g; y = a / b / c;", "el.insertAdjacentHTML('beforeend', '<hr>');",
            "if (a.innerHTML == b) {}", "setTimeout(() => run(), 10);", "const evaluate = (x) => x;"]
    for source in good:
        assert scan_js(source) == [], (source, js_code_only(source))


def web_scripts() -> list[Path]:
    return sorted(p for p in (REPO_ROOT / "web").rglob("*.js") if "node_modules" not in p.parts)


def test_web_extension_inserts_no_workflow_text_as_html():
    findings = []
    for path in web_scripts():
        for finding in scan_js(path.read_text(encoding="utf-8")):
            findings.append(f"{path.relative_to(REPO_ROOT).as_posix()}: {finding}")
    assert not findings, "unescaped HTML / code execution in the web extension:\n" + "\n".join(findings)


# ------------------------------------------------------------------------------------------ JSON limits


@pytest.fixture(scope="module")
def editor_json(dragon_pack):
    return importlib.import_module("dragon_pack.dragon_core.editor_json")


HOSTILE_JSON = {
    "oversized": json.dumps({"points": [[1, 2, 3, 4]] * 60000}),                 # ~840 KB
    "oversized whitespace": "{" + " " * 10_000_000 + "}",                        # 10 MB
    "deeply nested arrays": "[" * 200_000 + "]" * 200_000,                       # 400 KB, too long anyway
    "deeply nested, under the size limit": "[" * 30_000 + "]" * 30_000,          # 60 KB
    "deeply nested objects": '{"a":' * 10_000 + "1" + "}" * 10_000,
    "nested inside points": '{"points": [' + "[" * 20_000 + "]" * 20_000 + "]}",
    "huge number": '{"points": [[1' + "0" * 4000 + ', 2, 3, 4]]}',
    "many tiny rows": json.dumps({"strokes": [[1, 1, 1, 1]] * 20_001}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_JSON))
def test_hostile_editor_json_is_refused_by_name_within_a_second(editor_json, case):
    errors = importlib.import_module("dragon_pack.dragon_core.errors")
    text = HOSTILE_JSON[case]
    start = time.perf_counter()
    with pytest.raises(errors.DragonInputError) as info:
        editor_json.parse_editor_json(text, editor_json.ImageSize(64, 64))
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{case}: {elapsed:.2f} s"
    assert info.value.field.startswith("editor_json"), str(info.value)
    assert len(str(info.value)) < 400


def test_editor_json_cannot_reach_python_objects(editor_json):
    """JSON is data: keys that name Python internals are unknown keys, not attributes."""
    errors = importlib.import_module("dragon_pack.dragon_core.errors")
    for text in ('{"__class__": {"__init__": 1}}', '{"points": [], "__reduce__": "os.system"}',
                 '{"image": "../../../etc/passwd", "points": [[1, 2, 3, 4]]}'):
        try:
            state = editor_json.parse_editor_json(text, editor_json.ImageSize(64, 64))
        except errors.DragonInputError as exc:
            assert "unknown keys" in str(exc)
        else:  # "image" is an accepted key that the parser ignores (the editor's own bookkeeping)
            assert set(vars(state)) == {"points", "boxes", "strokes"}
            assert all(isinstance(v, torch.Tensor) for v in vars(state).values())


# ------------------------------------------------------------------------------------------ file access


def _is_combo(spec) -> bool:
    return isinstance(spec[0], (list, tuple))


def test_every_text_input_is_validated_json_or_a_fixed_list(dragon_pack):
    free_text, combos = [], []
    for name, cls in sorted(dragon_pack.NODE_CLASS_MAPPINGS.items()):
        types = cls.INPUT_TYPES()
        again = cls.INPUT_TYPES()
        for group in ("required", "optional"):
            for input_name, spec in types.get(group, {}).items():
                if _is_combo(spec):
                    choices = list(spec[0])
                    assert choices == list(again[group][input_name][0]), f"{name}.{input_name} is not a fixed list"
                    assert all(isinstance(c, str) and "/" not in c and "\\" not in c and ".." not in c
                               for c in choices), (name, input_name, choices)
                    combos.append((name, input_name))
                elif spec[0] == "STRING":
                    if (name, input_name) not in JSON_STRING_INPUTS | POINT_LIST_INPUTS:
                        free_text.append(f"{name}.{input_name}")
    assert not free_text, f"STRING inputs that are not the validated editor JSON: {free_text}"
    assert ("DragonDemoModel", "example") in combos


def test_json_string_inputs_go_through_the_limited_parser(dragon_pack, monkeypatch):
    """Each editor_json input reaches parse_editor_json (the limits above), not some other parser."""
    edit_nodes = importlib.import_module("dragon_pack.nodes.edit_nodes")
    seen = []
    real = edit_nodes.parse_editor_json
    monkeypatch.setattr(edit_nodes, "parse_editor_json", lambda text, size, *a, **k: (seen.append(text), real(text, size, *a, **k))[1])
    image = torch.rand(1, 64, 64, 3)
    mask = torch.zeros(1, 64, 64)
    mask[:, 8:24, 8:24] = 1
    marker = '{"boxes": [[30, 30, 16, 16]]}'
    errors = importlib.import_module("dragon_pack.nodes.node_errors")
    calls = {"DragonEditMove": lambda n: n.build(image, 4, 4, 1.0, marker),
             "DragonEditDrag": lambda n: n.build(image, '{"points": [[10, 10, 20, 20]]}'),
             "DragonEditAppearance": lambda n: n.build(image, image, object(), mask, marker)}
    for node_name, input_name in sorted(JSON_STRING_INPUTS):
        seen.clear()
        node = dragon_pack.NODE_CLASS_MAPPINGS[node_name]()
        with torch.inference_mode():
            try:
                calls[node_name](node)
            except errors.DragonNodeError:
                pass
        assert len(seen) == 1, (node_name, input_name, seen)


def test_point_list_inputs_go_through_the_limited_parser(dragon_pack, monkeypatch):
    """Each point-list input reaches parse_point_list (text length and point count limits), and an oversized text
    is refused before any JSON is parsed."""
    point_lists = importlib.import_module("dragon_pack.dragon_core.point_lists")
    edit_nodes = importlib.import_module("dragon_pack.nodes.edit_nodes")
    errors = importlib.import_module("dragon_pack.nodes.node_errors")
    seen = []
    real = point_lists.parse_point_list
    monkeypatch.setattr(point_lists, "parse_point_list", lambda text, name: (seen.append(name), real(text, name))[1])
    image = torch.rand(1, 64, 64, 3)
    node = edit_nodes.DragonEditDrag()
    with torch.inference_mode():
        node.build(image, "{}", None, '[{"x": 10, "y": 10}]', "[[20, 20]]")
    assert sorted(seen) == sorted(name for _, name in POINT_LIST_INPUTS)
    huge = "[" + ",".join(["[1, 1]"] * 200_000) + "]"
    with pytest.raises(errors.DragonNodeError, match="handle_points.*characters"):
        node.build(image, "{}", None, huge, "[[20, 20]]")


def test_demo_example_is_a_scene_name_not_a_path(dragon_pack):
    demo_nodes = importlib.import_module("dragon_pack.nodes.demo_nodes")
    synthetic = importlib.import_module("dragon_pack.demo.synthetic")
    choices = demo_nodes.DragonDemoModel.INPUT_TYPES()["required"]["example"][0]
    assert list(choices) == list(synthetic.example_scenes())
    for hostile in ("../../../etc/passwd", "/etc/passwd", "dragon_demo.safetensors", ""):
        with pytest.raises(ValueError, match="unknown example"):
            demo_nodes.render_example(hostile)


def test_demo_weights_path_is_a_constant_inside_the_pack(dragon_pack):
    architecture = importlib.import_module("dragon_pack.demo.architecture")
    path = Path(architecture.WEIGHTS_PATH)
    assert path.resolve().is_relative_to(REPO_ROOT.resolve() / "demo"), path
    # The loader passes that constant and nothing else to the reader; load() takes only the scene name.
    source = (REPO_ROOT / "nodes" / "demo_nodes.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    readers = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
               and _dotted(node.func).split(".")[-1] in ("read_demo_weights", "safe_open", "load_file", "open")]
    assert readers, "the demo loader reads no weight file?"
    for call in readers:
        assert [_dotted(a) for a in call.args] == ["architecture.WEIGHTS_PATH"] and not call.keywords, \
            ast.unparse(call)
    load = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "load")
    assert [a.arg for a in load.args.args] == ["self", "example"]


def test_pack_opens_files_only_at_constant_paths():
    """No open()/safe_open()/Image.open()/read_text() in the runtime pack takes a path built from node inputs:
    the only reader is demo/architecture.read_demo_weights, called with the constant above."""
    openers = ("open", "safe_open", "load_file", "read_text", "read_bytes", "imread", "urlopen", "urlretrieve")
    found = []
    for path in pack_python_files():
        rel = path.relative_to(REPO_ROOT).as_posix()
        if rel in DEV_TOOLS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _dotted(node.func).split(".")[-1] in openers:
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:100]}")
    assert all(f.startswith("demo/architecture.py") and "safe_open(str(path)" in f for f in found), found

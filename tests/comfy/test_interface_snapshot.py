"""The pack's public node interface, frozen in tests/comfy/interface_snapshot.json.

Saved workflows store node ids, widget values by position and links by input/output name and slot: renaming,
reordering or retyping any of them breaks users' files. This test fails on any change of a node id, an input
(name, order, type, choices, default, min, max), an output (types, names), CATEGORY or FUNCTION, and shows the
difference. To change the interface deliberately (append inputs, never reorder or rename):

    UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest -q tests/comfy/test_interface_snapshot.py

then review and commit the JSON diff together with the code change.
"""
import difflib
import json
import os

from dragon_test_helpers import TESTS_DIR

SNAPSHOT = TESTS_DIR / "comfy" / "interface_snapshot.json"
UPDATE_HINT = ("If this change is deliberate, update the snapshot with\n"
               "    UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest -q tests/comfy/test_interface_snapshot.py\n"
               "and commit tests/comfy/interface_snapshot.json with the change (append new inputs at the end; "
               "never rename or reorder: saved workflows address widgets by position and links by slot).")
FROZEN_OPTIONS = ("default", "min", "max")


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _input_entry(name, spec) -> dict:
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    entry = {"name": name}
    if isinstance(kind, (list, tuple)):
        entry["type"] = "COMBO"
        entry["choices"] = _jsonable(kind)
    else:
        entry["type"] = kind
    for key in FROZEN_OPTIONS:
        if key in options:
            entry[key] = _jsonable(options[key])
    return entry


def interface(mappings) -> dict:
    out = {}
    for node_id in sorted(mappings):
        cls = mappings[node_id]
        spec = cls.INPUT_TYPES()
        out[node_id] = {
            "inputs": {section: [_input_entry(name, s) for name, s in spec.get(section, {}).items()]
                       for section in ("required", "optional") if spec.get(section)},
            "RETURN_TYPES": list(cls.RETURN_TYPES),
            "RETURN_NAMES": list(getattr(cls, "RETURN_NAMES", ()) or ()),
            "CATEGORY": cls.CATEGORY,
            "FUNCTION": cls.FUNCTION,
        }
    return out


def _dump(data) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def test_node_interface_matches_the_snapshot(dragon_pack):
    current = _dump(interface(dragon_pack.NODE_CLASS_MAPPINGS))
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(current, encoding="utf-8")
        print(f"\nwrote {SNAPSHOT}")
        return
    assert SNAPSHOT.is_file(), f"{SNAPSHOT} is missing.\n{UPDATE_HINT}"
    frozen = SNAPSHOT.read_text(encoding="utf-8")
    if current != frozen:
        diff = "".join(difflib.unified_diff(frozen.splitlines(keepends=True), current.splitlines(keepends=True),
                                            fromfile="interface_snapshot.json (frozen)",
                                            tofile="the pack's nodes (now)", n=4))
        raise AssertionError(f"The public node interface changed; saved workflows may break.\n{diff}\n{UPDATE_HINT}")


def test_every_node_is_documented_and_named_for_the_pack(dragon_pack):
    mappings, names = dragon_pack.NODE_CLASS_MAPPINGS, dragon_pack.NODE_DISPLAY_NAME_MAPPINGS
    assert mappings, "the pack registered no nodes"
    problems = []
    for node_id, cls in sorted(mappings.items()):
        if not node_id.startswith("Dragon"):
            problems.append(f"{node_id}: node id does not start with 'Dragon'")
        if not str(getattr(cls, "DESCRIPTION", "")).strip():
            problems.append(f"{node_id}: no DESCRIPTION")
        if not str(getattr(cls, "CATEGORY", "")).startswith("DragonDiffusion/"):
            problems.append(f"{node_id}: CATEGORY {getattr(cls, 'CATEGORY', None)!r} is not under 'DragonDiffusion/'")
        if not str(names.get(node_id, "")).startswith("Dragon"):
            problems.append(f"{node_id}: display name {names.get(node_id)!r} does not start with 'Dragon'")
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, s in spec.get(section, {}).items():
                options = s[1] if len(s) > 1 else {}
                if not str(options.get("tooltip", "")).strip():
                    problems.append(f"{node_id}.{name}: no tooltip")
        if len(getattr(cls, "RETURN_NAMES", ()) or ()) != len(cls.RETURN_TYPES):
            problems.append(f"{node_id}: RETURN_NAMES do not name every output")
    assert not problems, "\n".join(problems)

"""The editor knows the edit nodes' limits on editor_json (web/editor/state.js LIMITS, limitProblem) and agrees
with the node (dragon_core/editor_json.py) about them: the same numbers, the same brush work, the same verdict.

The first test reads the two files; the others run state.js in chromium (an ES module without DOM or ComfyUI,
imported from a data: URL into a blank page) next to the Python parser."""
from __future__ import annotations

import base64
import json
import random
import re

import pytest

import dragon_core.editor_json as editor_json
from dragon_core.errors import DragonInputError
from dragon_core.grids import ImageSize
from dragon_test_helpers import REPO_ROOT

STATE_JS = REPO_ROOT / "web" / "editor" / "state.js"
# The JS name of each limit and the Python constant it mirrors: one place per language.
MIRRORED = {
    "chars": "EDITOR_JSON_MAX_CHARS",
    "points": "EDITOR_MAX_POINTS",
    "boxes": "EDITOR_MAX_BOXES",
    "strokes": "EDITOR_MAX_STROKES",
    "coordinate": "EDITOR_MAX_COORDINATE",
    "brushPixels": "EDITOR_MAX_BRUSH_PIXELS",
}


def js_number(text: str) -> float:
    """A JS numeric literal, or `a ** b` of two (what LIMITS is written with)."""
    text = text.strip()
    power = re.fullmatch(r"([0-9.e+]+)\s*\*\*\s*([0-9.e+]+)", text)
    if power:
        return js_number(power.group(1)) ** js_number(power.group(2))
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?", text):
        raise ValueError(f"not a plain number: {text!r}")
    return float(text)


def js_limits() -> dict[str, float]:
    match = re.search(r"^export const LIMITS = \{([^}]*)\};", STATE_JS.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"no `export const LIMITS = {{...}};` line in {STATE_JS}"
    pairs = [p.split(":") for p in match.group(1).split(",") if p.strip()]
    return {key.strip(): js_number(value) for key, value in pairs}


def test_the_editors_limits_are_the_nodes():
    limits = js_limits()
    assert set(limits) == set(MIRRORED), f"state.js LIMITS has {sorted(limits)}; mirrored: {sorted(MIRRORED)}"
    for key, name in MIRRORED.items():
        assert limits[key] == getattr(editor_json, name), f"state.js LIMITS.{key} = {limits[key]:g}, {name} = " \
                                                            f"{getattr(editor_json, name):g}"
    assert js_number("2 ** 31") == 2 ** 31 and js_number("1e6") == 1e6
    with pytest.raises(ValueError):
        js_number("Number.MAX_VALUE")


# ---------------------------------------------------------------------------------------- state.js in chromium


@pytest.fixture(scope="module")
def state_js(browser):
    """A blank page with web/editor/state.js imported as window.S."""
    page = browser.new_page()
    source = base64.b64encode(STATE_JS.read_bytes()).decode()
    page.evaluate("async (b64) => { window.S = await import('data:text/javascript;base64,' + b64); }", source)
    try:
        yield page
    finally:
        page.close()


def verdicts(page, strokes, size, points=()):
    """(state.js limitProblem, the node's verdict) for a state of `strokes` and `points` on a `size` image."""
    state = {"points": [list(p) for p in points], "boxes": [], "strokes": [list(s) for s in strokes]}
    js = page.evaluate("([state, size]) => ({problem: S.limitProblem(state, size), text: S.serializeState(state)})",
                       [state, list(size)])
    try:
        editor_json.parse_editor_json(js["text"], ImageSize(*size))
        node = None
    except DragonInputError as exc:
        node = str(exc)
    return js["problem"], node


@pytest.mark.browser
def test_brush_work_is_counted_as_the_node_counts_it(state_js):
    rng = random.Random(0)
    size = (96, 64)
    strokes = [[rng.uniform(-40, 140), rng.uniform(-40, 110), rng.uniform(0.6, 60), rng.randint(0, 1)]
               for _ in range(300)]
    strokes += [[0, 0, 1, 1], [95.5, 63.5, 1, 0], [-1.5, 30, 2, 1], [48, 32, 96, 1], [500, 500, 3, 1]]
    saved = state_js.evaluate("(strokes) => strokes.map(S.savedDab)", strokes)
    for dab, saved_dab in zip(strokes, saved):
        one = state_js.evaluate("([d, size]) => S.brushPixels([d], size)", [dab, list(size)])
        expected = editor_json.brush_pixels(editor_json.torch.tensor([saved_dab], dtype=editor_json.torch.float32),
                                            ImageSize(*size))
        assert one == expected, (dab, saved_dab, one, expected)


@pytest.mark.browser
def test_the_editor_refuses_exactly_what_the_node_refuses(state_js):
    big = (4096, 4096)
    full = [2048, 2048, 2048, 1]  # its square covers the whole image: 4096 * 4096 pixels of work
    assert 128 * 4096 * 4096 == editor_json.EDITOR_MAX_BRUSH_PIXELS  # the budget holds exactly 128 of them
    # the most [5, 5, 1, 1] dabs whose JSON (as JSON.stringify writes it) fits EDITOR_JSON_MAX_CHARS
    text = lambda n: json.dumps({"version": 1, "points": [], "boxes": [], "strokes": [[5, 5, 1, 1]] * n},
                                separators=(",", ":"))
    most = (editor_json.EDITOR_JSON_MAX_CHARS - len(text(1))) // len("[5,5,1,1],") + 1
    assert len(text(most)) <= editor_json.EDITOR_JSON_MAX_CHARS < len(text(most + 1))
    assert most < editor_json.EDITOR_MAX_STROKES  # the characters run out long before the dab count
    cases = [
        ("128 whole-image dabs", [full] * 128, big, (), False),
        ("129 whole-image dabs", [full] * 129, big, (), True),
        ("radius the image's size", [[10, 10, 96, 1]], (96, 64), (), False),
        ("radius past the image's size", [[10, 10, 97, 1]], (96, 64), (), True),
        ("a dab at the coordinate limit", [[1e6, 5, 1, 1]], (96, 64), (), False),
        ("a dab past the coordinate limit", [[1e6 + 1, 5, 1, 1]], (96, 64), (), True),
        ("as many characters as allowed", [[5, 5, 1, 1]] * most, (96, 64), (), False),
        ("one dab too many for the characters", [[5, 5, 1, 1]] * (most + 1), (96, 64), (), True),
        ("as many pairs as allowed", [], (96, 64), [[1, 2, 3, 4]] * 256, False),
        ("one pair too many", [], (96, 64), [[1, 2, 3, 4]] * 257, True),
    ]
    for what, strokes, size, points, refused in cases:
        problem, node = verdicts(state_js, strokes, size, points)
        assert (problem is not None) == refused, f"{what}: editor says {problem!r}"
        assert (node is not None) == refused, f"{what}: node says {node!r}"
    problem, _ = verdicts(state_js, [full] * 129, big)
    assert "2.15e9" in problem and "smaller brush" in problem, problem


@pytest.mark.browser
def test_saved_editor_json_past_the_coordinate_limit_is_an_editor_error(state_js):
    for text, ok in [(json.dumps({"strokes": [[1e6, 1, 1, 1]]}), True),
                     (json.dumps({"boxes": [[-1000001, 1, 1, 1]]}), False)]:
        parsed = state_js.evaluate("(t) => S.parseEditorJson(t)", text)
        assert ("error" not in parsed) == ok, parsed
    assert "±1e6" in parsed["error"], parsed

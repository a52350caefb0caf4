"""The on-node editor (web/dragon_editor.js + web/editor/) in headless chromium on the real ComfyUI server,
on two front ends: the one pinned with ComfyUI 0.3.75 and the newest release (--front-end-root).

Real mouse events (playwright page.mouse) on the editor's <canvas>; the expected JSON is computed from the
canvas's bounding box and the image's fit (contain, centred), in pixels of the ORIGINAL image; the state must
survive app.graph.serialize() -> app.loadGraphData(); the key assertion is repeated under the Vue node
renderer (setting Comfy.VueNodes.Enabled). Screenshots land in test-artifacts/ (look at them).
"""
from __future__ import annotations

import json
import math

import pytest
from PIL import Image, ImageDraw

from dragon_core.editor_json import EDITOR_MAX_BRUSH_PIXELS, brush_pixels, parse_editor_json, rasterize
from dragon_core.grids import ImageSize
from dragon_test_helpers import PACK_FOLDER_NAME, REPO_ROOT
from dragon_test_helpers.architecture import documented_nodes
from dragon_test_helpers.browser import (FRONT_ENDS, PINNED_FRONT_END, console_from, front_end_problem,
                                         front_end_root)
from dragon_dev.server_process import ComfyServer

pytestmark = pytest.mark.browser

LANDSCAPE = "dragon_editor_96x64.png"  # non-square on purpose: 96 x 64
PORTRAIT = "dragon_editor_64x96.png"
LARGE = "dragon_editor_4096x4096.png"  # large enough for the brush to reach the node's limit on drawing work
VUE_SETTING = "Comfy.VueNodes.Enabled"
OUR_SOURCES = ("dragon_editor", "DragonDiffusion")
OUR_SCRIPTS = f"/extensions/{PACK_FOLDER_NAME}/"


# ------------------------------------------------------------------------------------------ set-up


def _scene(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height))
    px = image.load()
    for y in range(height):
        for x in range(width):
            px[x, y] = (40 + x, 60 + y, 130)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.15, height * 0.22, width * 0.46, height * 0.69), fill=(228, 82, 62))
    draw.rectangle((width * 0.6, height * 0.31, width * 0.88, height * 0.78), fill=(250, 218, 84))
    return image


@pytest.fixture(scope="module", params=FRONT_ENDS)
def comfy_server(request, comfy_server, tmp_path_factory):
    """The session server for the pinned front end; a second server with --front-end-root for the newest."""
    version = request.param
    if version == PINNED_FRONT_END:
        yield comfy_server
        return
    problem = front_end_problem(version)
    if problem:
        pytest.fail(problem)
    server = ComfyServer(tmp_path_factory.mktemp(f"comfy_server_{version}"),
                         extra_args=("--front-end-root", str(front_end_root(version))))
    try:
        server.start(timeout=150)
        yield server
    finally:
        server.stop()
        server.save_log(f"comfy_server_{version}.log")


@pytest.fixture(scope="module")
def server(comfy_server):
    """The session server with this module's images in its input folder and no first-visit Templates dialog."""
    input_dir = comfy_server.base_dir / "input"
    input_dir.mkdir(parents=True, exist_ok=True)
    _scene(96, 64).save(input_dir / LANDSCAPE)
    _scene(64, 96).save(input_dir / PORTRAIT)
    Image.new("RGB", (4096, 4096), (90, 120, 160)).save(input_dir / LARGE)
    # A fresh server opens the Templates dialog on the first visit, possibly after open_comfy's Escape.
    status, raw = comfy_server.request("POST", "/settings/Comfy.TutorialCompleted", True)
    assert status == 200, raw
    return comfy_server


@pytest.fixture
def ui(server, comfy_page):
    """comfy_page, checked at the end for console errors and warnings from this pack's extension."""
    page = comfy_page.page
    _close_dialogs(page)
    yield comfy_page
    # Only what the pack's own scripts raise counts: warnings whose call stack passes through them (a
    # deprecation warning the front end raises for its own code is not ours), and errors naming the pack.
    ours = console_from(page, OUR_SCRIPTS)
    ours += [f"{kind}: {text} ({url})" for kind, text, url in comfy_page.log.console
             if kind == "error" and any(s in text or s in (url or "") for s in OUR_SOURCES)]
    ours += comfy_page.log.errors_mentioning(OUR_SCRIPTS, "/dragondiffusion/")
    assert not ours, "the extension logged problems:\n" + "\n".join(ours)


def _close_dialogs(page):
    for _ in range(3):
        if page.locator(".p-dialog-mask").count() == 0:
            return
        page.keyboard.press("Escape")
        page.wait_for_timeout(200)


def load_image_node(node_id, pos, order, links, image=LANDSCAPE):
    """A LoadImage node as a saved workflow holds it, its IMAGE output feeding the links ``links``."""
    return {"id": node_id, "type": "LoadImage", "pos": list(pos), "size": [300, 330], "flags": {}, "order": order,
            "mode": 0, "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": list(links)},
                                                 {"name": "MASK", "type": "MASK", "links": None}],
            "properties": {}, "widgets_values": [image, "image"]}


def workflow(drag_json="{}", move_json="{}", dx=0, dy=0, image=LANDSCAPE):
    """LoadImage -> DragonEditDrag and LoadImage -> DragonEditMove, as a saved workflow file has them."""
    return {
        "last_node_id": 3, "last_link_id": 2,
        "nodes": [
            load_image_node(1, (20, 60), 0, [1, 2], image),
            {"id": 2, "type": "DragonEditDrag", "pos": [360, 60], "size": [440, 640], "flags": {}, "order": 1,
             "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "edit", "type": "DRAGON_EDIT", "links": None}],
             "properties": {}, "widgets_values": [drag_json]},
            {"id": 3, "type": "DragonEditMove", "pos": [840, 60], "size": [440, 640], "flags": {}, "order": 2,
             "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 2}],
             "outputs": [{"name": "edit", "type": "DRAGON_EDIT", "links": None}],
             "properties": {}, "widgets_values": [dx, dy, 1.0, move_json]},
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 1, 0, 3, 0, "IMAGE"]],
        "groups": [], "config": {}, "extra": {}, "version": 0.4,
    }


# ------------------------------------------------------------------------------------------ page helpers


def load_workflow(page, wf):
    page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", wf)


def editor(page, node_id):
    return page.locator(f'.dragon-editor[data-dragon-node-id="{node_id}"]')


def wait_image(page, node_id, width, height, timeout=15_000):
    page.wait_for_function(
        """([id, w, h]) => { const e = document.querySelector(`.dragon-editor[data-dragon-node-id="${id}"]`);
            return !!e && e.dataset.imageStatus === 'ready' && e.dataset.imageWidth === String(w)
                   && e.dataset.imageHeight === String(h); }""",
        arg=[node_id, width, height], timeout=timeout)


def focus(page, node_id, x=130, y=110, scale=1.0):
    """The node's top-left corner at (x, y) of the graph canvas (clear of the minimap), at the given zoom."""
    page.evaluate(
        """([id, x, y, scale]) => { const app = window.app; const node = app.graph.getNodeById(id);
            app.canvas.ds.scale = scale; app.canvas.ds.offset = [x / scale - node.pos[0], y / scale - node.pos[1]];
            app.canvas.setDirty(true, true); }""", [node_id, x, y, scale])
    page.wait_for_timeout(400)  # DOM widgets follow on the next frames


def widget_value(page, node_id, name):
    return page.evaluate("([id, n]) => window.app.graph.getNodeById(id).widgets.find(w => w.name === n).value",
                         [node_id, name])


def editor_state(page, node_id):
    return json.loads(widget_value(page, node_id, "editor_json"))


class Fit:
    """The image's place inside the editor canvas (contain, centred), in page (client) pixels."""

    def __init__(self, page, node_id, width, height):
        box = editor(page, node_id).locator("canvas").bounding_box()
        assert box and box["width"] > 50 and box["height"] > 50, f"editor canvas not laid out: {box}"
        self.width, self.height = width, height
        self.s = min(box["width"] / width, box["height"] / height)
        self.ox = box["x"] + (box["width"] - width * self.s) / 2
        self.oy = box["y"] + (box["height"] - height * self.s) / 2
        self.tol = 1.0 / self.s + 0.06  # one screen pixel, plus the 1-decimal rounding

    def client(self, x, y):
        return self.ox + x * self.s, self.oy + y * self.s

    def image(self, cx, cy):
        return (cx - self.ox) / self.s, (cy - self.oy) / self.s


def click(page, fit, x, y, button="left"):
    cx, cy = fit.client(x, y)
    page.mouse.click(cx, cy, button=button)
    return fit.image(cx, cy)


def drag(page, fit, a, b, steps=10):
    page.mouse.move(*fit.client(*a))
    page.mouse.down()
    page.mouse.move(*fit.client(*b), steps=steps)
    page.mouse.up()


def drag_recorded_midway(page, fit, a, b):
    """A drag during which the front end records the graph, as it does on a key released while the button is held
    (and, on the newer front ends, once more in a debounced "squash" shortly after any recorded step)."""
    mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    page.mouse.move(*fit.client(*a))
    page.mouse.down()
    page.mouse.move(*fit.client(*mid), steps=5)
    ui_change_done(page)
    page.wait_for_timeout(200)  # past the squash's debounce
    page.mouse.move(*fit.client(*b), steps=5)
    page.mouse.up()


def press(page, node_id, label):
    editor(page, node_id).get_by_role("button", name=label, exact=True).click()


def set_brush(page, node_id, radius):
    editor(page, node_id).locator('input[type="range"]').evaluate(
        "(el, r) => { el.value = String(r); el.dispatchEvent(new Event('input', {bubbles: true})); }", radius)


def wait_json(page, node_id, predicate_js, timeout=5_000):
    page.wait_for_function(
        f"""(id) => {{ const w = window.app.graph.getNodeById(id).widgets.find(w => w.name === 'editor_json');
            let s; try {{ s = JSON.parse(w.value); }} catch {{ return false; }}
            return ({predicate_js})(s); }}""", arg=node_id, timeout=timeout)


def assert_point(actual, expected, tol, what):
    assert len(actual) == len(expected), f"{what}: {actual} vs {expected}"
    for a, e in zip(actual, expected):
        assert abs(a - e) <= tol, f"{what}: {actual} != {expected} (tolerance {tol:.2f} px)"
        assert round(a, 1) == a, f"{what}: {a} has more than one decimal"


def reload_through_serialization(page):
    """Save the workflow the way the UI does (graph.serialize) and load it back into a fresh graph."""
    return page.evaluate("""async () => { const data = JSON.parse(JSON.stringify(window.app.graph.serialize()));
        await window.app.loadGraphData(data); return data; }""")


def shot(ui, node_id, stem):
    """The node's editor into test-artifacts/<stem>-<front end>[-<renderer>]...png (dragon_test_helpers.artifacts)."""
    path = ui.artifact(stem)
    path.parent.mkdir(exist_ok=True)
    editor(ui.page, node_id).screenshot(path=str(path))
    return path


def ui_change_done(page):
    """What the front end does after a change made in its UI (a key released, a mouse button up): the change
    tracker compares the graph and records a step (and tells listeners, the editors among them)."""
    page.evaluate("""() => { const t = window.app.extensionManager.workflow.activeWorkflow.changeTracker;
        t.captureCanvasState ? t.captureCanvasState() : t.checkState(); }""")


def set_vue_nodes(page, enabled: bool):
    page.evaluate("async ([k, v]) => { await window.app.extensionManager.setting.set(k, v); }", [VUE_SETTING, enabled])


# ------------------------------------------------------------------------------------------ tests


def test_drag_editor_points_brush_undo_and_reload(ui):
    page = ui.page
    fit = open_editor(page, workflow(), 2)

    # two handle -> target pairs by clicking
    h1 = click(page, fit, 20.3, 30.6)
    assert editor(page, 2).get_attribute("data-points") == "0"  # a handle alone is not a pair yet
    t1 = click(page, fit, 40.2, 28.1)
    h2 = click(page, fit, 70.0, 40.0)
    t2 = click(page, fit, 82.5, 18.4)
    state = editor_state(page, 2)
    assert state["version"] == 1 and len(state["points"]) == 2, state
    assert_point(state["points"][0], [*h1, *t1], fit.tol, "pair 1")
    assert_point(state["points"][1], [*h2, *t2], fit.tol, "pair 2")

    # drag the first target somewhere else
    drag(page, fit, t1, (45.0, 44.0))
    t1_moved = fit.image(*fit.client(45.0, 44.0))
    wait_json(page, 2, "s => s.points.length === 2 && Math.abs(s.points[0][3] - 44) < 1")
    state = editor_state(page, 2)
    assert_point(state["points"][0], [*h1, *t1_moved], fit.tol, "pair 1 after dragging its target")

    # right-click a point deletes its pair; a third pair goes to the end
    click(page, fit, *h2, button="right")
    wait_json(page, 2, "s => s.points.length === 1")
    h3, t3 = click(page, fit, 60.0, 12.0), click(page, fit, 60.0, 30.0)
    state = editor_state(page, 2)
    assert len(state["points"]) == 2
    assert_point(state["points"][1], [*h3, *t3], fit.tol, "pair 3")

    # paint the editable region with a radius-5 brush, erase a dab out of it
    press(page, 2, "Brush")
    set_brush(page, 2, 5)
    drag(page, fit, (8.0, 50.0), (52.0, 56.0), steps=16)
    press(page, 2, "Eraser")
    click(page, fit, 30.0, 53.0)
    state = editor_state(page, 2)
    strokes = state["strokes"]
    painted = [s for s in strokes if s[3] == 1]
    assert len(painted) >= 8, strokes
    assert all(s[2] == 5 for s in strokes), strokes
    assert abs(painted[0][0] - 8) <= 1 and abs(painted[0][1] - 50) <= 1, painted[0]
    assert abs(painted[-1][0] - 52) <= 1.5 and abs(painted[-1][1] - 56) <= 1.5, painted[-1]
    for a, b in zip(painted, painted[1:]):  # compact: no two dabs closer than r/2 (integer rounding aside)
        assert 5 / 2 - 1 <= math.dist(a[:2], b[:2]) <= 5 + 1, (a, b)
    assert strokes[-1][3] == 0 and abs(strokes[-1][0] - 30) <= 1 and abs(strokes[-1][1] - 53) <= 1, strokes[-1]
    assert all(isinstance(v, int) for s in strokes for v in s), "brush dabs are whole pixels"

    # what the backend makes of it
    parsed = parse_editor_json(widget_value(page, 2, "editor_json"), ImageSize(96, 64))
    mask = rasterize(parsed, ImageSize(96, 64))
    assert parsed.points.shape == (2, 4)
    assert mask[50, 12] and mask[55, 45], "painted stroke missing from the backend's mask"
    assert not mask[53, 30], "the erased dab is still in the backend's mask"
    assert not mask[10, 80]

    path = shot(ui, 2, "editor_drag_points_and_mask")
    assert path.stat().st_size > 5_000

    # undo takes back the eraser dab only
    before_undo = editor_state(page, 2)
    press(page, 2, "Undo")
    wait_json(page, 2, f"s => s.strokes.length === {len(before_undo['strokes']) - 1}")
    after_undo = editor_state(page, 2)
    assert after_undo["strokes"] == before_undo["strokes"][:-1]
    assert after_undo["points"] == before_undo["points"]

    # save (the UI's serialisation) and load: the state survives, and the editor re-reads it
    saved_text = widget_value(page, 2, "editor_json")
    data = reload_through_serialization(page)
    node = next(n for n in data["nodes"] if n["id"] == 2)
    assert node["widgets_values"] == [saved_text], "only editor_json is saved (the editor widget is not)"
    wait_image(page, 2, 96, 64)
    assert widget_value(page, 2, "editor_json") == saved_text
    ed = editor(page, 2)
    assert ed.get_attribute("data-points") == "2"
    assert ed.get_attribute("data-strokes") == str(len(after_undo["strokes"]))
    # ... and it is still editable after the reload
    focus(page, 2)
    fit = Fit(page, 2, 96, 64)
    h4, t4 = click(page, fit, 10.0, 10.0), click(page, fit, 25.0, 8.0)
    state = editor_state(page, 2)
    assert len(state["points"]) == 3
    assert_point(state["points"][2], [*h4, *t4], fit.tol, "pair added after reload")
    assert len(json.dumps(state)) < 65536
    # the button deletes the selected pair (the one just made)
    press(page, 2, "Delete pair")
    wait_json(page, 2, "s => s.points.length === 2")
    assert editor_state(page, 2)["points"] == state["points"][:2]


def test_move_editor_box_and_arrow_set_dx_dy(ui):
    page = ui.page
    fit = open_editor(page, workflow(), 3)
    assert editor(page, 3).get_attribute("data-mode") == "box"

    drag(page, fit, (13.2, 13.6), (45.4, 44.8))
    state = editor_state(page, 3)
    (x0, y0), (x1, y1) = fit.image(*fit.client(13.2, 13.6)), fit.image(*fit.client(45.4, 44.8))
    assert state["points"] == [], "Move keeps dx/dy in their widgets, never in points (the backend refuses them)"
    assert len(state["boxes"]) == 1
    bx, by, bw, bh = state["boxes"][0]
    assert all(isinstance(v, int) for v in state["boxes"][0])
    assert abs(bx - x0) <= 0.5 + fit.tol and abs(by - y0) <= 0.5 + fit.tol
    assert abs(bx + bw - x1) <= 0.5 + fit.tol and abs(by + bh - y1) <= 0.5 + fit.tol

    # a brush touch-up of the object
    press(page, 3, "Brush")
    set_brush(page, 3, 3)
    click(page, fit, 47.0, 30.0)
    assert editor_state(page, 3)["strokes"] == [[47, 30, 3, 1]]

    # the arrow from the object to its new place sets dx, dy (whole image pixels)
    press(page, 3, "Arrow")
    a, b = (29.0, 29.0), (62.0, 40.0)
    drag(page, fit, a, b)
    (ax, ay), (bx2, by2) = fit.image(*fit.client(*a)), fit.image(*fit.client(*b))
    dx, dy = widget_value(page, 3, "dx"), widget_value(page, 3, "dy")
    assert (dx, dy) == (round(bx2 - ax), round(by2 - ay)), (dx, dy)
    assert isinstance(dx, int) and isinstance(dy, int)
    shot(ui, 3, "editor_move_box_and_arrow")

    # dragging the arrow's tip adjusts it
    state = editor_state(page, 3)  # the arrow starts at the centre of the object's bounds (box + brush dab)
    bxs, bys, bws, bhs = state["boxes"][0]
    ox0, oy0 = min(bxs, 47 - 3), min(bys, 30 - 3)
    ox1, oy1 = max(bxs + bws, 47 + 3), max(bys + bhs, 30 + 3)
    origin = ((ox0 + ox1) / 2, (oy0 + oy1) / 2)
    tip = (origin[0] + dx, origin[1] + dy)
    drag(page, fit, tip, (tip[0] - 10, tip[1] + 5))
    page.wait_for_function("() => window.app.graph.getNodeById(3).widgets.find(w => w.name === 'dx').value !== %d"
                           % dx)
    dx2, dy2 = widget_value(page, 3, "dx"), widget_value(page, 3, "dy")
    assert abs(dx2 - (dx - 10)) <= 1 and abs(dy2 - (dy + 5)) <= 1, (dx2, dy2)

    # Undo restores the widgets too; the backend accepts the JSON as a Move spec
    press(page, 3, "Undo")
    page.wait_for_function("() => window.app.graph.getNodeById(3).widgets.find(w => w.name === 'dx').value === %d"
                           % dx)
    assert widget_value(page, 3, "dy") == dy
    parsed = parse_editor_json(widget_value(page, 3, "editor_json"), ImageSize(96, 64))
    assert len(parsed.points) == 0 and len(parsed.boxes) == 1 and len(parsed.strokes) == 1

    # right-click the box deletes it; survives save + load
    press(page, 3, "Box")
    click(page, fit, 20.0, 20.0, button="right")
    wait_json(page, 3, "s => s.boxes.length === 0")
    saved = widget_value(page, 3, "editor_json")
    reload_through_serialization(page)
    wait_image(page, 3, 96, 64)
    assert widget_value(page, 3, "editor_json") == saved
    assert (widget_value(page, 3, "dx"), widget_value(page, 3, "dy")) == (dx, dy)


def test_image_follows_load_image_without_queueing_and_placeholder(ui):
    page = ui.page
    load_workflow(page, workflow(drag_json='{"points": [[10, 10, 20, 20]]}'))
    wait_image(page, 2, 96, 64)
    assert editor(page, 2).get_attribute("data-points") == "1"

    # pick another file in Load Image: the editor follows, no run needed (portrait image)
    page.evaluate("""(name) => { const w = window.app.graph.getNodeById(1).widgets.find(w => w.name === 'image');
        w.value = name; w.callback?.(name); }""", PORTRAIT)
    ui_change_done(page)
    wait_image(page, 2, 64, 96)
    wait_image(page, 3, 64, 96)
    focus(page, 2)
    fit = Fit(page, 2, 64, 96)  # taller than wide: letterboxed left and right
    h, t = click(page, fit, 50.0, 80.0), click(page, fit, 12.0, 90.0)
    state = editor_state(page, 2)
    assert_point(state["points"][1], [*h, *t], fit.tol, "pair on the portrait image")
    shot(ui, 2, "editor_drag_portrait")

    # no image: a placeholder, and the JSON widget still works by hand
    page.evaluate("() => window.app.graph.getNodeById(2).disconnectInput(0)")
    page.wait_for_function("() => document.querySelector('.dragon-editor[data-dragon-node-id=\"2\"]')"
                           ".dataset.imageStatus === 'none'")
    before = widget_value(page, 2, "editor_json")
    box = editor(page, 2).locator("canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert widget_value(page, 2, "editor_json") == before, "a click without an image must not change the spec"
    assert "image" in editor(page, 2).locator(".dragon-editor-hint").text_content().lower()
    shot(ui, 2, "editor_placeholder")
    page.evaluate("""() => { const w = window.app.graph.getNodeById(2).widgets.find(w => w.name === 'editor_json');
        w.value = '{"points": [[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9]]}'; }""")
    ui_change_done(page)
    page.wait_for_function("() => document.querySelector('.dragon-editor[data-dragon-node-id=\"2\"]')"
                           ".dataset.points === '3'")
    page.evaluate("""() => { const w = window.app.graph.getNodeById(2).widgets.find(w => w.name === 'editor_json');
        w.value = '{not json'; }""")
    ui_change_done(page)
    page.wait_for_function("() => document.querySelector('.dragon-editor[data-dragon-node-id=\"2\"] "
                           ".dragon-editor-hint').textContent.includes('not valid JSON')")
    assert widget_value(page, 2, "editor_json") == "{not json", "the editor never overwrites hand-typed text"


def test_editor_under_vue_node_renderer(ui):
    page = ui.page
    load_workflow(page, workflow())
    wait_image(page, 2, 96, 64)
    set_vue_nodes(page, True)
    try:
        page.wait_for_selector('[data-node-id="2"] .dragon-editor', timeout=15_000)
        page.wait_for_selector('[data-node-id="3"] .dragon-editor', timeout=15_000)
        wait_image(page, 2, 96, 64)
        focus(page, 2, y=60, scale=0.8)  # Vue nodes are taller: keep the whole editor in view
        pos_before = page.evaluate("() => [...window.app.graph.getNodeById(2).pos]")
        fit = Fit(page, 2, 96, 64)
        h, t = click(page, fit, 30.0, 20.0), click(page, fit, 50.0, 35.0)
        state = editor_state(page, 2)
        assert len(state["points"]) == 1, state
        assert_point(state["points"][0], [*h, *t], fit.tol, "pair under the Vue renderer")
        press(page, 2, "Brush")
        drag(page, fit, (10.0, 55.0), (40.0, 55.0))
        state = editor_state(page, 2)
        assert len(state["strokes"]) >= 3 and all(s[3] == 1 for s in state["strokes"])
        assert page.evaluate("() => [...window.app.graph.getNodeById(2).pos]") == pos_before, \
            "pointer events on the editor moved the node"
        page.add_style_tag(content=".p-toast { display: none !important; }")  # "Prefer the legacy design?"
        shot(ui, 2, "editor_drag_vue_renderer")

        focus(page, 3, y=60, scale=0.8)
        fit3 = Fit(page, 3, 96, 64)
        drag(page, fit3, (60.0, 20.0), (85.0, 50.0))
        assert len(editor_state(page, 3)["boxes"]) == 1
        press(page, 3, "Arrow")
        drag(page, fit3, (70.0, 35.0), (40.0, 30.0))
        a, b = fit3.image(*fit3.client(70.0, 35.0)), fit3.image(*fit3.client(40.0, 30.0))
        assert (widget_value(page, 3, "dx"), widget_value(page, 3, "dy")) == (round(b[0] - a[0]), round(b[1] - a[1]))

        saved = widget_value(page, 2, "editor_json")
        reload_through_serialization(page)
        page.wait_for_selector('[data-node-id="2"] .dragon-editor', timeout=15_000)
        wait_image(page, 2, 96, 64)
        assert widget_value(page, 2, "editor_json") == saved
        assert editor(page, 2).get_attribute("data-points") == "1"
    finally:  # the setting is stored on the shared session server: put it back even if the page is gone
        status, raw = ui.server.request("POST", f"/settings/{VUE_SETTING}", False)
        assert status == 200, raw


def test_copy_paste_keeps_the_editor_state(ui):
    page = ui.page
    spec = '{"version":1,"points":[[12.5,20,30,40.5]],"boxes":[[2,3,10,12]],"strokes":[[50,50,4,1]]}'
    load_workflow(page, workflow(drag_json=spec))
    wait_image(page, 2, 96, 64)
    new_id = page.evaluate("""() => { const app = window.app; const node = app.graph.getNodeById(2);
        app.canvas.selectItems([node]); app.canvas.copyToClipboard(); app.canvas.pasteFromClipboard();
        const ids = app.graph.nodes.map(n => n.id); return Math.max(...ids); }""")
    assert new_id > 3
    assert widget_value(page, new_id, "editor_json") == spec
    page.wait_for_function(
        """(id) => { const e = document.querySelector(`.dragon-editor[data-dragon-node-id="${id}"]`);
            return !!e && e.dataset.points === '1' && e.dataset.boxes === '1' && e.dataset.strokes === '1'; }""",
        arg=new_id)
    # the copy is independent: Clear on it leaves the original alone, Undo brings it back
    focus(page, new_id)
    press(page, new_id, "Clear")
    wait_json(page, new_id, "s => s.points.length === 0 && s.boxes.length === 0 && s.strokes.length === 0")
    assert widget_value(page, 2, "editor_json") == spec
    press(page, new_id, "Undo")
    wait_json(page, new_id, "s => s.points.length === 1 && s.boxes.length === 1 && s.strokes.length === 1")
    assert json.loads(widget_value(page, new_id, "editor_json")) == {"version": 1, **json.loads(spec)}


def test_bank_info_text_is_shown_escaped(ui):
    page = ui.page
    load_workflow(page, workflow())
    node_id = page.evaluate("""() => {
        const node = window.LiteGraph.createNode('DragonDDIMInversion'); node.pos = [40, 420];
        window.app.graph.add(node); return node.id; }""")
    focus(page, node_id)
    page.wait_for_selector(".dragon-bank-info", state="visible")
    assert "run the workflow" in page.locator(".dragon-bank-info").text_content()
    # what the node's ui.text looks like after a run (ComfyUI calls onExecuted with the node's "ui" dict)
    result = page.evaluate("""(id) => {
        const node = window.app.graph.getNodeById(id);
        const evil = '<img src=x onerror="window.__dragonPwned = 1"> bank: 12.5 MB int8, 20 steps';
        // what the server sends after the node ran: the "executed" event with the node's "ui" dict
        window.comfyAPI.api.api.dispatchCustomEvent('executed',
            {node: String(id), display_node: String(id), output: {text: [evil]}, prompt_id: 'test'});
        const box = document.querySelector('.dragon-bank-info');
        const serialized = node.serialize();
        return {text: box.textContent, imgs: box.querySelectorAll('img').length,
                widgets: serialized.widgets_values, names: node.widgets.map(w => w.name)};
    }""", node_id)
    assert result["text"].startswith("<img src=x") and result["text"].endswith("20 steps")
    assert result["imgs"] == 0
    assert "dragon_bank_info" in result["names"]
    assert not any(isinstance(v, str) and "bank:" in v for v in result["widgets"] or [])
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__dragonPwned") is None


def test_help_pages_for_every_node(ui):
    """The 1.32 front end fetches /extensions/<pack folder>/docs/<NodeId>.md for a custom node's help."""
    page = ui.page
    found = page.evaluate("""async (ids) => {
        const out = {};
        for (const id of ids) {
            const def = window.LiteGraph.registered_node_types[id]?.nodeData;
            const pack = def?.python_module?.split('.')?.[1];  // as workbench/utils/nodeHelpUtil.ts does
            const res = await fetch(`/extensions/${pack}/docs/${id}.md`);
            out[id] = {pack, status: res.status, text: res.ok ? await res.text() : ''};
        }
        return out;
    }""", sorted(documented_nodes()))
    for node_id, got in found.items():
        assert got["pack"] == PACK_FOLDER_NAME, (node_id, got["pack"])
        assert got["status"] == 200, f"no help page for {node_id}: web/docs/{node_id}.md"
        assert got["text"].startswith("# "), node_id
        assert "## Inputs" in got["text"] and "## Outputs" in got["text"], node_id



# ------------------------------------------------------------------------------------------ both renderers


@pytest.fixture(params=["classic", "vue"])
def renderer(request, ui):
    """The test runs in the classic canvas and again in the Vue node renderer (Comfy.VueNodes.Enabled)."""
    vue = request.param == "vue"
    if vue:
        set_vue_nodes(ui.page, True)
    yield request.param
    if vue:  # the setting is stored on the module's server: put it back even if the page is gone
        status, raw = ui.server.request("POST", f"/settings/{VUE_SETTING}", False)
        assert status == 200, raw


def load_for(page, renderer, wf, *node_ids):
    load_workflow(page, wf)
    if renderer == "vue":
        for node_id in node_ids:
            page.wait_for_selector(f'[data-node-id="{node_id}"] .dragon-editor', timeout=15_000)


def focus_for(page, renderer, node_id):
    if renderer == "vue":
        focus(page, node_id, y=60, scale=0.8)  # Vue nodes are taller: keep the whole editor in view
    else:
        focus(page, node_id)


def open_editor(page, wf, node_id, renderer="classic", also=()):
    """Load ``wf`` (waiting for the editors of ``node_id`` and ``also`` on the Vue renderer), wait for node
    ``node_id``'s editor to show its 96x64 image, bring it into view, and return its Fit."""
    load_for(page, renderer, wf, node_id, *also)
    wait_image(page, node_id, 96, 64)
    focus_for(page, renderer, node_id)
    return Fit(page, node_id, 96, 64)


def hint(page, node_id):
    return editor(page, node_id).locator(".dragon-editor-hint").text_content()


def test_a_new_box_replaces_the_box_and_shift_adds_one(ui, renderer):
    page = ui.page
    fit = open_editor(page, workflow(), 3, renderer)
    assert "replaces" in hint(page, 3) and "Shift" in hint(page, 3), hint(page, 3)
    drag(page, fit, (10.0, 10.0), (30.0, 30.0))
    wait_json(page, 3, "s => s.boxes.length === 1")
    drag(page, fit, (50.0, 20.0), (80.0, 50.0))
    state = editor_state(page, 3)
    assert len(state["boxes"]) == 1, state
    bx, by, bw, bh = state["boxes"][0]
    assert abs(bx - 50) <= 1 + fit.tol and abs(bx + bw - 80) <= 1 + fit.tol, state  # the second box, alone
    page.keyboard.down("Shift")
    drag(page, fit, (10.0, 10.0), (30.0, 30.0))
    page.keyboard.up("Shift")
    wait_json(page, 3, "s => s.boxes.length === 2")
    assert "2 boxes (union)" in editor(page, 3).locator(".dragon-editor-info").text_content()
    shot(ui, 3, "editor_box_shift_adds")


def test_one_undo_history_and_keyboard_shortcuts(ui, renderer):
    page = ui.page
    fit = open_editor(page, workflow(), 2, renderer, also=(3,))
    # Esc cancels a pending handle
    click(page, fit, 20.0, 20.0)
    assert editor(page, 2).get_attribute("data-pending") == "1"
    page.keyboard.press("Escape")
    assert editor(page, 2).get_attribute("data-pending") == "0"
    assert editor(page, 2).get_attribute("data-points") == "0"
    # two pairs, one undo step each
    click(page, fit, 20.0, 20.0), click(page, fit, 30.0, 25.0)
    click(page, fit, 60.0, 40.0), click(page, fit, 70.0, 30.0)
    wait_json(page, 2, "s => s.points.length === 2")
    page.keyboard.press("Control+z")  # ComfyUI's undo takes back the editor's last pair ...
    wait_json(page, 2, "s => s.points.length === 1")
    page.keyboard.press("Control+y")
    wait_json(page, 2, "s => s.points.length === 2")
    press(page, 2, "Undo")  # ... and the editor's Undo walks the same history
    wait_json(page, 2, "s => s.points.length === 1")
    page.keyboard.press("Control+y")
    wait_json(page, 2, "s => s.points.length === 2")
    # a change of a widget by hand is one step of the same history: the editor's Undo takes it back too
    page.evaluate("""() => { const w = window.app.graph.getNodeById(3).widgets.find(w => w.name === 'dx');
        w.value = 7; w.callback?.(7); }""")
    ui_change_done(page)
    press(page, 3, "Undo")
    page.wait_for_function("() => window.app.graph.getNodeById(3).widgets.find(w => w.name === 'dx').value === 0")
    assert len(editor_state(page, 2)["points"]) == 2
    # Delete removes the selected pair (select it by clicking its handle), not the node
    focus_for(page, renderer, 2)
    fit = Fit(page, 2, 96, 64)
    click(page, fit, 20.0, 20.0)
    assert editor(page, 2).get_attribute("data-selected") == "0"
    page.keyboard.press("Delete")
    wait_json(page, 2, "s => s.points.length === 1 && Math.abs(s.points[0][0] - 60) < 1")
    assert page.evaluate("() => !!window.app.graph.getNodeById(2)"), "Delete in the editor removed the node"
    # tool shortcuts
    page.keyboard.press("r")
    assert editor(page, 2).get_attribute("data-mode") == "paint"
    page.keyboard.press("p")
    assert editor(page, 2).get_attribute("data-mode") == "points"


def _demo_workflow(example="two objects"):
    """Dragon Demo Model -> DragonEditDrag, and its example into a Preview Image (so the graph can run)."""
    return {
        "last_node_id": 3, "last_link_id": 2,
        "nodes": [
            {"id": 1, "type": "DragonDemoModel", "pos": [20, 60], "size": [300, 200], "flags": {}, "order": 0,
             "mode": 0, "inputs": [],
             "outputs": [{"name": n, "type": t, "links": links} for n, t, links in (
                 ("model", "MODEL", None), ("vae", "VAE", None), ("positive", "CONDITIONING", None),
                 ("negative", "CONDITIONING", None), ("example_image", "IMAGE", [1, 2]))],
             "properties": {}, "widgets_values": [example]},
            {"id": 2, "type": "DragonEditDrag", "pos": [360, 60], "size": [440, 640], "flags": {}, "order": 1,
             "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "edit", "type": "DRAGON_EDIT", "links": None}],
             "properties": {}, "widgets_values": ["{}"]},
            {"id": 3, "type": "PreviewImage", "pos": [20, 320], "size": [300, 300], "flags": {}, "order": 2,
             "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 2}], "outputs": [],
             "properties": {}, "widgets_values": []},
        ],
        "links": [[1, 1, 4, 2, 0, "IMAGE"], [2, 1, 4, 3, 0, "IMAGE"]],
        "groups": [], "config": {}, "extra": {}, "version": 0.4,
    }


def test_demo_model_image_shows_before_and_after_a_run(ui, renderer):
    page = ui.page
    names = ui.server.get_json("/object_info/DragonDemoModel")["DragonDemoModel"]["input"]["required"]["example"][0]
    example = names[0 if renderer == "classic" else 1]  # each run new to the server (no cached, silent run)
    load_for(page, renderer, _demo_workflow(example), 2)
    wait_image(page, 2, 64, 64)  # before any run: the pack's route serves the example
    assert "/dragondiffusion/demo_example" in editor(page, 2).get_attribute("data-image-url")
    focus_for(page, renderer, 2)
    shot(ui, 2, "editor_demo_before_run")
    page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
    page.wait_for_function("() => (window.app.nodeOutputs?.['1']?.images || []).length > 0", timeout=120_000)
    item = page.evaluate("() => window.app.nodeOutputs['1'].images[0]")
    assert item["type"] == "temp" and item["filename"].startswith("DragonDemoExample"), item
    wait_image(page, 2, 64, 64)
    # another example: the editor follows the widget without a run
    page.evaluate("""() => { const w = window.app.graph.getNodeById(1).widgets.find(w => w.name === 'example');
        const other = w.options.values.find(v => v !== w.value); w.value = other; w.callback?.(other); }""")
    ui_change_done(page)
    other = page.evaluate("() => window.app.graph.getNodeById(1).widgets.find(w => w.name === 'example').value")
    assert other != example
    page.wait_for_function("""(name) => { const e = document.querySelector('.dragon-editor[data-dragon-node-id="2"]');
        return e.dataset.imageStatus === 'ready' && e.dataset.imageUrl.includes(new URLSearchParams({name})); }""",
                           arg=other)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO_ROOT / "example_workflows").glob("*_demo.json")))
def test_every_demo_template_shows_its_image_readable(ui, name):
    """Each demo template opens with every editor showing its image, also zoomed out as far as a fit-to-view
    of the template takes the newer front end (the editor is not hidden at low zoom)."""
    page = ui.page
    wf = json.loads((REPO_ROOT / "example_workflows" / name).read_text(encoding="utf-8"))
    load_workflow(page, wf)
    ids = [n["id"] for n in wf["nodes"] if n["type"] in ("DragonEditDrag", "DragonEditMove", "DragonEditAppearance",
                                                           "DragonEditPaste")]
    assert ids, name
    scale = page.evaluate("() => window.app.canvas.ds.scale")
    assert scale >= 0.6, f"{name} opens at zoom {scale}: below the low-quality threshold"
    for node_id in ids:
        focus(page, node_id)  # the newer front end mounts the DOM widgets of nodes in view only
        wait_image(page, node_id, 64, 64, timeout=30_000)
    focus(page, ids[0], scale=0.3)  # a fit-to-view zoom of a template on the newest front end
    box = editor(page, ids[0]).bounding_box()
    assert box and box["width"] > 100 and editor(page, ids[0]).is_visible(), box
    path = ui.artifact("template_zoomed_out")
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path))


def paste_workflow(dx=0, dy=0, scale=1.0, box=(20, 15, 24, 20)):
    """Load Image (base) and Load Image (reference) -> Dragon Box to Mask -> DragonEditPaste."""
    return {
        "last_node_id": 4, "last_link_id": 4,
        "nodes": [
            load_image_node(1, (20, 60), 0, [1]),
            load_image_node(2, (20, 420), 1, [2, 3]),
            {"id": 3, "type": "DragonBoxToMask", "pos": [20, 780], "size": [300, 200], "flags": {}, "order": 2,
             "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 3}],
             "outputs": [{"name": "mask", "type": "MASK", "links": [4]}], "properties": {},
             "widgets_values": list(box)},
            {"id": 4, "type": "DragonEditPaste", "pos": [360, 60], "size": [440, 640], "flags": {}, "order": 3,
             "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1},
                                   {"name": "reference_image", "type": "IMAGE", "link": 2},
                                   {"name": "reference_bank", "type": "DRAGON_BANK", "link": None},
                                   {"name": "reference_mask", "type": "MASK", "link": 4}],
             "outputs": [{"name": "edit", "type": "DRAGON_EDIT", "links": None}], "properties": {},
             "widgets_values": [dx, dy, scale]},
        ],
        "links": [[1, 1, 0, 4, 0, "IMAGE"], [2, 2, 0, 4, 1, "IMAGE"], [3, 2, 0, 3, 0, "IMAGE"],
                  [4, 3, 0, 4, 3, "MASK"]],
        "groups": [], "config": {}, "extra": {}, "version": 0.4,
    }


def test_paste_editor_drags_the_outline_to_dx_dy_and_its_corner_to_scale(ui, renderer):
    page = ui.page
    fit = open_editor(page, paste_workflow(), 4, renderer)
    assert editor(page, 4).get_attribute("data-mode") == "place"
    centre = (20 + 12, 15 + 10)
    drag(page, fit, centre, (centre[0] + 30, centre[1] + 12))
    a, b = fit.image(*fit.client(*centre)), fit.image(*fit.client(centre[0] + 30, centre[1] + 12))
    dx, dy = widget_value(page, 4, "dx"), widget_value(page, 4, "dy")
    assert (dx, dy) == (round(b[0] - a[0]), round(b[1] - a[1])), (dx, dy)
    # the corner of the placed outline scales it about its centre
    corner = (20 + 24 + dx, 15 + 20 + dy)
    placed_centre = (centre[0] + dx, centre[1] + dy)
    # recorded midway: a half-done gesture must not become an undo step (Undo below goes back to scale 1)
    drag_recorded_midway(page, fit, corner, (placed_centre[0] + 18, placed_centre[1] + 15))
    scale = widget_value(page, 4, "scale")
    assert abs(scale - 1.5) <= 0.05 + 2 * fit.tol / 10, scale
    shot(ui, 4, "editor_paste")
    # one undo history here too
    press(page, 4, "Undo")
    page.wait_for_function("() => window.app.graph.getNodeById(4).widgets.find(w => w.name === 'scale').value === 1")
    assert (widget_value(page, 4, "dx"), widget_value(page, 4, "dy")) == (dx, dy)


def test_web_scripts_use_documented_front_end_apis_only():
    """No deprecated or undocumented front-end API in the pack's scripts, no polling, no oversized module."""
    for path in sorted((REPO_ROOT / "web").rglob("*.js")):
        text = path.read_text(encoding="utf-8")
        code = "\n".join(line.split("//")[0] for line in text.splitlines())
        where = path.relative_to(REPO_ROOT)
        assert ".link " not in code and ".link)" not in code and ".link;" not in code and ".link\n" not in code, \
            f"{where} reads input.link (deprecated: node.isInputConnected / node.getInputLink)"
        assert ".prototype" not in code, f"{where} patches a prototype (use the extension hooks)"
        assert "setInterval" not in code, f"{where} polls (use the front end's events)"
        assert len(text.splitlines()) <= 500, f"{where} has more than 500 lines"


def test_the_brush_stops_where_the_node_would_refuse_more_drawing_work(ui):
    """The node bounds the drawing work of editor_json (dab squares summed, EDITOR_MAX_BRUSH_PIXELS): a stroke
    stops at that budget with the reason in the status line, and the saved JSON is one the node accepts."""
    page = ui.page
    load_workflow(page, workflow(image=LARGE))
    wait_image(page, 2, 4096, 4096, timeout=30_000)
    focus(page, 2)
    fit = Fit(page, 2, 4096, 4096)
    press(page, 2, "Brush")
    set_brush(page, 2, 1024)  # the largest the editor offers: a quarter of the image's side
    assert editor(page, 2).locator(".dragon-editor-size-value").text_content() == "1024"
    # back and forth inside the image: every dab's square (2049 x 2049) lies whole inside it
    a, b = (1024, 2048), (3072, 2048)
    page.mouse.move(*fit.client(*a))
    page.mouse.down()
    for k in range(300):
        page.mouse.move(*fit.client(*(b if k % 2 == 0 else a)))
    page.mouse.up()
    assert "at most 2.15e9" in hint(page, 2) and "stroke stops" in hint(page, 2), hint(page, 2)
    text = widget_value(page, 2, "editor_json")
    size = ImageSize(4096, 4096)
    state = parse_editor_json(text, size)  # the node accepts it
    work = brush_pixels(state.strokes, size)
    # it stopped at the budget, not before: one more whole dab would have passed it
    assert work <= EDITOR_MAX_BRUSH_PIXELS < work + 2049 * 2049, (len(state.strokes), work)
    assert len(state.strokes) == EDITOR_MAX_BRUSH_PIXELS // (2049 * 2049), len(state.strokes)
    # a new stroke is refused outright, and says why
    page.wait_for_timeout(4_200)  # the first notice times out
    click(page, fit, 2048, 2048)
    assert widget_value(page, 2, "editor_json") == text
    assert "at most 2.15e9" in hint(page, 2), hint(page, 2)

"""example_workflows/ (the design card's examples_workflows/ is a link to it): every shipped workflow against the
real server and front end.

(a) no browser: the files are what scripts/make_workflows.py generates from the server's /object_info; every node
    type exists; each node's widgets_values match the node's inputs in count, order and kind (the check that makes
    a workflow fail when a node's inputs change: see test_the_widget_check_catches_changed_inputs); sockets and
    links are consistent; the server lists and serves the folder as the pack's workflow templates.
(b) browser: each workflow loads with app.loadGraphData in ComfyUI's 1.32 front end without missing nodes, node
    errors or console errors, the front end's own widgets are the ones the generator assumed (names, values,
    control_after_generate), nodes do not overlap, and app.graphToPrompt() gives the API prompt the generator's
    converter gives.
(c) browser + demo model: each *_demo twin's prompt from graphToPrompt is queued on the server and finishes with an
    image in /history that differs from the input inside the edit's region more than outside it (loose; the
    benchmark measures quality). The LoRA / ControlNet twins load a random LoRA / ControlNet built here for the
    demo UNet and saved into the server's models/loras and models/controlnet.
"""
from __future__ import annotations

import copy
import io
import json
import os
import shutil
import sys
import time

import numpy as np
import pytest

from dragon_test_helpers import ARTIFACTS_DIR, PACK_FOLDER_NAME, REPO_ROOT
from dragon_test_helpers.regions import difference_inside_outside

WORKFLOW_DIR = REPO_ROOT / "example_workflows"
INPUT_DIR = WORKFLOW_DIR / "input"
DESIGN_LINK = REPO_ROOT / "examples_workflows"
WEIGHTS = REPO_ROOT / "demo" / "weights" / "dragon_demo.safetensors"
NAMES = sorted(p.stem for p in WORKFLOW_DIR.glob("*.json"))
DEMO_NAMES = [n for n in NAMES if n.endswith("_demo")]
MODEL_FILE_INPUTS = {"ckpt_name", "lora_name", "control_net_name"}  # SD-1.5 files a user downloads
REGION_MARGIN = 4  # px around the edit's boxes left out of "outside"
# The front end looks node ids up in the Comfy Registry; the page's CSP (and the sandbox) block it: harmless.
OUTSIDE_HOSTS = ("https://api.comfy.org/",)


# The generator's package (scripts/ holds it next to its command line, make_workflows.py).
sys.path.insert(0, str(REPO_ROOT / "scripts"))
from dragon_workflows import addons, api_prompt, catalogue, layout  # noqa: E402
from dragon_workflows import images as example_images  # noqa: E402
from dragon_workflows import descriptions as desc  # noqa: E402
from dragon_workflows import frontend_format as ff  # noqa: E402


def load(name: str) -> dict:
    return json.loads((WORKFLOW_DIR / f"{name}.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def server(comfy_server, comfy_host):
    """The session server with the example images in input/, the demo LoRA and ControlNet in models/, and the
    first-visit Templates dialog switched off."""
    input_dir = comfy_server.base_dir / "input"
    input_dir.mkdir(parents=True, exist_ok=True)
    for png in INPUT_DIR.glob("*.png"):
        shutil.copyfile(png, input_dir / png.name)
    addons.write_demo_addons(comfy_server.base_dir / "models")
    status, raw = comfy_server.request("POST", "/settings/Comfy.TutorialCompleted", True)
    assert status == 200, raw
    return comfy_server


@pytest.fixture(scope="module")
def object_info(server):
    return server.get_json("/object_info")


# ------------------------------------------------------------------------------------------------ (a)


def value_problem(widget, value, sd_variant: bool) -> str | None:
    """Why ``value`` cannot be the value of ``widget`` (a make_workflows.Widget from /object_info), or None."""
    if widget.kind == "control":
        return None if value in ff.CONTROL_VALUES else f"control_after_generate value {value!r}"
    if widget.kind == "upload":
        return None if value == "image" else f"upload button value {value!r} (the front end saves 'image')"
    kind, options, choices = widget.spec
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "INT" and not (number and float(value).is_integer()):
        return f"{widget.name}: INT expected, got {value!r}"
    if kind == "FLOAT" and not number:
        return f"{widget.name}: FLOAT expected, got {value!r}"
    if kind in ("INT", "FLOAT"):
        lo, hi = options.get("min", -float("inf")), options.get("max", float("inf"))
        if not lo <= value <= hi:
            return f"{widget.name}: {value} outside [{lo}, {hi}]"
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return f"{widget.name}: BOOLEAN expected, got {value!r}"
    if kind == "STRING" and not isinstance(value, str):
        return f"{widget.name}: STRING expected, got {value!r}"
    if kind == "COMBO" and value not in (choices or ()):
        if not (sd_variant and widget.name in MODEL_FILE_INPUTS and isinstance(value, str)):
            return f"{widget.name}: {value!r} is not one of {list(choices or ())[:12]}"
    return None



def widget_problems(node: dict, info: dict, sd_variant: bool) -> list[str]:
    """Mismatches between a saved node's widgets_values and the widgets its /object_info entry gives."""
    widgets = ff.frontend_widgets(info)
    values = node.get("widgets_values") or []
    where = f"node {node['id']} ({node['type']})"
    if len(values) != len(widgets):
        return [f"{where}: {len(values)} widgets_values for {len(widgets)} widgets {[w.name for w in widgets]}"]
    return [f"{where}: {p}" for w, v in zip(widgets, values) if (p := value_problem(w, v, sd_variant))]


def socket_problems(node: dict, info: dict) -> list[str]:
    where = f"node {node['id']} ({node['type']})"
    problems = []
    expected_in = [(name, kind) for name, kind, _ in ff.socket_inputs(info)]
    got_in = [(s["name"], s["type"]) for s in node.get("inputs", [])]
    if got_in != expected_in:
        problems.append(f"{where}: inputs {got_in} but the node has {expected_in}")
    for name, kind, optional in ff.socket_inputs(info):
        socket = next((s for s in node.get("inputs", []) if s["name"] == name), None)
        if socket is not None and not optional and socket.get("link") is None:
            problems.append(f"{where}: required input {name} is not connected")
    names = list(info.get("output_name") or info["output"])
    got_out = [(s["name"], s["type"]) for s in node.get("outputs", [])]
    if got_out != list(zip(names, info["output"])):
        problems.append(f"{where}: outputs {got_out} but the node has {list(zip(names, info['output']))}")
    return problems


def link_problems(wf: dict) -> list[str]:
    problems = []
    nodes = {n["id"]: n for n in wf["nodes"]}
    if len(nodes) != len(wf["nodes"]):
        problems.append("duplicate node ids")
    links = {link[0]: link for link in wf["links"]}
    if len(links) != len(wf["links"]):
        problems.append("duplicate link ids")
    if wf["last_node_id"] < max(nodes):
        problems.append(f"last_node_id {wf['last_node_id']} < {max(nodes)}")
    if links and wf["last_link_id"] < max(links):
        problems.append(f"last_link_id {wf['last_link_id']} < {max(links)}")
    for link_id, origin, origin_slot, target, target_slot, kind in wf["links"]:
        src, dst = nodes.get(origin), nodes.get(target)
        if src is None or dst is None:
            problems.append(f"link {link_id}: missing node {origin if src is None else target}")
            continue
        out = src["outputs"][origin_slot] if origin_slot < len(src["outputs"]) else None
        inp = dst["inputs"][target_slot] if target_slot < len(dst["inputs"]) else None
        if out is None or link_id not in (out.get("links") or []) or out["type"] != kind:
            problems.append(f"link {link_id}: not listed by output {origin_slot} of node {origin} as {kind}")
        if inp is None or inp.get("link") != link_id or inp["type"] not in (kind, "*"):
            problems.append(f"link {link_id}: not the link of input {target_slot} of node {target} ({kind})")
    for node in wf["nodes"]:
        for slot, socket in enumerate(node.get("inputs", [])):
            link = links.get(socket.get("link")) if socket.get("link") is not None else None
            if socket.get("link") is not None and (link is None or (link[3], link[4]) != (node["id"], slot)):
                problems.append(f"node {node['id']} input {socket['name']}: link {socket['link']} does not end here")
        for slot, socket in enumerate(node.get("outputs", [])):
            for link_id in socket.get("links") or []:
                link = links.get(link_id)
                if link is None or (link[1], link[2]) != (node["id"], slot):
                    problems.append(f"node {node['id']} output {socket['name']}: link {link_id} does not start here")
    return problems


def workflow_problems(wf: dict, object_info: dict, sd_variant: bool) -> list[str]:
    problems = []
    for node in wf["nodes"]:
        if node["type"] in ff.FRONTEND_NODES:
            if len(node.get("widgets_values") or []) != len(ff.FRONTEND_NODES[node["type"]]):
                problems.append(f"node {node['id']} ({node['type']}): widgets_values {node.get('widgets_values')}")
            continue
        info = object_info.get(node["type"])
        if info is None:
            problems.append(f"node {node['id']}: type {node['type']} is not in the server's /object_info")
            continue
        problems += widget_problems(node, info, sd_variant)
        problems += socket_problems(node, info)
    return problems + link_problems(wf)


def linked_inputs(node: dict) -> set:
    return {socket["name"] for socket in node.get("inputs", []) if socket.get("link") is not None}


def test_one_workflow_and_one_demo_twin_per_mode():
    expected = set(catalogue.EXAMPLES) | {f"{n}_demo" for n in catalogue.EXAMPLES}
    assert set(NAMES) == expected
    types = {name: {n["type"] for n in load(name)["nodes"]} for name in NAMES}
    for mode_node in ("DragonEditMove", "DragonEditDrag", "DragonEditAppearance", "DragonEditPaste"):
        assert any(mode_node in t for t in types.values()), mode_node
    assert any({"LoraLoaderModelOnly"} <= t for t in types.values())
    assert any({"ControlNetLoader", "ControlNetApplyAdvanced"} <= t for t in types.values())
    assert any({"DragonGuider", "SamplerCustomAdvanced", "DisableNoise", "DragonBankSigmas", "DragonStartLatent"} <= t
               for t in types.values())
    # One drag takes its points from other nodes' outputs (handle_points / target_points), not from its editor.
    assert any(node["type"] == "DragonEditDrag" and {"handle_points", "target_points"} <= linked_inputs(node)
               for name in NAMES for node in load(name)["nodes"])
    for name in NAMES:
        t = types[name]
        assert "Note" in t, name
        if name.endswith("_demo"):
            assert "DragonDemoModel" in t and not t & {"CheckpointLoaderSimple", "CLIPTextEncode", "LoadImage"}, name
        else:
            assert {"CheckpointLoaderSimple", "CLIPTextEncode", "LoadImage"} <= t and "DragonDemoModel" not in t, name


def test_the_files_are_what_the_generator_writes(object_info):
    built = layout.build_all(object_info)
    stale = [name for name, b in built.items()
             if (WORKFLOW_DIR / f"{name}.json").read_text(encoding="utf-8") != layout.dump(b.workflow)]
    assert not stale, (f"{stale} differ from what scripts/make_workflows.py generates from this server's nodes: "
                       "run it (and look at the diff) after changing a node or a description")


def test_the_example_images_are_the_synthetic_scenes():
    from PIL import Image

    expected = {desc.input_image_name(scene, size) for scene in desc.SCENES for size in (desc.DEMO_SIZE, desc.SD_SIZE)}
    assert {p.name for p in INPUT_DIR.glob("*.png")} == expected
    for scene in desc.SCENES:
        for size in (desc.DEMO_SIZE, desc.SD_SIZE):
            with Image.open(INPUT_DIR / desc.input_image_name(scene, size)) as img:
                pixels = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
            assert pixels.shape == (size, size, 3)
            assert np.abs(pixels - example_images.render(scene, size)).max() <= 1.0 / 255 + 1e-6, (scene, size)


def _jpeg_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def test_sd15_cards_show_their_edit_request_not_another_models_result(object_info):
    """The SD-1.5 workflows cannot run here: their card is the request (input, arrows, boxes, regions) with its
    banner, as the generator draws it, and never the demo twin's result."""
    from dragon_workflows.edit_request import edit_request
    from dragon_workflows.thumbnails import request_thumbnails

    built = layout.build_all(object_info)
    cards = request_thumbnails(built)
    assert set(cards) == {f"{name}.jpg" for name in NAMES if not name.endswith("_demo")}
    for jpg, data in cards.items():
        shipped = (WORKFLOW_DIR / jpg).read_bytes()
        assert np.abs(_jpeg_pixels(shipped) - _jpeg_pixels(data)).mean() < 0.01, jpg
        twin = WORKFLOW_DIR / jpg.replace(".jpg", "_demo.jpg")
        assert not twin.is_file() or twin.read_bytes() != shipped, jpg
    for name, b in built.items():  # every request draws something: an arrow, a box or a region
        if not b.example.demo:
            request = edit_request(b.example)
            assert request.arrows or request.placed or request.objects or request.regions, name


@pytest.mark.parametrize("name", NAMES)
def test_workflow_matches_the_nodes(name, object_info):
    wf = load(name)
    assert wf["version"] == 0.4 and isinstance(wf["groups"], list) and isinstance(wf["config"], dict)
    problems = workflow_problems(wf, object_info, sd_variant=not name.endswith("_demo"))
    assert not problems, "\n".join(problems)
    for node in wf["nodes"]:
        if node["type"] == "LoadImage":
            assert (INPUT_DIR / node["widgets_values"][0]).is_file(), node["widgets_values"]
        assert node["properties"].get("Node name for S&R", node["type"]) == node["type"]


def test_the_widget_check_catches_changed_inputs(object_info):
    """A node whose inputs change under a shipped workflow makes workflow_problems report it."""
    wf = load("dragon_move_guider_demo")
    assert not workflow_problems(wf, object_info, sd_variant=False)

    def changed(node_type, edit):
        info = copy.deepcopy(object_info)
        edit(info[node_type])
        return workflow_problems(wf, info, sd_variant=False)

    def append_widget(info):  # a new required INT: one widget more than the file has
        info["input"]["required"]["new_steps"] = ["INT", {"default": 1}]
        info["input_order"]["required"].append("new_steps")

    def reorder(info):  # same count, another order (COMBO <-> BOOLEAN)
        order = info["input_order"]["required"]
        i, j = order.index("dtype"), order.index("record_attention")
        order[i], order[j] = order[j], order[i]

    def rename_option(info):  # a COMBO option the file uses disappears
        info["input"]["required"]["schedule"][0] = ["DragonDiffusion", "DiffEditor v2"]

    def drop_seed(info):  # 'seed' renamed: the control_after_generate value goes away with it
        req = info["input"]["required"]
        req["noise"] = req.pop("seed")
        info["input_order"]["required"] = ["noise"]

    def socket_becomes_widget(info):
        info["input"]["required"]["cfg"] = ["FLOAT", {"default": 4.0}]
        info["input"]["required"]["edit"] = ["STRING", {"default": ""}]

    assert any("widgets_values" in p for p in changed("DragonEditMove", append_widget))
    assert any("dtype" in p or "record_attention" in p for p in changed("DragonBankOptions", reorder))
    assert any("schedule" in p for p in changed("DragonGuidanceOptions", rename_option))
    assert changed("DragonDDIMSampler", drop_seed)
    assert changed("DragonGuider", socket_becomes_widget)


def test_the_server_serves_the_folder_as_workflow_templates(server):
    # The real folder carries the served name (a checkout without symlinks or a registry zip keeps it); the design
    # card's name is only a relative link to it.
    assert WORKFLOW_DIR.is_dir() and not WORKFLOW_DIR.is_symlink()
    assert os.path.islink(DESIGN_LINK) and os.readlink(DESIGN_LINK) == "example_workflows"
    listed = server.get_json("/workflow_templates")
    assert sorted(listed.get(PACK_FOLDER_NAME, [])) == NAMES, listed
    for name in NAMES:
        status, body = server.request("GET", f"/api/workflow_templates/{PACK_FOLDER_NAME}/{name}.json")
        assert status == 200 and body == (WORKFLOW_DIR / f"{name}.json").read_bytes(), (name, status)
        thumb = WORKFLOW_DIR / f"{name}.jpg"
        if thumb.is_file():  # the front end shows <name>.jpg from the same folder as the card's image
            status, body = server.request("GET", f"/api/workflow_templates/{PACK_FOLDER_NAME}/{name}.jpg")
            assert status == 200 and body == thumb.read_bytes(), (name, status)


# ------------------------------------------------------------------------------------------------ (b)

LOAD_JS = """async ({wf, name}) => {
  const app = window.app;
  await app.loadGraphData(wf, true, true, name, {showMissingModelsDialog: false});
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const saved = (w) => w.serialize !== false;
  const nodes = app.graph.nodes.map((n) => ({
    id: n.id, type: n.type, registered: n.type in LiteGraph.registered_node_types, has_errors: !!n.has_errors,
    widgets: (n.widgets || []).filter(saved).map((w) => w.name),
    values: (n.widgets || []).filter(saved).map((w) => w.value),
    bounding: Array.from(n.getBounding()),
  }));
  const prompt = await app.graphToPrompt();
  const dialogs = Array.from(document.querySelectorAll('.p-dialog')).map((d) => d.innerText.slice(0, 300));
  return {nodes, workflow: JSON.parse(JSON.stringify(prompt.workflow)), output: prompt.output, dialogs};
}"""


@pytest.fixture(scope="module")
def frontend(browser, server):
    """Every workflow loaded one after the other in one page of the front end: name -> what the page saw."""
    from dragon_test_helpers.browser import attach_log, open_comfy

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    log = attach_log(page)
    try:
        open_comfy(page, server.url)
        page.wait_for_timeout(500)
        for _ in range(3):  # any dialog left from the start (Templates)
            if page.locator(".p-dialog-mask").count() == 0:
                break
            page.keyboard.press("Escape")
            page.wait_for_timeout(200)
        results = {}
        for name in NAMES:
            seen = len(log.console), len(log.page_errors)
            result = page.evaluate(LOAD_JS, {"wf": load(name), "name": name})
            result["console"] = [c for c in log.console[seen[0]:] if c[0] in ("error", "warning")
                                 and not any(host in c[1] for host in OUTSIDE_HOSTS)]
            result["page_errors"] = log.page_errors[seen[1]:]
            results[name] = result
            for _ in range(3):  # a missing-nodes dialog would be reported above; close it for the next one
                if page.locator(".p-dialog-mask").count() == 0:
                    break
                page.keyboard.press("Escape")
                page.wait_for_timeout(200)
        yield results
    except Exception:
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS_DIR / "example_workflows_frontend.png"))
        raise
    finally:
        context.close()


def _overlaps(nodes: list[dict]) -> list[str]:
    found = []
    for i, a in enumerate(nodes):
        ax, ay, aw, ah = a["bounding"]
        for b in nodes[i + 1:]:
            bx, by, bw, bh = b["bounding"]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                found.append(f"node {a['id']} ({a['type']}) overlaps node {b['id']} ({b['type']})")
    return found


def _strip_meta(prompt: dict) -> dict:
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()}


@pytest.mark.browser
@pytest.mark.parametrize("name", NAMES)
def test_loads_in_the_front_end_and_converts_to_an_api_prompt(name, frontend, object_info):
    seen, wf = frontend[name], load(name)
    assert not seen["page_errors"], seen["page_errors"]
    assert not seen["console"], "console during loadGraphData/graphToPrompt:\n" + "\n".join(map(str, seen["console"]))
    assert not seen["dialogs"], seen["dialogs"]
    by_id = {n["id"]: n for n in seen["nodes"]}
    assert sorted(by_id) == sorted(n["id"] for n in wf["nodes"])
    for node in wf["nodes"]:
        live = by_id[node["id"]]
        assert live["type"] == node["type"] and live["registered"] and not live["has_errors"], live
        if node["type"] in ff.FRONTEND_NODES:
            continue
        # The front end's own widgets are the ones the generator and the checks above assume ...
        assert live["widgets"] == [w.name for w in ff.frontend_widgets(object_info[node["type"]])], node["type"]
        # ... and it kept every saved value in place.
        assert live["values"] == node["widgets_values"], node["type"]
    assert not _overlaps(seen["nodes"]), _overlaps(seen["nodes"])

    exported = {n["id"]: n for n in seen["workflow"]["nodes"]}
    for node in wf["nodes"]:
        assert exported[node["id"]].get("widgets_values") == node["widgets_values"], node["type"]
        assert [(s["name"], s["type"], s.get("link")) for s in exported[node["id"]].get("inputs", [])] == \
            [(s["name"], s["type"], s.get("link")) for s in node["inputs"]], node["type"]
    assert sorted(map(tuple, seen["workflow"]["links"])) == sorted(map(tuple, wf["links"]))
    assert _strip_meta(seen["output"]) == _strip_meta(api_prompt.to_api(wf, object_info))


# ------------------------------------------------------------------------------------------------ (c)


@pytest.mark.browser
@pytest.mark.parametrize("name", DEMO_NAMES)
def test_demo_twin_runs_on_the_server_and_edits_where_asked(name, frontend, server):
    from PIL import Image

    assert WEIGHTS.is_file(), f"{WEIGHTS} is missing: the demo twins need the embedded demo model's weights"
    example = next(e for e in catalogue.examples() if e.name == name)
    prompt = frontend[name]["output"]
    start = time.monotonic()
    entry = server.wait_history(server.post_prompt(prompt), timeout=600)
    seconds = time.monotonic() - start
    save_id = next(str(n["id"]) for n in load(name)["nodes"] if n["type"] == "SaveImage")
    images = entry["outputs"][save_id]["images"]
    assert len(images) == 1, entry["outputs"]
    status, raw = server.request("GET", "/view?filename={filename}&subfolder={subfolder}&type={type}".format(**images[0]))
    assert status == 200 and raw[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(raw)) as img:
        result = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    with Image.open(INPUT_DIR / desc.input_image_name(example.base_scene, desc.DEMO_SIZE)) as img:
        source = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    assert result.shape == source.shape
    inside, outside = difference_inside_outside(result, source, example.regions, REGION_MARGIN)
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    Image.fromarray((np.concatenate([source, result], axis=1) * 255 + 0.5).astype(np.uint8)).resize(
        (512, 256), Image.NEAREST).save(ARTIFACTS_DIR / f"example_{name}.png")
    print(f"{name}: {seconds:.1f} s, mean |result - input| inside the edit {inside:.3f}, outside {outside:.3f}")
    assert inside > 1.5 * outside and inside > outside + 0.03, (
        f"{name}: the result differs from the input by {inside:.3f} inside the edit's region and {outside:.3f} "
        f"outside it (test-artifacts/example_{name}.png)")

"""The pack inside a real ComfyUI server process: its nodes in /object_info with the documented categories and
types, a clean start-up log, its web extension served, and the front end loading it in a browser."""
import json
import re

import pytest

from dragon_test_helpers import PACK_FOLDER_NAME, REPO_ROOT
from dragon_test_helpers.architecture import documented_nodes

OUR_MODULE = f"custom_nodes.{PACK_FOLDER_NAME}"
OUR_EXTENSION_PREFIX = f"/extensions/{PACK_FOLDER_NAME}/"


def web_scripts():
    return sorted(p.relative_to(REPO_ROOT / "web").as_posix() for p in (REPO_ROOT / "web").rglob("*.js"))


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.get_json("/object_info")


def test_our_nodes_are_in_object_info_with_documented_categories_and_types(comfy_server, object_info, dragon_pack):
    ours = {node_id for node_id, info in object_info.items() if info.get("python_module") == OUR_MODULE}
    expected = set(dragon_pack.NODE_CLASS_MAPPINGS)
    assert expected, "the pack exports no node"
    assert ours == expected, (f"server has {sorted(ours)}, the pack exports {sorted(expected)}\n"
                              f"{comfy_server.log_tail()}")
    documented = documented_nodes()
    undocumented = sorted(ours - set(documented))
    assert not undocumented, f"nodes missing from docs/ARCHITECTURE.md's table (the public interface): {undocumented}"
    for node_id in sorted(ours):
        info, spec = object_info[node_id], documented[node_id]
        assert info["category"].startswith("DragonDiffusion"), (node_id, info["category"])
        assert info["category"] == spec.category, (node_id, info["category"], spec.category)
        assert tuple(info["output"]) == spec.outputs, (node_id, info["output"], spec.outputs)
        assert info["display_name"], node_id


def test_startup_log_shows_our_pack_imported_without_errors(comfy_server, object_info):
    log = comfy_server.log_text()
    link = str(comfy_server.pack_link)
    timing_lines = [line for line in log.splitlines() if line.rstrip().endswith(link)]
    assert timing_lines, f"no import-time line for {link} in the server log\n{comfy_server.log_tail()}"
    assert all("IMPORT FAILED" not in line for line in timing_lines), timing_lines
    assert f"Cannot import {link}" not in log
    # the pack swallows a failing node family so that ComfyUI survives; that must still fail here
    ours = [line for line in log.splitlines() if "DragonDiffusion" in line and "not loaded" in line]
    assert not ours, "\n".join(ours)


def test_extensions_lists_and_serves_our_web_files(comfy_server):
    scripts = web_scripts()
    assert scripts, "web/ has no .js front-end extension"
    listed = comfy_server.get_json("/extensions")
    ours = sorted(url[len(OUR_EXTENSION_PREFIX):] for url in listed if url.startswith(OUR_EXTENSION_PREFIX))
    assert ours == scripts, f"/extensions lists {ours}, web/ has {scripts}"
    for name in scripts:
        status, body = comfy_server.request("GET", OUR_EXTENSION_PREFIX + name)
        assert status == 200, (name, status)
        assert body == (REPO_ROOT / "web" / name).read_bytes(), f"{name} served differs from the file"


def test_a_stock_prompt_runs_through_post_prompt_and_history(comfy_server):
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0xFF0000}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "harness_check"}},
    }
    entry = comfy_server.wait_history(comfy_server.post_prompt(prompt), timeout=120)
    images = entry["outputs"]["2"]["images"]
    assert len(images) == 1 and images[0]["type"] == "output"
    saved = comfy_server.base_dir / "output" / images[0]["subfolder"] / images[0]["filename"]
    assert saved.is_file() and saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_invalid_prompt_is_refused_with_the_reason(comfy_server):
    with pytest.raises(Exception, match="NoSuchNodeType|invalid_prompt|not found"):
        comfy_server.post_prompt({"1": {"class_type": "NoSuchNodeType", "inputs": {}}})


@pytest.mark.browser
def test_front_end_loads_our_extension_and_nodes_without_errors(comfy_page, dragon_pack):
    page, log = comfy_page.page, comfy_page.log
    registered = page.evaluate("() => Object.keys(window.LiteGraph.registered_node_types)")
    missing = sorted(set(dragon_pack.NODE_CLASS_MAPPINGS) - set(registered))
    assert not missing, f"node types unknown to the front end: {missing}"
    scripts = web_scripts()
    assert scripts, "web/ has no .js front-end extension"
    for name in scripts:
        url = comfy_page.server.url + OUR_EXTENSION_PREFIX + name
        assert log.responses.get(url) == 200, f"the front end did not load {url} (got {log.responses.get(url)})"
    page.wait_for_timeout(1000)  # let late errors of the extension's setup arrive
    problems = log.errors_mentioning(OUR_EXTENSION_PREFIX, "Dragon", "dragon")
    assert not problems, "\n".join(problems)
    category_ok = page.evaluate(
        "(ids) => ids.every(id => (window.LiteGraph.registered_node_types[id].category || '')"
        ".startsWith('DragonDiffusion'))", sorted(dragon_pack.NODE_CLASS_MAPPINGS))
    assert category_ok

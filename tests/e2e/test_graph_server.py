"""The whole edit graph, API format, executed by the real ComfyUI server with the pack loaded."""
import json

import pytest

STEPS = 10


def edit_prompt(editor_json: dict, steps: int = STEPS, seed: int = 0) -> dict:
    """DragonDemoModel -> VAEEncode -> DragonDDIMInversion -> DragonEditDrag -> DragonSampler -> VAEDecode -> Preview."""
    return {
        "1": {"class_type": "DragonDemoModel", "inputs": {"example": "two objects"}},
        "2": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 4], "vae": ["1", 1]}},
        "3": {"class_type": "DragonDDIMInversion",
              "inputs": {"model": ["1", 0], "latent": ["2", 0], "positive": ["1", 2], "steps": steps}},
        "4": {"class_type": "DragonEditDrag", "inputs": {"image": ["1", 4], "editor_json": json.dumps(editor_json)}},
        "5": {"class_type": "DragonSampler",
              "inputs": {"model": ["1", 0], "positive": ["1", 2], "negative": ["1", 3], "memory_bank": ["3", 0],
                         "edit": ["4", 0], "seed": seed, "cfg": 4.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 1]}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
    }


def executed_nodes(entry: dict) -> set:
    """Node ids the server executed (not served from its cache) for a finished prompt."""
    cached = set()
    for kind, data in entry["status"]["messages"]:
        if kind == "execution_cached":
            cached.update(data["nodes"])
    return set(entry["prompt"][2]) - cached


def test_edit_graph_runs_and_invert_once_edit_many(comfy_server):
    first = comfy_server.wait_history(comfy_server.post_prompt(
        edit_prompt({"points": [[20, 24, 34, 22]], "strokes": [[27, 24, 15, 1]]})), timeout=300)
    images = first["outputs"]["7"]["images"]
    assert len(images) == 1 and images[0]["filename"].endswith(".png")
    inversion_text = first["outputs"]["3"]["text"][0]
    assert "steps" in inversion_text and "MiB" in inversion_text

    # Only the edit changes: ComfyUI's cache serves the memory bank, the inversion does not run again.
    second = comfy_server.wait_history(comfy_server.post_prompt(
        edit_prompt({"points": [[20, 24, 30, 30]], "strokes": [[25, 27, 15, 1]]})), timeout=300)
    ran = executed_nodes(second)
    assert "3" not in ran and "1" not in ran and "2" not in ran
    assert {"4", "5", "6", "7"} <= ran
    status, png = comfy_server.request("GET", "/view?filename={filename}&subfolder={subfolder}&type={type}".format(
        **second["outputs"]["7"]["images"][0]))
    assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_node_error_names_the_input_and_the_server_keeps_working(comfy_server):
    from dragon_dev.server_process import ServerError

    bad = comfy_server.post_prompt(edit_prompt({"points": [[200, 24, 34, 22]]}))
    with pytest.raises(ServerError, match=r"editor_json\.points \(handles\)\[0\].*outside the 64x64 image"):
        comfy_server.wait_history(bad, timeout=300)
    ok = comfy_server.wait_history(comfy_server.post_prompt(edit_prompt({"points": [[20, 24, 30, 24]]})), timeout=300)
    assert ok["status"]["status_str"] == "success"

"""UI workflow -> API prompt: what the front end's graphToPrompt does for these graphs (the tests compare the two)."""
from __future__ import annotations

from .frontend_format import FRONTEND_NODES, frontend_widgets


def to_api(workflow: dict, object_info: dict) -> dict:
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_NODES or node.get("mode", 0) in (2, 4):
            continue
        info = object_info[node["type"]]
        inputs = {}
        for widget, value in zip(frontend_widgets(info), node.get("widgets_values") or []):
            if widget.kind == "value":
                inputs[widget.name] = value
        for socket in node.get("inputs", []):
            if socket.get("link") is not None:
                link = links[socket["link"]]
                inputs[socket["name"]] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": node["type"],
                                   "_meta": {"title": node.get("title") or info.get("display_name") or node["type"]}}
    return prompt

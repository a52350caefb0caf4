"""A description's nodes laid out as the front end's workflow JSON (version 0.4, the form the 1.32 front end exports
with ``app.graphToPrompt().workflow``): nodes with id/type/pos/size/flags/order/mode/inputs/outputs/properties/
widgets_values, links ``[id, from_node, from_slot, to_node, to_slot, type]``, groups in left-to-right columns,
config, extra."""
from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass

from .catalogue import examples
from .descriptions import Example, Node
from .frontend_format import FRONTEND_NODES, NODE_SIZES, default_value, frontend_widgets, output_index, socket_inputs

TITLE_HEIGHT = 30  # LiteGraph draws the title bar above pos
ROW_GAP = 50
COLUMN_GAP = 70
GROUP_PAD = 20
GROUP_TITLE = 64  # room for the group title and the nodes' source badges above their titles


def _node_size(node: Node, info: dict | None, n_widgets: int) -> tuple[int, int]:
    if node.size:
        return node.size
    if node.type in NODE_SIZES:
        return NODE_SIZES[node.type]
    n_sockets = max(len(socket_inputs(info)) if info else 0, len(info["output"]) if info else 0)
    return (315, 30 + 20 * n_sockets + 24 * n_widgets)


def build_workflow(name: str, nodes: list[Node], object_info: dict, note: str, group_titles: dict) -> dict:
    """The UI-format workflow of a description; raises when a description names an input, widget or output the
    node does not have."""
    note_node = Node("note", "Note", 0, {"text": note}, size=(440, 620), color="#432", bgcolor="#653")
    nodes = [note_node] + nodes
    ids = {n.key: i + 1 for i, n in enumerate(nodes)}
    if len(ids) != len(nodes):
        raise ValueError(f"{name}: duplicate node keys")
    infos = {n.key: object_info.get(n.type) for n in nodes}
    for n in nodes:
        if infos[n.key] is None and n.type not in FRONTEND_NODES:
            raise KeyError(f"{name}: node type {n.type!r} is not in /object_info")

    links, out_links = [], {}
    in_links: dict[tuple[str, str], int] = {}
    for n in nodes:
        info = infos[n.key]
        sockets = {s[0]: s for s in socket_inputs(info)} if info else {}
        for input_name, (src, output) in n.links.items():
            if input_name not in sockets:
                raise KeyError(f"{name}: {n.type} has no socket input {input_name!r} (has {sorted(sockets)})")
            slot = output_index(infos[src], output)
            out_type = infos[src]["output"][slot]
            in_type = sockets[input_name][1]
            if out_type != in_type and "*" not in (out_type, in_type):
                raise TypeError(f"{name}: {src}.{output} ({out_type}) -> {n.key}.{input_name} ({in_type})")
            link_id = len(links) + 1
            to_slot = [s[0] for s in socket_inputs(info)].index(input_name)
            links.append([link_id, ids[src], slot, ids[n.key], to_slot, out_type])
            out_links.setdefault((src, slot), []).append(link_id)
            in_links[(n.key, input_name)] = link_id

    # Widget values in the front end's order.
    values = {}
    for n in nodes:
        info = infos[n.key]
        if info is None:
            values[n.key] = [n.widgets.get(w, "") for w in FRONTEND_NODES[n.type]]
            continue
        layout = frontend_widgets(info)
        known = {w.name for w in layout}
        unknown = set(n.widgets) - known
        if unknown:
            raise KeyError(f"{name}: {n.type} has no widget {sorted(unknown)} (widgets: {[w.name for w in layout]})")
        values[n.key] = [n.widgets[w.name] if w.name in n.widgets else default_value(w) for w in layout]

    # Layout: columns left to right, nodes stacked in description order.
    columns: dict[int, list[Node]] = {}
    for n in nodes:
        columns.setdefault(n.col, []).append(n)
    sizes = {n.key: _node_size(n, infos[n.key], len(values[n.key])) for n in nodes}
    pos, x, groups = {}, 0, []
    for col in sorted(columns):
        width = max(sizes[n.key][0] for n in columns[col])
        y = GROUP_TITLE + TITLE_HEIGHT
        for n in columns[col]:
            pos[n.key] = (x, y)
            y += sizes[n.key][1] + TITLE_HEIGHT + ROW_GAP
        if col in group_titles:
            groups.append({"id": len(groups) + 1, "title": group_titles[col],
                           "bounding": [x - GROUP_PAD, 0, width + 2 * GROUP_PAD, y - ROW_GAP + GROUP_PAD],
                           "color": "#3f789e", "font_size": 24, "flags": {}})
        x += width + COLUMN_GAP + (2 * GROUP_PAD if col in group_titles else 0)

    # Execution order as the front end computes it: a topological order (sources first, by id).
    deps = {n.key: {src for src, _ in n.links.values()} for n in nodes}
    order, done = {}, set()
    while len(done) < len(nodes):
        ready = [n for n in nodes if n.key not in done and deps[n.key] <= done]
        if not ready:
            raise ValueError(f"{name}: the graph has a cycle")
        for n in ready:
            order[n.key] = len(order)
        done.update(n.key for n in ready)

    out_nodes = []
    for n in nodes:
        info = infos[n.key]
        entry = {"id": ids[n.key], "type": n.type, "pos": list(pos[n.key]), "size": list(sizes[n.key]),
                 "flags": {}, "order": order[n.key], "mode": 0, "inputs": [], "outputs": []}
        if n.title:
            entry["title"] = n.title
        if info is not None:
            for input_name, kind, optional in socket_inputs(info):
                socket = {"name": input_name, "type": kind, "link": in_links.get((n.key, input_name))}
                if optional:
                    socket["shape"] = 7  # the front end draws optional inputs hollow and saves it
                entry["inputs"].append(socket)
            names = list(info.get("output_name") or info["output"])
            for slot, (out_name, kind) in enumerate(zip(names, info["output"])):
                entry["outputs"].append({"name": out_name, "type": kind, "links": out_links.get((n.key, slot), []),
                                         "slot_index": slot})
            entry["properties"] = {"Node name for S&R": n.type, **n.properties}
        else:
            entry["properties"] = dict(n.properties)
        entry["widgets_values"] = values[n.key]
        if n.color:
            entry["color"] = n.color
        if n.bgcolor:
            entry["bgcolor"] = n.bgcolor
        out_nodes.append(entry)

    return {
        # The folder's former name stays in the id's namespace so that the workflows keep their ids.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfyui-dragondiffusion/examples_workflows/{name}")),
        "revision": 0,
        "last_node_id": len(nodes),
        "last_link_id": len(links),
        "nodes": out_nodes,
        "links": links,
        "groups": groups,
        "config": {},
        "extra": {"ds": {"scale": 0.6, "offset": [40, 20]}},
        "version": 0.4,
    }


@dataclass
class Built:
    name: str
    workflow: dict
    example: Example


def build_all(object_info: dict, **sizes) -> dict[str, Built]:
    """Every example as a workflow; ``sizes``: catalogue.examples' sd_size / sd_steps."""
    return {e.name: Built(e.name, build_workflow(e.name, copy.deepcopy(e.nodes), object_info, e.note, e.groups), e)
            for e in examples(**sizes)}


def dump(workflow: dict) -> str:
    return json.dumps(workflow, indent=2, ensure_ascii=False) + "\n"

"""The public node table of docs/ARCHITECTURE.md (node id -> category, output types), parsed."""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import REPO_ROOT

ARCHITECTURE_MD = REPO_ROOT / "docs" / "ARCHITECTURE.md"


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    category: str
    outputs: tuple  # ComfyUI types, e.g. ("DRAGON_BANK", "LATENT"); "CONDITIONING (positive)" -> "CONDITIONING"


def documented_nodes() -> dict:
    """{node_id: NodeSpec} from the table under '## Node ids'. Raises if the table is missing or empty."""
    text = ARCHITECTURE_MD.read_text(encoding="utf-8")
    section = text.split("## Node ids", 1)
    if len(section) != 2:
        raise AssertionError(f"{ARCHITECTURE_MD}: no '## Node ids' section")
    nodes = {}
    for line in section[1].split("\n## ", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("id", "") or set(cells[0]) <= set("-: "):
            continue
        outputs = tuple(re.sub(r"\s*\(.*?\)", "", o).strip() for o in cells[2].split(","))
        nodes[cells[0]] = NodeSpec(cells[0], cells[1], outputs)
    if not nodes:
        raise AssertionError(f"{ARCHITECTURE_MD}: the node table is empty or unreadable")
    return nodes

"""The table of example_workflows/README.md, between its markers."""
from __future__ import annotations

from . import OUT_DIR
from .layout import Built


def readme_table(built: dict[str, Built], thumbnails: set[str]) -> str:
    """Markdown: one row per example (its SD-1.5 workflow and its demo twin), the thumbnail being the demo
    twin's real result (input | result); the SD-1.5 workflow's own card shows its edit request."""
    rows = ["| workflow | mode | what it shows | demo twin's result: input → result (the SD-1.5 card: its edit "
            "request) |", "|---|---|---|---|"]
    for name, b in built.items():
        e = b.example
        if e.demo:
            continue
        files = f"[{name}]({name}.json)<br>demo twin: [{e.twin}]({e.twin}.json)"
        thumb = f"![{e.twin}]({e.twin}.jpg)" if f"{e.twin}.jpg" in thumbnails else "(not rendered yet)"
        rows.append(f"| {files} | {e.mode} | {e.shows} | {thumb} |")
    return "\n".join(rows) + "\n"


README = OUT_DIR / "README.md"
TABLE_START, TABLE_END = "<!-- workflows-table:start -->", "<!-- workflows-table:end -->"


def update_readme(table: str) -> bool:
    """Put the table between the README's markers; False when the README has no markers."""
    if not README.is_file():
        return False
    text = README.read_text(encoding="utf-8")
    if TABLE_START not in text or TABLE_END not in text:
        return False
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    README.write_text(f"{head}{TABLE_START}\n{table}{TABLE_END}{tail}", encoding="utf-8")
    return True

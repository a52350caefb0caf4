"""Generate the example workflows in example_workflows/ from the compact descriptions of scripts/dragon_workflows/.

The workflows are the front end's workflow JSON, built from the node definitions the real server reports
(GET /object_info), so a node's widget order, its socket list and its output names always come from the node
itself; a description only names the widgets it sets. What each module of dragon_workflows does is listed in its
__init__.py.

Usage (from the checkout, with the venv of scripts/setup_env.sh):
    .venv/bin/python scripts/make_workflows.py                     # JSONs, input images, SD-1.5 request cards
    .venv/bin/python scripts/make_workflows.py --thumbnails        # ... and runs the demo twins for their cards
    .venv/bin/python scripts/make_workflows.py --thumbnails dragon_drag_demo   # ... only this twin's card
    .venv/bin/python scripts/make_workflows.py --check             # exit 1 when the files are not what would be generated
    .venv/bin/python scripts/make_workflows.py --object-info oi.json   # use a saved GET /object_info (no server)
    .venv/bin/python scripts/make_workflows.py --demo-addons ComfyUI/models
        # writes loras/dragon_demo_lora.safetensors and controlnet/dragon_demo_controlnet.safetensors: random (untrained)
        # add-ons shaped for the demo UNet, which the *_lora_demo / *_controlnet_demo twins load
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # dragon_workflows, also when run from another folder

from dragon_workflows import OUT_DIR  # noqa: E402
from dragon_workflows.addons import write_addons_in_subprocess, write_demo_addons  # noqa: E402
from dragon_workflows.bootstrap import import_comfy, start_server  # noqa: E402
from dragon_workflows.images import input_images  # noqa: E402
from dragon_workflows.layout import build_all, dump  # noqa: E402
from dragon_workflows.readme import README, readme_table, update_readme  # noqa: E402
from dragon_workflows.thumbnails import render_thumbnails, request_thumbnails  # noqa: E402


def expected_files(object_info: dict) -> dict[str, bytes]:
    built = build_all(object_info)
    files = {f"{name}.json": dump(b.workflow).encode() for name, b in built.items()}
    files.update({f"input/{k}": v for k, v in input_images().items()})
    files.update(request_thumbnails(built))
    return files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--object-info", help="a saved GET /object_info JSON (default: start a temporary server)")
    ap.add_argument("--server", help="URL of a running ComfyUI with this pack, to read /object_info from")
    ap.add_argument("--thumbnails", nargs="*", metavar="NAME",
                    help="run the demo twins (all, or the NAMEs given) and write their .jpg cards")
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    ap.add_argument("--demo-addons", metavar="MODELS_DIR",
                    help="only write the demo LoRA / ControlNet into MODELS_DIR/loras and MODELS_DIR/controlnet")
    ap.add_argument("--comfyui", metavar="DIR", help="the ComfyUI folder for --demo-addons (default: the current "
                    "folder when it is one, else the ComfyUI tree of this checkout's venv)")
    args = ap.parse_args(argv)

    if args.demo_addons:
        import_comfy(args.comfyui)
        for path in write_demo_addons(Path(args.demo_addons)):
            print(f"[make_workflows] wrote {path}")
        return 0

    server = None
    try:
        if args.object_info:
            object_info = json.loads(Path(args.object_info).read_text())
        elif args.server:
            import urllib.request

            with urllib.request.urlopen(args.server.rstrip("/") + "/object_info", timeout=60) as resp:
                object_info = json.load(resp)
        else:
            server = start_server()
            object_info = server.get_json("/object_info")

        files = expected_files(object_info)
        if args.check:
            stale = [rel for rel, data in files.items()
                     if not (OUT_DIR / rel).is_file() or (OUT_DIR / rel).read_bytes() != data]
            for rel in stale:
                print(f"[make_workflows] out of date: example_workflows/{rel}")
            return 1 if stale else 0

        (OUT_DIR / "input").mkdir(parents=True, exist_ok=True)
        for rel, data in files.items():
            (OUT_DIR / rel).write_bytes(data)
        print(f"[make_workflows] wrote {len(files)} files into {OUT_DIR}")

        if args.thumbnails is not None:
            if server is None:
                server = start_server()
            for src in (OUT_DIR / "input").glob("*.png"):
                shutil.copy(src, server.base_dir / "input" / src.name)
            write_addons_in_subprocess(server.base_dir / "models")
            built = build_all(object_info)
            only = set(args.thumbnails) or set(built)
            for rel, data in render_thumbnails({k: b for k, b in built.items() if k in only}, server).items():
                (OUT_DIR / rel).write_bytes(data)
        built = build_all(object_info)
        thumbs = {p.name for p in OUT_DIR.glob("*.jpg")}
        table = readme_table(built, thumbs)
        if update_readme(table):
            print(f"[make_workflows] updated the table in {README}")
        else:
            print("\n" + table)
    finally:
        if server is not None:
            server.stop()
    return 0




if __name__ == "__main__":
    sys.exit(main())

"""The example workflows' generator, by job (scripts/make_workflows.py is its command line):

- frontend_format: the front end's widget/socket rules and node sizes
- descriptions, catalogue, notes: what each shipped workflow contains, and the Note it opens with
- layout: a description as the front end's workflow JSON
- api_prompt: a workflow as an API prompt
- images, thumbnails, readme: the example images, the card images, the README table
- addons: the demo LoRA / ControlNet files
- bootstrap: the checkout's files, the ComfyUI tree, a temporary server
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = REPO_ROOT / "example_workflows"
INPUT_DIR = OUT_DIR / "input"

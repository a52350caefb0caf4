"""The README's main job: a real DragonDiffusion edit on the embedded demo model, on the CPU.

Runs the same nodes a ComfyUI graph would (DragonDemoModel -> VAEEncode -> DragonDDIMInversion ->
DragonEdit* -> DragonSampler -> VAEDecode) inside this process on the real ComfyUI host, and writes
before.png, after.png and compare.png (before | edit | after, enlarged) into --out.

    scripts/run_demo.sh                       # drag the red disc to the right
    scripts/run_demo.sh --mode move --steps 50 --out out/
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dragon_dev.bootstrap import in_process_pack  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

# Hand-made edits on the built-in "two objects" scene (red disc centred at (20, 24), blue square at (44, 42)).
EDITS = {
    "drag": {"node": "DragonEditDrag",
             "editor_json": {"points": [[20, 24, 34, 22]], "strokes": [[27, 24, 15, 1]]}},
    "move": {"node": "DragonEditMove", "dx": 16, "dy": -4, "scale": 1.0,
             "editor_json": {"boxes": [[10, 14, 20, 20]]}},
    "resize": {"node": "DragonEditMove", "dx": 4, "dy": 0, "scale": 1.3,
               "editor_json": {"boxes": [[10, 14, 20, 20]]}},
}


def main() -> None:
    ap = argparse.ArgumentParser(description="DragonDiffusion edit on the embedded demo model (CPU).")
    ap.add_argument("--mode", choices=sorted(EDITS), default="drag")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out")
    args = ap.parse_args()

    pack = in_process_pack(cpu=True)
    import nodes as comfy_nodes  # ComfyUI's own nodes.py (VAEEncode, VAEDecode)

    dragon = pack.NODE_CLASS_MAPPINGS
    spec = EDITS[args.mode]
    started = time.perf_counter()
    with torch.inference_mode():
        model, vae, positive, negative, image = dragon["DragonDemoModel"]().load("two objects")["result"]
        (latent,) = comfy_nodes.VAEEncode().encode(vae, image)
        bank, _ = dragon["DragonDDIMInversion"]().invert(model, latent, positive, args.steps)["result"]
        editor_json = json.dumps(spec["editor_json"])
        if spec["node"] == "DragonEditDrag":
            (edit,) = dragon["DragonEditDrag"]().build(image, editor_json)
        else:
            (edit,) = dragon["DragonEditMove"]().build(image, spec["dx"], spec["dy"], spec["scale"], editor_json)
        (edited,) = dragon["DragonSampler"]().sample(model, positive, negative, bank, edit, args.seed, 4.0)
        (result,) = comfy_nodes.VAEDecode().decode(vae, edited)
    seconds = time.perf_counter() - started

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    before, after = to_pil(image), to_pil(result)
    before.save(out / "before.png")
    after.save(out / "after.png")
    contact_sheet(before, after, spec).save(out / "compare.png")
    print(f"{args.mode} edit on the embedded demo model, {args.steps} steps, {seconds:.1f} s on the CPU")
    print(f"memory bank: {bank.describe()}")
    for name in ("before.png", "after.png", "compare.png"):
        print(f"wrote {(out / name).resolve()}")


def to_pil(image: torch.Tensor) -> Image.Image:
    array = (image[0].clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array)


def contact_sheet(before: Image.Image, after: Image.Image, spec: dict, zoom: int = 4) -> Image.Image:
    """before | the edit drawn on before | after, enlarged so a person can see a 64-px scene."""
    w, h = before.size
    big = [im.resize((w * zoom, h * zoom), Image.NEAREST) for im in (before, before, after)]
    overlay = ImageDraw.Draw(big[1], "RGBA")
    edit = spec["editor_json"]
    for x, y, bw, bh in edit.get("boxes", []):
        overlay.rectangle([x * zoom, y * zoom, (x + bw) * zoom, (y + bh) * zoom], outline=(255, 255, 255, 255), width=2)
        if "dx" in spec:
            cx, cy = (x + bw / 2) * zoom, (y + bh / 2) * zoom
            arrow(overlay, cx, cy, cx + spec["dx"] * zoom, cy + spec["dy"] * zoom)
    for x, y, r, paint in edit.get("strokes", []):
        if paint:
            overlay.ellipse([(x - r) * zoom, (y - r) * zoom, (x + r) * zoom, (y + r) * zoom], fill=(80, 160, 255, 70))
    for hx, hy, tx, ty in edit.get("points", []):
        arrow(overlay, hx * zoom, hy * zoom, tx * zoom, ty * zoom)
    sheet = Image.new("RGB", (3 * w * zoom + 2 * 8, h * zoom), (255, 255, 255))
    for k, im in enumerate(big):
        sheet.paste(im, (k * (w * zoom + 8), 0))
    return sheet


def arrow(draw: ImageDraw.ImageDraw, x0: float, y0: float, x1: float, y1: float) -> None:
    draw.line([x0, y0, x1, y1], fill=(255, 255, 255, 255), width=3)
    draw.ellipse([x0 - 5, y0 - 5, x0 + 5, y0 + 5], fill=(230, 40, 40, 255))
    draw.ellipse([x1 - 5, y1 - 5, x1 + 5, y1 + 5], fill=(40, 120, 230, 255))


if __name__ == "__main__":
    main()

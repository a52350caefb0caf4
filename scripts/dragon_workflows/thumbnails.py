"""The .jpg card image next to each workflow, which the Templates browser shows: a demo twin's card is its own
result, run on a server; an SD-1.5 workflow's card is its edit request (edit_request.py), since its checkpoint
cannot be had here."""
from __future__ import annotations

import io

from .api_prompt import to_api
from .descriptions import DEMO_SIZE, SD_SIZE
from .edit_request import edit_request, request_thumbnail
from .images import render
from .layout import Built


def thumbnail(panels: list, reference=None) -> bytes:
    """JPEG: input | result (each 64 px panel upscaled to 256), the reference image inset bottom-left for
    appearance / paste."""
    import numpy as np
    from PIL import Image, ImageDraw

    side = 256
    canvas = Image.new("RGB", (2 * side + 16, side), (24, 24, 28))
    for i, panel in enumerate(panels):
        img = Image.fromarray(np.clip(panel * 255 + 0.5, 0, 255).astype("uint8")).resize((side, side), Image.NEAREST)
        canvas.paste(img, (i * (side + 16), 0))
    draw = ImageDraw.Draw(canvas)
    draw.polygon([(side + 2, side // 2 - 7), (side + 14, side // 2), (side + 2, side // 2 + 7)], fill=(240, 240, 240))
    if reference is not None:  # bottom-left: the example scenes keep that corner free
        inset = Image.fromarray(np.clip(reference * 255 + 0.5, 0, 255).astype("uint8")).resize((80, 80), Image.NEAREST)
        draw.rectangle([4, side - 104, 88, side - 4], fill=(250, 250, 250))
        canvas.paste(inset, (6, side - 86))
        draw.text((8, side - 102), "reference", fill=(20, 20, 20))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def request_thumbnails(built: dict[str, Built]) -> dict[str, bytes]:
    """name.jpg -> bytes of each SD-1.5 workflow's edit-request card (no server needed)."""
    out = {}
    for name, b in built.items():
        if b.example.demo:
            continue
        e = b.example
        reference = render(e.reference_scene, SD_SIZE) if e.reference_scene else None
        out[f"{name}.jpg"] = request_thumbnail(edit_request(e), render(e.base_scene, SD_SIZE), reference)
    return out


def render_thumbnails(built: dict[str, Built], server) -> dict[str, bytes]:
    """Runs each demo twin on ``server`` (its API prompt from to_api) and returns name.jpg -> bytes of its
    card: input | result."""
    import numpy as np
    from PIL import Image

    object_info = server.get_json("/object_info")
    out = {}
    for name, b in built.items():
        if not b.example.demo:
            continue
        prompt = to_api(b.workflow, object_info)
        entry = server.wait_history(server.post_prompt(prompt), timeout=1200)
        save_id = next(str(n["id"]) for n in b.workflow["nodes"] if n["type"] == "SaveImage")
        image = entry["outputs"][save_id]["images"][0]
        status, raw = server.request("GET", "/view?filename={filename}&subfolder={subfolder}&type={type}".format(**image))
        if status != 200:
            raise RuntimeError(f"GET /view for {name}: HTTP {status}")
        result = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=np.float32) / 255.0
        reference = render(b.example.reference_scene, DEMO_SIZE) if b.example.reference_scene else None
        jpg = thumbnail([render(b.example.base_scene, DEMO_SIZE), result], reference)
        out[f"{name}.jpg"] = jpg
        print(f"[make_workflows] rendered {name}", flush=True)
    return out

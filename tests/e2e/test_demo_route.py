"""The demo example route the editor uses before a first run (nodes/demo_nodes.py: register_example_route)."""
import io
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
from PIL import Image


def _get(server, path):
    try:
        with urllib.request.urlopen(server.url + path, timeout=30) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read()


def test_route_serves_each_example_as_png_and_refuses_other_names(comfy_server, dragon_pack):
    import importlib

    synthetic = importlib.import_module("dragon_pack.demo.synthetic")
    for name in synthetic.example_scenes():
        status, kind, body = _get(comfy_server, "/dragondiffusion/demo_example?" + urllib.parse.urlencode({"name": name}))
        assert status == 200 and kind == "image/png", (name, status, body[:200])
        image = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
        expected = (synthetic.render_scene(synthetic.example_scenes()[name]).image * 255).round().astype(np.uint8)
        assert np.array_equal(image, expected), name
    for hostile in ("../../etc/passwd", "", "two objects.png"):
        status, _, body = _get(comfy_server, "/dragondiffusion/demo_example?" + urllib.parse.urlencode({"name": hostile}))
        assert status == 404 and b"unknown example" in body, (hostile, status)

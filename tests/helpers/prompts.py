"""API-format prompts on the embedded demo model, and the client side of running them on a ComfyServer.

The demo graph (node ids are readable names; ComfyUI takes any string id):

    model: DragonDemoModel -> encode: VAEEncode(example_image) -> invert: DragonDDIMInversion
    edit: DragonEditDrag(example_image)  -> sampler: DragonSampler -> decode: VAEDecode -> save: SaveImage

Helpers: ``demo_edit_prompt`` (mutate a copy per case), ``demo_guider_prompt`` (the same edit through
DragonGuider and SamplerCustomAdvanced), ``evict_prompt`` (a prompt sharing only the model node,
so ComfyUI's classic cache drops every other output and the next demo prompt recomputes from scratch),
``run_prompt`` / ``execution_error`` / ``image_arrays`` (history and /view), ``WebSocketLog`` (the /ws messages
of one client id, time-stamped on arrival), and ``to_uint8`` (SaveImage's float -> 8-bit conversion).
"""
from __future__ import annotations

import asyncio
import copy
import io
import json
import threading
import time
import urllib.parse
import uuid
from typing import Any

import numpy as np

DEMO_EXAMPLE = "two objects"  # red disc centred at (20, 24), blue square at (44, 42), 64x64
DRAG_JSON = {"points": [[20, 24, 34, 22]], "strokes": [[27, 24, 15, 1]]}


def demo_edit_prompt(steps: int = 3, seed: int = 0, cfg: float = 4.0, editor_json: Any = None,
                     prefix: str = "dragon_e2e", example: str = DEMO_EXAMPLE) -> dict:
    """A valid drag edit of the demo scene, ending in SaveImage (fresh dicts each call: mutate freely)."""
    editor = json.dumps(DRAG_JSON if editor_json is None else editor_json)
    return {
        "model": {"class_type": "DragonDemoModel", "inputs": {"example": example}},
        "encode": {"class_type": "VAEEncode", "inputs": {"pixels": ["model", 4], "vae": ["model", 1]}},
        "invert": {"class_type": "DragonDDIMInversion",
                   "inputs": {"model": ["model", 0], "latent": ["encode", 0], "positive": ["model", 2],
                              "steps": steps}},
        "edit": {"class_type": "DragonEditDrag", "inputs": {"image": ["model", 4], "editor_json": editor}},
        "sampler": {"class_type": "DragonSampler",
                    "inputs": {"model": ["model", 0], "positive": ["model", 2], "negative": ["model", 3],
                               "memory_bank": ["invert", 0], "edit": ["edit", 0], "seed": seed, "cfg": cfg}},
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["sampler", 0], "vae": ["model", 1]}},
        "save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": prefix}},
    }


def demo_guider_prompt(steps: int = 3, sampler_name: str = "ddim", noise: str = "DisableNoise",
                       prefix: str = "dragon_guider", **kwargs) -> dict:
    """The demo drag edit through DragonGuider under the stock SamplerCustomAdvanced: DragonBankSigmas,
    DragonStartLatent, ``noise`` (DisableNoise or RandomNoise) and KSamplerSelect's ``sampler_name``."""
    p = demo_edit_prompt(steps, prefix=prefix, **kwargs)
    p["guider"] = {"class_type": "DragonGuider", "inputs": {k: v for k, v in p["sampler"]["inputs"].items()
                                                            if k != "seed"}}
    p["start"] = {"class_type": "DragonStartLatent",
                  "inputs": {"model": ["model", 0], "memory_bank": ["invert", 0], "edit": ["edit", 0]}}
    p["sigmas"] = {"class_type": "DragonBankSigmas", "inputs": {"memory_bank": ["invert", 0]}}
    p["noise"] = {"class_type": noise, "inputs": {"noise_seed": 0} if noise == "RandomNoise" else {}}
    p["ksampler"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": sampler_name}}
    p["sampler"] = {"class_type": "SamplerCustomAdvanced",
                    "inputs": {"noise": ["noise", 0], "guider": ["guider", 0], "sampler": ["ksampler", 0],
                               "sigmas": ["sigmas", 0], "latent_image": ["start", 0]}}
    return p


def evict_prompt(example: str = DEMO_EXAMPLE) -> dict:
    """Only the demo model node and a preview of its example image: running it makes ComfyUI's classic cache
    forget every other node's output (the inversion, the edit, the sampler ...)."""
    return {
        "model": {"class_type": "DragonDemoModel", "inputs": {"example": example}},
        "preview": {"class_type": "PreviewImage", "inputs": {"images": ["model", 4]}},
    }


def post(server, prompt: dict, client_id: str | None = None) -> tuple[int, dict]:
    """POST /prompt without raising: (HTTP status, JSON body)."""
    status, raw = server.request("POST", "/prompt", {"prompt": prompt, "client_id": client_id or uuid.uuid4().hex})
    return status, json.loads(raw)


def run_prompt(server, prompt: dict, timeout: float = 180.0, client_id: str | None = None) -> tuple[dict, float]:
    """Queue a prompt that must pass validation and wait for its history entry; (entry, seconds)."""
    start = time.monotonic()
    status, body = post(server, prompt, client_id)
    assert status == 200, f"POST /prompt -> {status}: {json.dumps(body)[:3000]}"
    entry = server.wait_history(body["prompt_id"], timeout=timeout, expect_success=False)
    return entry, time.monotonic() - start


def messages(entry: dict, kind: str) -> list[dict]:
    return [m[1] for m in (entry.get("status") or {}).get("messages", []) if m and m[0] == kind]


def execution_error(entry: dict) -> dict | None:
    found = messages(entry, "execution_error")
    return found[0] if found else None


def assert_success(entry: dict) -> None:
    status = entry.get("status") or {}
    assert status.get("status_str") == "success", json.dumps(messages(entry, "execution_error"))[:3000]


def cached_nodes(entry: dict) -> list[str]:
    found = messages(entry, "execution_cached")
    return list(found[0]["nodes"]) if found else []


def saved_images(entry: dict, node_id: str = "save") -> list[dict]:
    return entry["outputs"][node_id]["images"]


def view_bytes(server, image: dict) -> bytes:
    query = urllib.parse.urlencode({"filename": image["filename"], "subfolder": image.get("subfolder", ""),
                                    "type": image.get("type", "output")})
    status, raw = server.request("GET", f"/view?{query}")
    assert status == 200, f"GET /view?{query} -> {status}"
    return raw


def png_array(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.array(img.convert("RGB"))


def image_arrays(server, entry: dict, node_id: str = "save") -> tuple[list[bytes], list[np.ndarray]]:
    raw = [view_bytes(server, image) for image in saved_images(entry, node_id)]
    return raw, [png_array(r) for r in raw]


def to_uint8(images) -> list[np.ndarray]:
    """ComfyUI's SaveImage conversion of an IMAGE batch [B, H, W, C] in [0, 1]."""
    return [np.clip(255.0 * i.cpu().numpy(), 0, 255).astype(np.uint8) for i in images]


class WebSocketLog:
    """Collects the /ws messages of one client id in a background thread: ``events`` is a list of
    (monotonic arrival time, type, data). Use as a context manager; ``wait_for(predicate, timeout)``."""

    def __init__(self, server, client_id: str | None = None):
        self.url = server.url.replace("http://", "ws://") + "/ws"
        self.client_id = client_id or uuid.uuid4().hex
        self.events: list[tuple[float, str, dict]] = []
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="comfy-ws", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> "WebSocketLog":
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"no websocket connection to {self.url}: {self._error!r}")
        if self._error is not None:
            raise RuntimeError(f"websocket to {self.url} failed: {self._error!r}")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._listen())
        except BaseException as exc:  # reported by __enter__ / wait_for
            self._error = exc
            self._ready.set()

    async def _listen(self) -> None:
        import aiohttp

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{self.url}?clientId={self.client_id}", heartbeat=20) as ws:
                self._ready.set()
                stop = asyncio.ensure_future(self._stop.wait())
                while not self._stop.is_set():
                    receive = asyncio.ensure_future(ws.receive())
                    done, _ = await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if receive not in done:
                        receive.cancel()
                        break
                    msg = receive.result()
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        data = json.loads(msg.data)
                        with self._cond:
                            self.events.append((time.monotonic(), data.get("type"), data.get("data") or {}))
                            self._cond.notify_all()
                    elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break

    def wait_for(self, predicate, timeout: float) -> tuple[float, str, dict]:
        """The first event (time, type, data) with predicate(type, data) true; AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for event in self.events[seen:]:
                    if predicate(event[1], event[2]):
                        return event
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0 or self._error is not None:
                    raise AssertionError(f"no matching websocket message within {timeout:.0f} s "
                                         f"({self._error!r}); last: {self.events[-5:]}")
                self._cond.wait(min(left, 0.5))

    def progress(self, prompt_id: str, node: str) -> list[tuple[float, int, int]]:
        """(time, value, max) of the 'progress' messages of one node of one prompt."""
        with self._cond:
            return [(t, d["value"], d["max"]) for t, kind, d in self.events
                    if kind == "progress" and d.get("prompt_id") == prompt_id and d.get("node") == node]


def copy_prompt(prompt: dict) -> dict:
    return copy.deepcopy(prompt)

"""Where the browser tests' screenshots go (test-artifacts/): one file name per test, front end and renderer.

The browser tests run twice per front end (1.32.9 and the newest) and some twice per node renderer (classic and
Vue). A name without those would let the last parametrization overwrite the others' pictures, the failing one
among them, so every name carries them: ``<stem>-<front end>[-<renderer>][-<other parameters>].png``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Optional

from dragon_dev import ARTIFACTS_DIR

from .browser import PINNED_FRONT_END

# Test modules that run on several front ends parametrize the comfy_server fixture by front-end version
# (tests/e2e/test_editor.py); the others use the session server, which serves the pinned one.
FRONT_END_PARAM = "comfy_server"
RENDERER_PARAM = "renderer"


def artifact_name(stem: str, params: Mapping[str, Any], suffix: str = ".png") -> str:
    """``<stem>-<front end>[-<renderer>][-<other parameter values>]<suffix>``, safe as a file name."""
    parts = [stem, str(params.get(FRONT_END_PARAM, PINNED_FRONT_END))]
    if RENDERER_PARAM in params:
        parts.append(str(params[RENDERER_PARAM]))
    parts += [str(v) for k, v in params.items() if k not in (FRONT_END_PARAM, RENDERER_PARAM)]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts)) + suffix


def artifact_path(item: Any, stem: Optional[str] = None, folder: Path = ARTIFACTS_DIR) -> Path:
    """The file for a pytest item's screenshot: ``stem`` (default: the test function's name) plus the item's
    front end, renderer and other parameters."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return folder / artifact_name(stem or item.originalname, params)


def call_failed(item: Any) -> bool:
    """Whether the test body failed (tests/conftest.py's report hook stores the report as ``rep_call``)."""
    report = getattr(item, "rep_call", None)
    return report is not None and bool(report.failed)


def save_screenshot(page: Any, item: Any, folder: Path = ARTIFACTS_DIR) -> Optional[Path]:
    """The whole page into ``artifact_path(item)``; None when the page cannot take one (it is gone)."""
    path = artifact_path(item, folder=folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path))
    except Exception:  # a screenshot is evidence for a failure, never a failure of its own
        return None
    return path

"""Screenshot names in test-artifacts/ (dragon_test_helpers.artifacts): the two front ends and the two renderers
of one test never write the same file, on the failure path (comfy_page's screenshot) as on the explicit one."""
from __future__ import annotations

import types
from pathlib import Path

from dragon_test_helpers.artifacts import artifact_name, artifact_path, call_failed, save_screenshot
from dragon_test_helpers.browser import FRONT_ENDS, PINNED_FRONT_END


class FakePage:
    """What save_screenshot uses of a playwright Page: screenshot(path=...) writes a file."""

    def __init__(self, fail: bool = False):
        self.fail = fail

    def screenshot(self, path):
        if self.fail:
            raise RuntimeError("Target page, context or browser has been closed")
        with open(path, "wb") as f:
            f.write(b"\x89PNG fake")


def item(params=None, failed=None, name="test_paste_editor"):
    """A pytest item as the fixtures see it: originalname, callspec.params (parametrized only), rep_call."""
    node = types.SimpleNamespace(originalname=name)
    if params is not None:
        node.callspec = types.SimpleNamespace(params=params)
    if failed is not None:
        node.rep_call = types.SimpleNamespace(failed=failed)
    return node


def test_each_front_end_and_renderer_of_a_failed_test_gets_its_own_screenshot(tmp_path):
    paths = []
    for front_end in FRONT_ENDS:
        for renderer in ("classic", "vue"):
            failing = item({"comfy_server": front_end, "renderer": renderer}, failed=True)
            assert call_failed(failing)
            paths.append(save_screenshot(FakePage(), failing, folder=tmp_path))
    assert len(set(paths)) == 4 and all(p is not None and p.is_file() for p in paths), paths
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    newest = [f for f in FRONT_ENDS if f != PINNED_FRONT_END][0]
    assert tmp_path / f"test_paste_editor-{newest}-vue.png" in paths


def test_names_carry_the_front_end_renderer_and_other_parameters():
    assert artifact_name("editor_paste", {"comfy_server": "1.58.1", "renderer": "vue"}) == "editor_paste-1.58.1-vue.png"
    # the renderer comes right after the front end whatever the parameters' order; other values follow, made safe
    assert (artifact_name("template", {"name": "a b/c.json", "renderer": "classic", "comfy_server": "1.32.9"})
            == "template-1.32.9-classic-a_b_c.json.png")
    # a test on the session server (not parametrized by front end) runs on the pinned front end
    assert artifact_path(item(), folder=Path("x")) == Path("x") / f"test_paste_editor-{PINNED_FRONT_END}.png"
    assert artifact_path(item({"comfy_server": "1.58.1"}), "shot").name == "shot-1.58.1.png"


def test_a_passing_test_or_a_closed_page_leaves_no_screenshot(tmp_path):
    assert not call_failed(item({"comfy_server": PINNED_FRONT_END}, failed=False))
    assert not call_failed(item({"comfy_server": PINNED_FRONT_END}))  # the body never ran (set-up failed)
    assert save_screenshot(FakePage(fail=True), item({"comfy_server": PINNED_FRONT_END}), folder=tmp_path) is None
    assert list(tmp_path.iterdir()) == []

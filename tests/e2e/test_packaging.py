"""The pack as the Comfy Registry packs it: comfy-cli's own `comfy node pack` (PyPI comfy-cli, pinned in
requirements-dev.txt) on a git repository holding this checkout's tracked files, offline.

The registry's archive holds git-tracked files as plain files: a symlink to a folder becomes an empty folder entry.
So the templates must live in the real folder example_workflows/ (examples_workflows/ is only a link to it), and
the archive unpacked into a ComfyUI's custom_nodes/ must load the nodes and list every workflow as a template.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dragon_test_helpers import PACK_FOLDER_NAME, REPO_ROOT
from dragon_dev.server_process import ComfyServer

WORKFLOWS = REPO_ROOT / "example_workflows"
COMFY_CLI = Path(sys.executable).with_name("comfy")
DEAD_PROXY = "http://127.0.0.1:9"  # any request the tool made would fail: the packing must not need one


def _copy_tracked_files(target: Path) -> None:
    """The checkout's git-tracked files as they are on disk now (edits not yet committed included), links kept
    as links."""
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z"], check=True, capture_output=True)
    for rel in filter(None, listed.stdout.decode().split("\0")):
        src, dst = REPO_ROOT / rel, target / rel
        if not os.path.lexists(src):  # deleted in the work tree, not yet in the index
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=pack test", "-c", "user.email=pack@test.invalid",
                    *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> zipfile.ZipFile:
    assert COMFY_CLI.is_file(), f"{COMFY_CLI} missing: pip install -r requirements-dev.txt (comfy-cli)"
    repo = tmp_path_factory.mktemp("registry_clone") / PACK_FOLDER_NAME
    repo.mkdir()
    _copy_tracked_files(repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "snapshot")
    home = repo.parent / "home"
    env = dict(os.environ, HOME=str(home), DO_NOT_TRACK="1", http_proxy=DEAD_PROXY, https_proxy=DEAD_PROXY,
               HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY, NO_PROXY="", no_proxy="")
    done = subprocess.run([str(COMFY_CLI), "--skip-prompt", "node", "pack"], cwd=repo, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(repo / "node.zip") as packed:
        yield packed


def _files(packed: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    return {info.filename: info for info in packed.infolist() if not info.is_dir()}


def test_the_archive_holds_every_template_as_a_real_file(archive):
    files = _files(archive)
    shipped = sorted(p.relative_to(REPO_ROOT).as_posix() for p in WORKFLOWS.rglob("*") if p.is_file())
    assert any(name.endswith(".json") for name in shipped) and any("/input/" in name for name in shipped)
    for rel in shipped:
        assert rel in files, f"{rel} is not in the registry archive"
        assert archive.read(rel) == (REPO_ROOT / rel).read_bytes(), rel
    # The design card's name survives only as what the packer makes of a link: nothing under it.
    assert not [name for name in files if name.startswith("examples_workflows/")]


def test_the_archive_holds_the_front_end_and_the_code(archive):
    files = _files(archive)
    web = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "web").rglob("*") if p.is_file())
    assert "web/dragon_editor.js" in web
    assert set(web) <= set(files), sorted(set(web) - set(files))
    for rel in ("__init__.py", "pyproject.toml", "LICENSE", "requirements.txt", "nodes/__init__.py",
                "dragon_core/__init__.py", "demo/weights/dragon_demo.safetensors"):
        assert rel in files, rel


def test_the_unpacked_archive_loads_and_lists_its_templates(archive, tmp_path):
    """A user's install from the registry: the archive unpacked as custom_nodes/<pack>, on the real server."""
    pack_dir = tmp_path / "unpacked" / PACK_FOLDER_NAME
    archive.extractall(pack_dir)
    server = ComfyServer(tmp_path / "base", pack_dir=pack_dir)
    try:
        server.start(timeout=150)
        listed = server.get_json("/workflow_templates").get(PACK_FOLDER_NAME, [])
        assert sorted(listed) == sorted(p.stem for p in WORKFLOWS.glob("*.json")), listed
        name = sorted(listed)[0]
        status, body = server.request("GET", f"/api/workflow_templates/{PACK_FOLDER_NAME}/{name}.jpg")
        assert status == 200 and body == (WORKFLOWS / f"{name}.jpg").read_bytes()
        object_info = server.get_json("/object_info")
        assert {"DragonDemoModel", "DragonEditDrag", "DragonSampler"} <= set(object_info)
    finally:
        server.stop()

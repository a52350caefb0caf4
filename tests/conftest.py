"""Shared pytest harness: the real ComfyUI 0.3.75 host in-process and as a server, the pack, a tiny model,
and a headless browser on ComfyUI's front end.

Import rules (pytest runs with --import-mode=importlib):
- The repository root is never on sys.path: the pack's ``nodes/`` would shadow ComfyUI's top-level ``nodes.py``
  (the tree also has top-level ``utils``, ``app``, ``server``, ``execution``, ``folder_paths``, ``tests``).
- ``import dragon_core`` gives repo/dragon_core as a top-level package, without ComfyUI (tests/core).
- ``import dragon_dev`` gives scripts/dragon_dev (the bootstrap, tiny models, the server process), shared with
  scripts and benchmarks; ``import dragon_test_helpers`` gives tests/helpers (prompts, browser helpers).
- The pack itself, with ComfyUI, is the ``dragon_pack`` fixture: ``dragon_pack.NODE_CLASS_MAPPINGS``,
  ``importlib.import_module("dragon_pack.nodes.sampling_nodes")``. Inside it, dragon_core is
  ``dragon_pack.dragon_core`` (a different module object from the top-level ``dragon_core``: compare classes
  from the same one).
"""
from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# `python -m pytest` run from the checkout puts the current directory first on sys.path: take it out.
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != str(REPO_ROOT.resolve())]
# scripts/ holds the one bootstrap (scripts/dragon_dev); none of its names is one of ComfyUI's.
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from dragon_dev import bootstrap  # noqa: E402

bootstrap.load_module("dragon_core/__init__.py", "dragon_core", package=True)
bootstrap.load_module("tests/helpers/__init__.py", "dragon_test_helpers", package=True)

from dragon_test_helpers.browser import attach_log, chromium_problem, launch_chromium, open_comfy  # noqa: E402
from dragon_dev.server_process import ComfyServer  # noqa: E402


def pytest_report_header(config):
    try:
        tree = bootstrap.comfy_tree()
        version = {}
        exec((tree / "comfyui_version.py").read_text(), version)
        return f"ComfyUI host: {version.get('__version__')} at {tree}"
    except Exception as exc:  # shown, and the fixtures fail with the same message
        return f"ComfyUI host: NOT FOUND ({exc})"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)  # lets fixtures see whether the test failed
    return report


def pytest_collection_modifyitems(session, config, items):
    """The checkout root holds the pack's __init__.py, so pytest makes it a Package and would import that file
    (as a module named after the folder, without ComfyUI) before the first test. It is ComfyUI's entry point,
    imported by the dragon_pack fixture only: skip pytest's import of it."""
    for item in items:
        for node in item.listchain():
            if isinstance(node, pytest.Package) and Path(node.path) == REPO_ROOT:
                node.setup = lambda: None
                return


# -- in-process ComfyUI ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def comfy_host(tmp_path_factory):
    """The real ComfyUI in this process, CPU only, writing below a session temp dir.

    Returns a namespace: tree (Path of the ComfyUI tree), base_directory, args (comfy.cli_args.args),
    device (torch device), folder_paths (the module)."""
    return bootstrap.setup_host(tmp_path_factory.mktemp("comfy_host"))


@pytest.fixture(scope="session")
def dragon_pack(comfy_host):
    """The pack imported as ComfyUI imports it (its __init__.py), under the package name ``dragon_pack``."""
    return bootstrap.load_pack("dragon_pack")


@pytest.fixture
def tiny_model(comfy_host):
    """A fresh tiny SD-1.5-like model (ModelPatcher, seeded weights) with matching inputs. Namespace:
    model (MODEL), positive / negative (CONDITIONING [[tensor(1, 8, 64), {}]]), latent (LATENT 16x16 zeros,
    i.e. a 128x128 image), context_dim, seed. Build variants with dragon_dev.tiny_model."""
    from dragon_dev import tiny_model as tm

    return types.SimpleNamespace(
        model=tm.build_tiny_model(seed=0),
        positive=tm.conditioning(seed=1),
        negative=tm.conditioning(seed=2),
        latent=tm.empty_latent(16, 16),
        context_dim=tm.TINY_CONTEXT_DIM,
        seed=0,
    )


# -- ComfyUI server -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory):
    """One real ComfyUI server per test session, on a free loopback port, with this checkout linked as
    custom_nodes/comfyui-dragondiffusion in a temporary --base-directory. A ComfyServer: url, base_dir,
    post_prompt(prompt) -> prompt_id, wait_history(prompt_id, timeout) -> entry, get_json(path),
    request(method, path, body), log_text(). Stopped (process group terminated, then killed) at the end;
    its log is copied to test-artifacts/comfy_server.log."""
    server = ComfyServer(tmp_path_factory.mktemp("comfy_server"))
    try:
        server.start(timeout=150)
        yield server
    finally:
        server.stop()
        server.save_log()


# -- browser --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    """A playwright Browser on headless Debian chromium. Fails (never skips) when chromium is missing."""
    problem = chromium_problem()
    if problem:
        pytest.fail(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = launch_chromium(playwright)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def comfy_page(request, browser, comfy_server):
    """ComfyUI's front end loaded from ``comfy_server`` in a fresh browser context, ``window.app`` ready, the
    Templates dialog closed. Namespace: page (playwright Page), log (PageLog: console, page_errors,
    failed_requests, responses), server, artifact(stem) (a test-artifacts/ path named after the test, its front end
    and renderer). A screenshot of a failed test goes to test-artifacts/ under such a name."""
    from dragon_test_helpers.artifacts import artifact_path, call_failed, save_screenshot

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    log = attach_log(page)
    try:
        try:
            open_comfy(page, comfy_server.url)
        except Exception as exc:
            save_screenshot(page, request.node)
            raise AssertionError(f"ComfyUI's front end did not load: {exc}\npage errors: {log.page_errors}\n"
                                 f"console: {log.console[-20:]}") from exc
        yield types.SimpleNamespace(page=page, log=log, server=comfy_server,
                                    artifact=lambda stem=None: artifact_path(request.node, stem))
        if call_failed(request.node):
            save_screenshot(page, request.node)
    finally:
        context.close()

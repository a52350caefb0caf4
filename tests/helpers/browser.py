"""Headless Debian chromium (never a downloaded browser) driven by python playwright, and ComfyUI's page."""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
MISSING_CHROMIUM = (f"{CHROMIUM} is missing: the browser tests need Debian's chromium; "
                    "run scripts/setup_env.sh --browser (or scripts/run_tests.sh, which does)")


# The front ends the browser tests run on: the one pinned with ComfyUI 0.3.75 (served from the venv's
# comfyui-frontend-package) and the newest release, which scripts/setup_env.sh --browser installs with
# `pip install --target <venv>/frontends/<version>` and the server serves through --front-end-root.
PINNED_FRONT_END = "1.32.9"


def _newest_front_end() -> str:
    """The pin in scripts/setup_env.sh (NEWEST_FRONT_END="x.y.z"), the one place it is written."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "setup_env.sh"
    match = re.search(r'^NEWEST_FRONT_END="([0-9.]+)"', script.read_text(encoding="utf-8"), re.MULTILINE)
    if not match:
        raise RuntimeError(f"no NEWEST_FRONT_END pin in {script}")
    return match.group(1)


NEWEST_FRONT_END = _newest_front_end()
FRONT_ENDS = (PINNED_FRONT_END, NEWEST_FRONT_END)


def front_end_root(version: str) -> Path | None:
    """The --front-end-root for `version` (None: the pinned one, served by default)."""
    if version == PINNED_FRONT_END:
        return None
    return Path(sys.prefix) / "frontends" / version / "comfyui_frontend_package" / "static"


def front_end_problem(version: str) -> str | None:
    root = front_end_root(version)
    if root is None or (root / "index.html").is_file():
        return None
    return (f"front end {version} is missing at {root}: run scripts/setup_env.sh --browser "
            f"(it installs comfyui-frontend-package=={version} there)")


# Recorded in the page for every console warning or error: the text and the JavaScript stack it was raised
# from, so that a test can tell warnings raised from the pack's own scripts from the front end's.
CONSOLE_STACKS_SCRIPT = """(() => {
  const seen = (window.__consoleStacks = []);
  for (const kind of ["warn", "error"]) {
    const original = console[kind].bind(console);
    console[kind] = (...args) => {
      try { seen.push({ kind, text: args.map(String).join(" "), stack: new Error().stack || "" }); } catch {}
      return original(...args);
    };
  }
})();"""


def chromium_problem() -> str | None:
    """None when the browser tests can run, else what is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        return MISSING_CHROMIUM
    return None


def launch_chromium(playwright):
    """A playwright Browser on Debian chromium. Playwright gives each launch a fresh temporary
    --user-data-dir, so no profile, cache or setting survives between test sessions."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@dataclass
class PageLog:
    """What a page reported while a test used it."""
    console: list = field(default_factory=list)        # (type, text, url of the script that logged it)
    page_errors: list = field(default_factory=list)    # uncaught exceptions: str
    failed_requests: list = field(default_factory=list)  # (url, failure or HTTP status)
    responses: dict = field(default_factory=dict)      # url -> HTTP status

    def errors_mentioning(self, *needles: str) -> list:
        """Console errors, uncaught exceptions and failed requests whose text or source contains a needle."""
        found = []
        for kind, text, url in self.console:
            if kind == "error" and any(n in text or n in (url or "") for n in needles):
                found.append(f"console.error: {text} ({url})")
        found += [f"uncaught: {e}" for e in self.page_errors if any(n in e for n in needles)]
        found += [f"request failed: {u} ({why})" for u, why in self.failed_requests if any(n in u for n in needles)]
        return found


def attach_log(page) -> PageLog:
    log = PageLog()
    page.add_init_script(CONSOLE_STACKS_SCRIPT)
    page.on("console", lambda m: log.console.append((m.type, m.text, (m.location or {}).get("url", ""))))
    page.on("pageerror", lambda e: log.page_errors.append(f"{e.name}: {e.message}\n{e.stack or ''}"))
    page.on("requestfailed", lambda r: log.failed_requests.append((r.url, r.failure)))

    def on_response(resp):
        log.responses[resp.url] = resp.status
        if resp.status >= 400:
            log.failed_requests.append((resp.url, f"HTTP {resp.status}"))

    page.on("response", on_response)
    return log


def open_comfy(page, url: str, timeout_ms: int = 90_000) -> None:
    """Load ComfyUI's front end, wait until ``window.app`` has its graph and the node definitions, and
    close the first-visit Templates dialog (Escape)."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_function(
        "() => !!(window.app && window.app.graph && window.LiteGraph"
        " && Object.keys(window.LiteGraph.registered_node_types || {}).length > 0)",
        timeout=timeout_ms,
    )
    page.keyboard.press("Escape")


def console_from(page, needle: str) -> list[str]:
    """Console warnings and errors whose call stack passes through a script whose URL contains `needle`."""
    entries = page.evaluate("() => window.__consoleStacks || []")
    return [f"console.{e['kind']}: {e['text']}\n{e['stack']}" for e in entries if needle in e["stack"]]

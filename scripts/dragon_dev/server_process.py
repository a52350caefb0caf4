"""The real ComfyUI server in a child process, with the pack linked into a temporary --base-directory."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from . import ARTIFACTS_DIR, PACK_FOLDER_NAME, REPO_ROOT
from .bootstrap import comfy_tree

LAUNCHER = Path(__file__).with_name("launch_comfy.py")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child (Linux): get SIGKILL when the test process dies, even if it is killed outright."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except Exception:
        pass


class ServerError(RuntimeError):
    pass


class ComfyServer:
    """One ComfyUI server process.

    ``base_dir`` gets custom_nodes/<PACK_FOLDER_NAME> (a symlink to ``pack_dir``), input/, output/, models/,
    user/ (the sqlite database), and the server log ``comfyui.log``."""

    def __init__(self, base_dir: str | os.PathLike, pack_dir: str | os.PathLike = REPO_ROOT,
                 python: str = sys.executable, port: int | None = None, extra_args: tuple = ()):
        self.base_dir = Path(base_dir)
        self.pack_dir = Path(pack_dir)
        self.python = python
        self.port = port or free_port()
        self.extra_args = tuple(extra_args)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base_dir / "comfyui.log"
        self.pack_link = self.base_dir / "custom_nodes" / PACK_FOLDER_NAME
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    # -- life cycle -------------------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> "ComfyServer":
        for sub in ("custom_nodes", "input", "output", "models", "user"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        if not self.pack_link.exists():
            self.pack_link.symlink_to(self.pack_dir, target_is_directory=True)
        cmd = [
            self.python, str(LAUNCHER), str(comfy_tree()),
            "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(self.base_dir),
            "--database-url", f"sqlite:///{self.base_dir}/user/comfyui.db",
            "--disable-api-nodes",
            *self.extra_args,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd, cwd=self.base_dir, env=env, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise ServerError(f"ComfyUI exited with code {code} during start-up.\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/object_info", timeout=10) as resp:
                    if resp.status == 200:
                        json.load(resp)
                        return
            except (urllib.error.URLError, ConnectionError, OSError, ValueError) as exc:
                last_error = repr(exc)
            time.sleep(0.3)
        raise ServerError(f"ComfyUI did not answer GET /object_info within {timeout:.0f} s "
                          f"({last_error}).\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the whole process group; kill it after ``grace`` seconds. Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is not None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
                if proc.poll() is not None:
                    break
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                except subprocess.TimeoutExpired:
                    continue
            # children that outlived the leader (same group) get no second chance
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the server (the launcher runs ComfyUI's main.py in its own process, not a child)."""
        return None if self.proc is None else self.proc.pid

    def rss_bytes(self) -> int:
        """Resident memory of the server process right now (psutil), for leak checks across prompts."""
        import psutil

        if not self.running:
            raise ServerError("the server is not running")
        return psutil.Process(self.proc.pid).memory_info().rss

    def save_log(self, name: str = "comfy_server.log") -> Path | None:
        """Copy the server log to test-artifacts/ (kept after the temporary folder is gone)."""
        if not self.log_path.exists():
            return None
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        target = ARTIFACTS_DIR / name
        shutil.copyfile(self.log_path, target)
        return target

    # -- logs -------------------------------------------------------------------------------------------
    def log_text(self) -> str:
        if self._log_file is not None:
            self._log_file.flush()
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)

    # -- HTTP -------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 30.0):
        """(status, raw bytes) of one request; HTTP errors are returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get_json(self, path: str, timeout: float = 30.0):
        status, raw = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise ServerError(f"GET {path} -> HTTP {status}: {raw[:2000]!r}")
        return json.loads(raw)

    def post_prompt(self, prompt: dict, client_id: str | None = None) -> str:
        """Queue an API-format prompt ({node_id: {"class_type": ..., "inputs": {...}}}); return its prompt_id.
        A prompt that fails validation raises ServerError with the server's explanation."""
        status, raw = self.request("POST", "/prompt", {"prompt": prompt, "client_id": client_id or uuid.uuid4().hex})
        if status != 200:
            raise ServerError(f"POST /prompt -> HTTP {status}: {raw.decode(errors='replace')[:4000]}")
        return json.loads(raw)["prompt_id"]

    def wait_history(self, prompt_id: str, timeout: float = 120.0, expect_success: bool = True) -> dict:
        """Poll GET /history/{prompt_id} until the prompt finished; return its history entry
        ({"prompt": ..., "outputs": {node_id: {...}}, "status": {"status_str": ..., "messages": [...]}}).
        With ``expect_success`` a prompt that ended in an error raises ServerError with the error message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f"ComfyUI died while running prompt {prompt_id}.\n{self.log_tail()}")
            history = self.get_json(f"/history/{prompt_id}")
            entry = history.get(prompt_id)
            if entry is not None:  # an entry appears once the prompt has finished, successfully or not
                status = entry.get("status") or {}
                if expect_success and status.get("status_str") != "success":
                    errors = [m for m in status.get("messages", []) if m and m[0] == "execution_error"]
                    raise ServerError(f"prompt {prompt_id} ended with status {status.get('status_str')!r}: "
                                      f"{json.dumps(errors, indent=1)[:4000]}")
                return entry
            time.sleep(0.25)
        raise ServerError(f"prompt {prompt_id} not finished after {timeout:.0f} s.\n{self.log_tail()}")

"""Helpers for the demo page browser tests.

`DemoServer` runs a real `livesrv serve --demo` subprocess and can restart it on
the same ports and data directory. `Bystander` is a plain protocol client (no
browser) used to act in a room while the page is looking. `PageErrors` collects a
page's script errors; `dismiss_toasts` and `clean` ready a page for a screenshot.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

SUBPROTOCOL = "livesrv.v1.json"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIME_SCALE = float(os.environ.get("LIVESRV_TEST_TIME_SCALE", "1"))
START_TIMEOUT = 45.0 * TIME_SCALE

_WS_RE = re.compile(r"(wss?://[^\s\"']+/ws)\b")
_HTTP_RE = re.compile(r"(https?://[^\s\"'/]+)/?(?:\s|$)")


def chromium_path() -> str | None:
    """Debian's chromium, or whatever LIVESRV_CHROMIUM points at."""
    explicit = os.environ.get("LIVESRV_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def livesrv_command() -> list[str]:
    """The installed console script, else the package run as a module."""
    script = shutil.which("livesrv")
    if script:
        return [script]
    return [sys.executable, "-m", "livesrv"]


class DemoServer:
    """A `livesrv serve --demo` subprocess on loopback, restartable in place."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[str] | None = None
        self.ws_url = ""
        self.http_url = ""
        self.output: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def ws_port(self) -> int:
        return urlsplit(self.ws_url).port or 0

    @property
    def http_port(self) -> int:
        return urlsplit(self.http_url).port or 0

    def start(self, *, same_ports: bool = False) -> None:
        """Start the server; with `same_ports`, on the ports of the previous run."""
        ws_port = self.ws_port if same_ports else 0
        http_port = self.http_port if same_ports else 0
        cmd = [
            *livesrv_command(),
            "serve",
            "--demo",
            "--host",
            "127.0.0.1",
            "--port",
            str(ws_port),
            "--http-port",
            str(http_port),
            "--data-dir",
            str(self.data_dir),
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        ws_url = http_url = ""
        deadline = time.monotonic() + START_TIMEOUT
        lines: list[str] = []
        assert self.proc.stdout is not None
        while not (ws_url and http_url):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("livesrv did not print its URLs in time:\n" + "".join(lines))
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"livesrv exited with {self.proc.returncode}:\n" + "".join(lines)
                    )
                continue
            lines.append(line)
            if not ws_url and (m := _WS_RE.search(line)):
                ws_url = m.group(1)
            elif not http_url and (m := _HTTP_RE.search(line)):
                http_url = m.group(1)
        self.output.extend(lines)
        self.ws_url, self.http_url = ws_url, http_url
        self._reader = threading.Thread(target=self._drain, args=(self.proc,), daemon=True)
        self._reader.start()
        self.wait_healthy()

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line)

    def wait_healthy(self) -> None:
        """Wait until the page's config answers (the HTTP app is up)."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{self.http_url}/client.json", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the demo page never became reachable")
            time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait; SIGKILL the process group if it hangs."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout * TIME_SCALE)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        self.proc = None
        return proc.returncode

    def log_tail(self, n: int = 60) -> str:
        return "".join(self.output[-n:])


def demo_login(http_url: str, user: str, role: str) -> dict[str, Any]:
    """POST /demo/login and return its JSON body."""
    req = urllib.request.Request(
        f"{http_url}/demo/login",
        data=json.dumps({"user": user, "role": role}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        body: dict[str, Any] = json.loads(r.read())
        return body


class Bystander:
    """A protocol client without a browser: logs in, joins, chats."""

    def __init__(self, server: DemoServer, user: str, role: str = "viewer") -> None:
        self.token = demo_login(server.http_url, user, role)["token"]
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(
                server.ws_url,
                subprotocols=[Subprotocol(SUBPROTOCOL)],
                open_timeout=10,
                close_timeout=2,
            )
        )
        self.next_id = 0
        self.hello = self.call("hello", token=self.token)

    def messages(self) -> Iterator[dict[str, Any]]:
        while True:
            frame = json.loads(self.ws.recv(timeout=10))
            yield from frame if isinstance(frame, list) else [frame]

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one request and return its reply, skipping events."""
        self.next_id += 1
        rid = f"b{self.next_id}"
        self.ws.send(json.dumps({"id": rid, "op": op, **args}))
        for message in self.messages():
            if message.get("id") == rid:
                return message
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._stack.close()


def number(text: str) -> int:
    """'1,318' -> 1318."""
    return int(re.sub(r"[^\d]", "", text) or "0")


class PageErrors:
    """Uncaught page errors and console errors, to fail on broken scripts."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text}")

    def script_errors(self) -> list[str]:
        # A WebSocket refused while the server restarts is expected, not a bug.
        expected = ("WebSocket", "ERR_CONNECTION_REFUSED")
        return [e for e in self.errors if not any(x in e for x in expected)]


def dismiss_toasts(page: Page) -> None:
    """Close the open toasts (for a clean screenshot)."""
    close = page.get_by_role("button", name="Dismiss message")
    for _ in range(10):
        if not close.count():
            return
        with contextlib.suppress(PlaywrightTimeoutError):  # it may go away by itself
            close.first.click(timeout=2000)


def clean(page: Page, show: Locator) -> None:
    """Ready for a screenshot: no toasts, no focus, `show` in view."""
    dismiss_toasts(page)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    show.evaluate("(e) => e.scrollIntoView({block: 'center'})")

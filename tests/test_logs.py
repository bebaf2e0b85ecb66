"""What ``livesrv serve`` writes to stderr: a start-up line, an access line per admin HTTP
request and per WebSocket connection, in text or as one JSON object per line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from livesrv import __version__, logs
from livesrv.wire import tokens
from tests.client import Client
from tests.conftest import SECRET, livesrv_cmd
from tests.timing import scaled


class Serve:
    """``livesrv serve`` with its stderr kept in a file, to be read line by line."""

    def __init__(self, tmp: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.err_path = tmp / "stderr.log"
        self.err = self.err_path.open("w")
        self.proc = subprocess.Popen(
            livesrv_cmd(
                "serve",
                "--data-dir",
                str(tmp / "data"),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--http-port",
                "0",
                *extra,
            ),  # fmt: skip
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
            env={**os.environ, "LIVESRV_SECRET": SECRET, **(env or {})},
        )
        assert self.proc.stdout is not None
        self.ws_url = self.proc.stdout.readline().strip()
        self.http_url = self.proc.stdout.readline().strip()
        assert self.ws_url.startswith("ws://") and self.http_url.startswith("http://"), (
            self.ws_url,
            self.err_path.read_text(),
        )

    def lines(self) -> list[str]:
        return self.err_path.read_text().splitlines()

    async def wait_for(self, probe: Callable[[list[str]], bool], timeout: float = 15) -> None:
        async with asyncio.timeout(scaled(timeout)):
            while not probe(self.lines()):
                await asyncio.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(scaled(30))
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self.err.close()
        return code


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    started: list[Serve] = []

    def start(*extra: str, env: dict[str, str] | None = None) -> Serve:
        s = Serve(tmp_path, *extra, env=env)
        started.append(s)
        return s

    yield start
    for s in started:
        if not s.err.closed:
            s.stop()


async def traffic(s: Serve, user: str) -> None:
    """One admin request that works, one that is refused, one WebSocket session."""
    async with aiohttp.ClientSession() as http:
        async with http.get(s.http_url + "/healthz") as resp:
            assert resp.status == 200
        async with http.get(s.http_url + "/api/audit") as resp:  # no token
            assert resp.status == 401
    c = await Client.open(s.ws_url)
    await c.ok("hello", token=tokens.issue(SECRET, user, "viewer", 600))
    await c.close()


async def test_json_logs_one_object_per_line(serve: Callable[..., Serve]) -> None:
    s = serve(env={"LIVESRV_LOG_FORMAT": "json"})
    await traffic(s, "lg_json")
    await s.wait_for(lambda lines: any('"ws close' in ln for ln in lines))
    assert s.stop() == 0
    records = [json.loads(line) for line in s.lines()]  # every line is one JSON object
    for r in records:
        assert {"ts", "level", "logger", "msg"} <= r.keys(), r
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", r["ts"]), r
    start = records[0]
    assert start["level"] == "INFO" and start["logger"] == "livesrv"
    assert start["version"] == __version__
    assert (start["ws_url"], start["http_url"]) == (s.ws_url, s.http_url)
    # the policy in force: auto on the embedded store (no replica) is master
    assert start["workers"] == 1 and start["durability"].startswith("master (a reply once")
    assert start["store"].startswith("embedded in ")
    assert s.ws_url in start["msg"] and s.http_url in start["msg"]

    access = [r for r in records if r["logger"] == "livesrv.access"]
    http = [(r["method"], r["path"], r["status"]) for r in access if "method" in r]
    assert http == [("GET", "/healthz", 200), ("GET", "/api/audit", 401)]
    assert all(isinstance(r["ms"], float) and r["ms"] >= 0 for r in access if "ms" in r)
    opened = [r for r in access if r["msg"].startswith("ws open")]
    closed = [r for r in access if r["msg"].startswith("ws close")]
    assert len(opened) == 1 and len(closed) == 1
    assert closed[0]["user"] == "lg_json" and closed[0]["close_code"] == 1000
    assert 0 <= closed[0]["seconds"] < scaled(30)
    assert closed[0]["peer"] == opened[0]["peer"]
    assert records[-1]["msg"] == "shutting down"


TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) [\w.]+: .+")


async def test_text_logs_and_the_flag_wins(serve: Callable[..., Serve]) -> None:
    s = serve("--log-format", "text", env={"LIVESRV_LOG_FORMAT": "json"})
    await traffic(s, "lg_text")
    await s.wait_for(lambda lines: any(" ws close " in ln for ln in lines))
    assert s.stop() == 0
    lines = s.lines()
    assert all(TEXT_LINE.fullmatch(ln) for ln in lines), lines
    assert f"INFO livesrv: livesrv {__version__} serving {s.ws_url} and {s.http_url}" in lines[0]
    assert "1 worker(s); durability master (a reply once the master applied" in lines[0]
    assert re.search(r"; settling in its own process \(pid \d+\)$", lines[0]), lines[0]
    assert any(re.search(r"livesrv\.access: GET /healthz 200 \d+\.\d ms$", ln) for ln in lines)
    assert any(re.search(r"livesrv\.access: GET /api/audit 401 \d+\.\d ms$", ln) for ln in lines)
    ws_close = re.compile(
        r"livesrv\.access: ws close 127\.0\.0\.1:\d+ user=lg_text [\d.]+ s code 1000$"
    )
    assert any(ws_close.search(ln) for ln in lines)


async def test_a_client_protocol_error_is_its_close_code_not_an_error(
    serve: Callable[..., Serve],
) -> None:
    # an oversize frame is the client's fault: its connection closes 1009 and the access
    # line says so; the server logs no ERROR for it
    s = serve("--log-format", "text")
    c = await Client.open(s.ws_url)
    await c.ok("hello", token=tokens.issue(SECRET, "lg_big", "viewer", 600))
    await c.send_raw(json.dumps({"id": 2, "op": "chat", "room": "r", "text": "x" * 70_000}))
    assert await c.closed() == 1009
    await s.wait_for(lambda lines: any(" ws close " in ln for ln in lines))
    assert s.stop() == 0
    lines = s.lines()
    assert any(
        re.search(r"ws close 127\.0\.0\.1:\d+ user=lg_big [\d.]+ s code 1009$", ln) for ln in lines
    )
    assert not [ln for ln in lines if " ERROR " in ln]
    # one access line per event: the WebSocket library's own connection lines stay out
    assert not [ln for ln in lines if "livesrv.ws:" in ln or "picows" in ln]


def test_an_unknown_log_format_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "LIVESRV_SECRET": SECRET, "LIVESRV_LOG_FORMAT": "xml"}
    cmd = livesrv_cmd("serve", "--data-dir", str(tmp_path / "d"), "--port", "0")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=scaled(30))
    assert done.returncode == 2
    assert "LIVESRV_LOG_FORMAT" in done.stderr and "xml" in done.stderr
    assert done.stdout == ""  # nothing was served


def test_an_error_record_carries_its_exception() -> None:
    """Errors logged with their exception (an op that failed unexpectedly, an admin request
    that raised) keep the traceback: in JSON as the ``exc`` field."""
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs.setup("INFO", "json", out)
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("livesrv.realtime.session").exception("op %s failed", "gift")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    record: dict[str, Any] = json.loads(out.getvalue())
    assert record["level"] == "ERROR" and record["msg"] == "op gift failed"
    assert "RuntimeError: boom" in record["exc"] and "Traceback" in record["exc"]

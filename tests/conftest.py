"""Fixtures: a real embedded store per session, in-process servers, real clients, and
``livesrv serve`` subprocesses for crash tests. Every test starts from an empty store."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import redis

from livesrv import audit
from livesrv.realtime.node import Node
from livesrv.services import receipts
from livesrv.settings import Settings
from livesrv.store.embedded import EmbeddedStore
from livesrv.wire import tokens
from tests.client import JSON, Client
from tests.timing import scaled

SECRET = "test-secret-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="session")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis-protocol server: LIVESRV_TEST_REDIS_URL, or the embedded one."""
    external = os.environ.get("LIVESRV_TEST_REDIS_URL")
    if external:
        yield external
        return
    store = EmbeddedStore(tmp_path_factory.mktemp("store"))
    store.start()
    try:
        yield store.url
    finally:
        store.stop()


@pytest.fixture
def flushed(store_url: str) -> str:
    client = redis.Redis.from_url(store_url)
    client.flushall()
    client.close()
    return store_url


@dataclass
class Running:
    node: Node
    settings: Settings
    clients: list[Client] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.node.ws_url

    @property
    def http_url(self) -> str:
        return self.node.http_url

    @property
    def backend(self) -> Any:
        return self.node.backend

    def token(self, user: str, role: str = "viewer", ttl: int = 3600) -> str:
        return tokens.issue(SECRET, user, role, ttl)

    def receipt(self, user: str, package: str, rid: str, issued: int | None = None) -> str:
        """A receipt for ``rid`` the server accepts, as the payment backend signs it."""
        return receipts.sign(self.node.receipt_key, user, package, rid, issued)

    async def raw(self, codec: str = JSON, **kw: Any) -> Client:
        c = await Client.open(self.ws_url, codec, **kw)
        self.clients.append(c)
        return c

    async def connect(self, user: str, role: str = "viewer", codec: str = JSON) -> Client:
        """A connection that has said hello as ``user``."""
        c = await self.raw(codec)
        await c.ok("hello", token=self.token(user, role))
        return c

    async def grant(self, user: str, coins: int, key: str | None = None) -> int:
        from livesrv.services import wallet

        r = await wallet.grant(self.backend, user, coins, key or f"test-{user}-{coins}", "test")
        return int(r["coins"])

    async def audit(self) -> dict[str, Any]:
        await self.settle()
        return await audit.run(self.backend)

    async def settle(self, timeout: float = 10) -> None:
        """Wait until the settlement worker has caught up."""
        async with asyncio.timeout(scaled(timeout)):
            while await self.node.worker.backlog():
                await asyncio.sleep(0.02)


ServerFactory = Callable[..., Awaitable[Running]]


def node_settings(data_dir: Path, redis_url: str, **overrides: Any) -> Settings:
    """The settings every in-process test node starts from (ports picked by the kernel, the
    test secret, no hold, a short tick), with ``overrides`` applied."""
    base = replace(
        Settings(),
        host="127.0.0.1",
        port=0,
        http_port=0,
        data_dir=data_dir,
        redis_url=redis_url,
        secret=SECRET,
        hold_seconds=0,
        tick_ms=20,
    )
    return replace(base, **overrides)


class Nodes:
    """In-process nodes a test started; :meth:`close` closes their clients, then stops them."""

    def __init__(self) -> None:
        self.running: list[Running] = []

    async def start(self, data_dir: Path, redis_url: str, **overrides: Any) -> Running:
        settings = node_settings(data_dir, redis_url, **overrides)
        node = Node(settings, redis_url, secret=SECRET)
        await node.start()
        r = Running(node, settings)
        self.running.append(r)
        return r

    async def close(self) -> None:
        for r in self.running:
            for c in r.clients:
                await c.close()
        for r in self.running:
            await r.node.stop()


@pytest.fixture
async def make_server(flushed: str, tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Start in-process nodes on port 0 against the test store; stopped after the test."""
    nodes = Nodes()

    async def start(**overrides: Any) -> Running:
        return await nodes.start(tmp_path / "data", flushed, **overrides)

    yield start
    await nodes.close()


@pytest.fixture
async def server(make_server: ServerFactory) -> Running:
    return await make_server()


# -- livesrv serve as a real process ------------------------------------------------------


@dataclass
class ServeProcess:
    proc: subprocess.Popen[str]
    ws_url: str
    http_url: str
    data_dir: Path

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(scaled(timeout))


def livesrv_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "livesrv", *args]


def start_serve(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> ServeProcess:
    """Run ``livesrv serve`` and read its two URL lines."""
    proc = subprocess.Popen(
        livesrv_cmd("serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "LIVESRV_SECRET": SECRET, "LIVESRV_TICK_MS": "20", **(env or {})},
    )
    assert proc.stdout is not None
    ws = proc.stdout.readline().strip()
    http = proc.stdout.readline().strip()
    if not re.match(r"^ws://.+/ws$", ws) or not http.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"serve did not start: {ws!r} {http!r}")
    return ServeProcess(proc, ws, http, data_dir)


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(*extra: str, data_dir: Path | None = None, **kw: Any) -> ServeProcess:
        p = start_serve(
            data_dir or tmp_path / "serve-data", "--port", "0", "--http-port", "0", *extra, **kw
        )
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.signal(signal.SIGTERM)
            try:
                p.proc.wait(20)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
        if p.proc.stdout is not None:
            p.proc.stdout.close()  # else a ResourceWarning fails whichever test collects it


# the demo page's browser fixtures (its own server each module: see tests/browser_fixtures.py)
from tests.browser_fixtures import (  # noqa: E402, F401
    browser,
    open_page,
    playwright,
    shots,
    uid,
)

# the cluster fixtures (a 3-master local cluster, nodes on it); imported last: they use the above
from tests.cluster_fixtures import (  # noqa: E402, F401
    cluster_nodes,
    cluster_serve,
    cluster_urls,
    local_cluster,
)

# the failover fixtures (3 masters + 3 replicas for one module, nodes on its current masters)
from tests.failover_fixtures import (  # noqa: E402, F401
    failover_cluster,
    failover_nodes,
    failover_ready,
)

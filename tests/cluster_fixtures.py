"""Fixtures for tests on a real local Valkey Cluster: one 3-master cluster per session,
flushed before each test that uses it; in-process livesrv nodes each pointed at a
different master; ``livesrv serve`` subprocesses pointed at a master (for kill tests).

Imported by tests/conftest.py, so every test module can ask for these fixtures by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from livesrv.store.local_cluster import LocalCluster
from tests.conftest import Nodes, Running, ServeProcess, start_serve
from tests.timing import scaled

MASTERS = 3

ClusterNodes = Callable[..., Awaitable[list[Running]]]
ClusterServe = Callable[..., ServeProcess]


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real 3-master cluster (no replicas) of the embedded server binary, for the session."""
    c = LocalCluster(tmp_path_factory.mktemp("cluster"), masters=MASTERS)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def flush_masters(cluster: LocalCluster) -> None:
    """Empty every master (keys, scripts stay loaded; nothing else is shared)."""
    for url in cluster.urls:
        client = redis.Redis.from_url(url)
        try:
            client.flushall()
        finally:
            client.close()


@pytest.fixture
def cluster_urls(local_cluster: LocalCluster) -> list[str]:
    """The master URLs of the session cluster, every master flushed first."""
    local_cluster.wait_ok(scaled(15))
    flush_masters(local_cluster)
    return list(local_cluster.urls)


@pytest.fixture
async def cluster_nodes(cluster_urls: list[str], tmp_path: Path) -> AsyncIterator[ClusterNodes]:
    """``await cluster_nodes(n=3, **settings)``: n in-process livesrv nodes, node i pointed
    at master ``i % 3`` (``redis_url`` is that master alone: the node discovers the rest);
    every node is stopped after the test."""
    nodes = Nodes()

    async def start(n: int = MASTERS, **overrides: Any) -> list[Running]:
        out = []
        for i in range(n):
            data_dir = tmp_path / f"node{len(nodes.running)}"
            url = cluster_urls[i % len(cluster_urls)]
            out.append(await nodes.start(data_dir, url, **overrides))
        return out

    yield start
    await nodes.close()


@pytest.fixture
def cluster_serve(cluster_urls: list[str], tmp_path: Path) -> Iterator[ClusterServe]:
    """``cluster_serve(i, *extra, env=...)``: a ``livesrv serve`` subprocess on port 0 with
    ``--redis-url`` the i-th master (its own data dir); stopped (SIGTERM, then SIGKILL) after
    the test unless the test killed it."""
    started: list[ServeProcess] = []

    def start(master: int, *extra: str, env: dict[str, str] | None = None) -> ServeProcess:
        url = cluster_urls[master % len(cluster_urls)]
        data_dir = tmp_path / f"serve{len(started)}"
        p = start_serve(
            data_dir,
            "--port",
            "0",
            "--http-port",
            "0",
            "--redis-url",
            url,
            *extra,
            env={"LIVESRV_REDIS_URL": url, **(env or {})},
        )
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.signal(signal.SIGTERM)
            try:
                p.proc.wait(scaled(20))
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
        if p.proc.stdout is not None:
            p.proc.stdout.close()


def clean_env() -> dict[str, str]:
    """The environment without LIVESRV_* settings (a CLI run must use only its flags)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LIVESRV_")}

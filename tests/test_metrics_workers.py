"""``/metrics`` under ``serve --workers 2`` reports the whole process group: the counters
equal the sum of what clients did on both workers, whichever worker answers the scrape."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp

from livesrv.wire import tokens
from tests.client import Client
from tests.conftest import SECRET, ServeProcess
from tests.timing import scaled

Serve = Callable[..., ServeProcess]
SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def parse(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, for every sample line."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


async def scrape(http_url: str) -> dict[str, float]:
    """One scrape on a new TCP connection, so the kernel may hand it to either worker."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(http_url + "/metrics") as resp,
    ):
        assert resp.status == 200
        return parse(await resp.text())


def per_worker(sample: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in sample.items() if k.startswith('livesrv_worker_connections{pid="')}


async def test_metrics_sum_over_both_workers(serve_process: Serve, tmp_path: Path) -> None:
    data = tmp_path / "mw-data"
    stale = data / "metrics" / f"run-{(1 << 22) + 1}"  # above any pid: a run long gone
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"left by a serve that was killed")
    p = serve_process("--workers", "2", "--hold-seconds", "0", data_dir=data)
    assert not stale.exists()  # cleaned at start
    clients: list[Client] = []
    wallets = 0
    try:
        # Connections land on both workers (SO_REUSEPORT): open them until each worker
        # holds some, as its per-worker gauge says.
        async with asyncio.timeout(scaled(60)):
            while True:
                for _ in range(8):
                    i = len(clients)
                    c = await Client.open(p.ws_url)
                    clients.append(c)
                    token = tokens.issue(SECRET, f"mw_user{i}", "viewer", 600)
                    await c.ok("hello", token=token)
                    for _ in range(i % 3 + 1):
                        await c.ok("wallet")
                        wallets += 1
                    assert await c.error("join", room=f"mw_nowhere{i}") == "not_found"
                workers = per_worker(await scrape(p.http_url))
                if len(workers) == 2 and all(v > 0 for v in workers.values()):
                    break
                assert len(clients) < 200, workers
                await asyncio.sleep(0.2)

        n = len(clients)
        want = {
            'livesrv_ops_total{op="hello",result="ok"}': n,
            'livesrv_ops_total{op="wallet",result="ok"}': wallets,
            'livesrv_ops_total{op="join",result="not_found"}': n,
            "livesrv_connections": n,
        }
        # Every scrape, on whichever worker, shows the sums (each on its own connection).
        for _ in range(8):
            sample = await scrape(p.http_url)
            assert {k: sample.get(k) for k in want} == want
            assert sum(per_worker(sample).values()) == n

        for c in clients:
            await c.close()
        clients.clear()
        async with asyncio.timeout(scaled(20)):  # closed connections leave the live gauge
            while (await scrape(p.http_url)).get("livesrv_connections") != 0:
                await asyncio.sleep(0.1)
        after = await scrape(p.http_url)
        assert after['livesrv_ops_total{op="hello",result="ok"}'] == n  # counters stay
    finally:
        for c in clients:
            await c.close()
    p.signal(signal.SIGTERM)
    assert p.wait() == 0
    assert not list((p.data_dir / "metrics").iterdir())  # the run's directory is removed

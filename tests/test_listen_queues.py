"""Several listening sockets on the WebSocket port (``LIVESRV_LISTEN_QUEUES``): a connect
storm that arrives while the event loop is busy waits in every one of their accept queues,
not in SYN retries; and a port another serve already listens on is still refused."""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from livesrv.realtime import listeners
from livesrv.realtime.listeners import listening_sockets
from tests.conftest import SECRET, ServeProcess, ServerFactory, livesrv_cmd, scaled
from tests.raw_ws import RawWS

STORM = 200  # connections opened while the node cannot accept: far more than its queues hold


def connect_while_blocked(port: int, count: int) -> int:
    """Open ``count`` connections to ``port`` without yielding to the event loop (so the node
    in it accepts none of them); return how many the kernel completed within half a second
    (a SYN the kernel dropped is sent again only after a second, so none of those counts)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        connected: set[socket.socket] = set()
        deadline = time.monotonic() + scaled(0.5)
        while time.monotonic() < deadline:
            _, writable, _ = select.select([], [s for s in socks if s not in connected], [], 0.05)
            for s in writable:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    connected.add(s)
        return len(connected)
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("queues", [1, 4])
async def test_a_storm_waits_in_every_listen_queue(make_server: ServerFactory, queues: int) -> None:
    backlog = 2  # Linux queues backlog + 1 connections on a listening socket
    server = await make_server(listen_backlog=backlog, listen_queues=queues)
    port = urlsplit(server.ws_url).port
    assert port is not None
    held = connect_while_blocked(port, STORM)
    assert held == queues * (backlog + 1)
    # the node serves on once its loop runs again
    c = await server.connect("lq_viewer")
    assert (await c.ok("wallet"))["coins"] == 0


def listening_on(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4, this machine's /proc/net/tcp)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1
        for row in rows
        if int(row.split()[1].split(":")[1], 16) == port and row.split()[3] == "0A"
    )


@pytest.mark.parametrize(("first", "second"), [("1", "2"), ("2", "1")])
async def test_a_served_port_is_refused_to_a_second_serve(
    serve_process: Callable[..., ServeProcess], tmp_path: Path, first: str, second: str
) -> None:
    p = serve_process("--workers", first, env={"LIVESRV_LISTEN_QUEUES": "3"})
    port = urlsplit(p.ws_url).port
    assert port is not None
    assert listening_on(port) == 3 * int(first)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESRV_")}
    r = await asyncio.to_thread(
        subprocess.run,
        livesrv_cmd(
            "serve",
            "--data-dir",
            str(tmp_path / "second"),
            "--port",
            str(port),
            "--http-port",
            "0",
            "--workers",
            second,
        ),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        env={**env, "LIVESRV_SECRET": SECRET, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    assert r.returncode == 2, r.stderr
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in r.stderr
    assert "Traceback" not in r.stderr
    assert listening_on(port) == 3 * int(first)  # the first serve's sockets, nobody else's


def test_an_address_that_cannot_be_bound_is_named() -> None:
    with pytest.raises(OSError) as raised:
        listening_sockets("192.0.2.1", 0, 2, 8)  # TEST-NET-1: no interface here has it
    assert raised.value.errno == errno.EADDRNOTAVAIL
    assert "('192.0.2.1', 0)" in str(raised.value)


def test_an_address_of_a_missing_family_is_skipped_beside_one_that_binds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # as with IPv6 turned off: a name resolves to an address no interface has, and to one
    unusable = (socket.AF_INET, ("192.0.2.1", 0))
    usable = (socket.AF_INET, ("127.0.0.1", 0))
    monkeypatch.setattr(listeners, "addresses", lambda host, port: [unusable, usable])
    socks = listening_sockets("either", 0, 3, 8)
    try:
        assert len(socks) == 3
        assert {s.getsockname()[0] for s in socks} == {"127.0.0.1"}
        assert len({s.getsockname()[1] for s in socks}) == 1  # one port for all of them
    finally:
        for s in socks:
            s.close()


async def test_an_ipv6_host_is_served_and_its_urls_bracketed(make_server: ServerFactory) -> None:
    server = await make_server(host="::1")
    assert server.ws_url == f"ws://[::1]:{server.node.ws_port}/ws"
    assert server.node.http_url == f"http://[::1]:{server.node.http_port}"
    c = await server.connect("lq_v6_viewer")  # the client opens the URL the node printed
    assert (await c.ok("wallet"))["coins"] == 0


async def test_a_stopping_node_takes_no_new_connection_on_any_queue(
    make_server: ServerFactory,
) -> None:
    server = await make_server(listen_queues=4)
    port = urlsplit(server.ws_url).port
    assert port is not None
    lingering = await RawWS.open(server)  # never answers the close: stop() waits for it

    async def refused() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except (ConnectionRefusedError, ConnectionResetError):  # reset: queued as it closed
            return True
        writer.close()
        return False

    stopping = asyncio.create_task(server.node.stop())
    async with asyncio.timeout(scaled(1)):
        while not await refused():
            await asyncio.sleep(0.01)
    assert not stopping.done()  # still waiting on the lingering client's close
    # every queue is closed, not one: the kernel spreads connects over all of them
    assert [await refused() for _ in range(16)] == [True] * 16
    await stopping
    lingering.writer.close()

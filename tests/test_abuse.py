"""Abuse over the wire: HTTP timeouts and connection caps, the WebSocket connection budget
and Origin allow-list, bounded per-user state, self-gifting, identifier look-alikes, the
demo routes without ``--demo``, and the bearer scheme's case."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from websockets.exceptions import InvalidStatus
from yarl import URL

from tests.client import Client
from tests.conftest import SECRET, Running, ServerFactory
from tests.timing import scaled

# A trailing newline, a NUL, a right-to-left override and Cyrillic look-alikes ("о", "а").
BAD_IDS = ["studio\n", "stu\x00dio", "studio\u202e", "studi\u043e", "\u0430lice"]


# -- raw HTTP helpers --------------------------------------------------------------------


async def tcp(server: Running) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = URL(server.http_url)
    assert url.host is not None and url.port is not None
    return await asyncio.open_connection(url.host, url.port)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (within ``timeout``)."""
    data = b""
    async with asyncio.timeout(scaled(timeout)):
        while chunk := await reader.read(65536):
            data += chunk
    return data


async def http_get(server: Running, path: str) -> bytes:
    """One raw ``GET`` on its own connection; the whole answer."""
    reader, writer = await tcp(server)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        return await read_until_closed(reader, 10)
    finally:
        writer.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- the admin HTTP port ---------------------------------------------------------------


async def test_slowloris_closed_within_header_timeout(make_server: ServerFactory) -> None:
    server = await make_server(http_header_timeout=1.0, http_keepalive_timeout=60.0)
    conns = [await tcp(server) for _ in range(50)]
    started = time.monotonic()
    for _, writer in conns:
        writer.write(b"GET /heal")  # half a request line, and nothing more
    answers = await asyncio.gather(*(read_until_closed(r, 10) for r, _ in conns))
    took = time.monotonic() - started
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[0]
    assert took < scaled(5), took
    # ... while a client that sends its request in time is served
    assert (await http_get(server, "/healthz")).startswith(b"HTTP/1.1 200")
    for _, writer in conns:
        writer.close()


async def test_silent_connection_closed_within_header_timeout(make_server: ServerFactory) -> None:
    server = await make_server(http_header_timeout=1.0, http_keepalive_timeout=60.0)
    reader, writer = await tcp(server)
    assert (await read_until_closed(reader, 10)).startswith(b"HTTP/1.1 408")
    writer.close()


async def test_idle_keep_alive_closed(make_server: ServerFactory) -> None:
    server = await make_server(http_header_timeout=30.0, http_keepalive_timeout=1.0)
    reader, writer = await tcp(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")  # keep-alive by default
    answer = await read_until_closed(reader, 10)
    assert answer.startswith(b"HTTP/1.1 200") and answer.count(b"HTTP/1.1") == 1
    writer.close()


async def test_slow_body_gets_an_error(make_server: ServerFactory) -> None:
    server = await make_server(http_header_timeout=1.0)
    reader, writer = await tcp(server)
    token = server.token("ops-slowbody", "admin")
    writer.write(
        (
            "POST /api/tokens HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{"
        ).encode()
    )
    answer = await read_until_closed(reader, 10)
    assert answer.startswith(b"HTTP/1.1 400") and b"did not arrive in time" in answer
    writer.close()


async def test_http_connection_cap(make_server: ServerFactory) -> None:
    server = await make_server(http_max_connections=4, http_header_timeout=60.0)
    holders = [await tcp(server) for _ in range(4)]
    # the fifth is answered 503 and closed at once, without sending anything
    reader, writer = await tcp(server)
    assert (await read_until_closed(reader, 10)).startswith(b"HTTP/1.1 503")
    writer.close()
    # the WebSocket port is not starved by it
    ws = await server.connect("cap-viewer")
    assert (await ws.ok("wallet"))["coins"] == 0
    # a slot freed is usable again
    holders.pop()[1].close()
    async with asyncio.timeout(scaled(10)):
        while not (await http_get(server, "/healthz")).startswith(b"HTTP/1.1 200"):
            await asyncio.sleep(0.05)
    for _, w in holders:
        w.close()


# -- the WebSocket port ------------------------------------------------------------------


async def test_websocket_connection_budget(make_server: ServerFactory) -> None:
    server = await make_server(max_connections=3)
    clients = [await server.connect(f"budget-{i}") for i in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        await Client.open(server.ws_url)
    assert refused.value.response.status_code == 503
    await clients[0].close()
    async with asyncio.timeout(scaled(10)):
        while True:
            try:
                c = await server.raw()
                break
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
                await asyncio.sleep(0.05)
    await c.ok("hello", token=server.token("budget-late"))


async def test_origin_allow_list(make_server: ServerFactory) -> None:
    server = await make_server(allowed_origins="https://good.example, https://other.example")
    with pytest.raises(InvalidStatus) as refused:
        await Client.open(server.ws_url, origin="https://evil.example")
    assert refused.value.response.status_code == 403
    for origin in ("https://good.example", "https://other.example", None):
        c = await server.raw(origin=origin)
        await c.ok("hello", token=server.token("origin-viewer"))


# -- bounded per-user state --------------------------------------------------------------


async def test_live_rooms_per_creator(make_server: ServerFactory) -> None:
    server = await make_server(max_live_rooms_per_creator=2)
    alice = await server.connect("cap-alice", "creator")
    await alice.ok("room_open", room="cap-a1", title="one")
    await alice.ok("room_open", room="cap-a2", title="two")
    reply = await alice.call("room_open", room="cap-a3", title="three")
    assert reply["error"]["code"] == "limit_exceeded"
    assert "at most 2 live rooms" in reply["error"]["message"]
    await alice.ok("room_open", room="cap-a1", title="again")  # already live: still counted once
    await alice.ok("room_close", room="cap-a1")
    await alice.ok("room_open", room="cap-a3", title="three")
    assert await alice.error("room_open", room="cap-a1", title="one more") == "limit_exceeded"
    # another creator's count is its own
    bob = await server.connect("cap-bob", "creator")
    await bob.ok("room_open", room="cap-b1", title="bob")
    # a refused open (the room is someone else's) takes no slot
    for _ in range(3):
        assert await bob.error("room_open", room="cap-a2", title="mine?") == "forbidden"
    await bob.ok("room_open", room="cap-b2", title="bob two")


async def test_live_room_cap_holds_under_concurrent_opens(make_server: ServerFactory) -> None:
    server = await make_server(max_live_rooms_per_creator=3)
    conns = [await server.connect("race-carol", "creator") for _ in range(8)]
    replies = await asyncio.gather(
        *(c.call("room_open", room=f"race-r{i}", title="t") for i, c in enumerate(conns))
    )
    oks = [r for r in replies if r["ok"]]
    assert len(oks) == 3
    assert all(r["error"]["code"] == "limit_exceeded" for r in replies if not r["ok"])


async def test_rooms_per_connection(make_server: ServerFactory) -> None:
    server = await make_server(max_rooms_per_connection=2)
    creator = await server.connect("rpc-creator", "creator")
    for room in ("rpc-1", "rpc-2", "rpc-3"):
        await creator.ok("room_open", room=room, title=room)
    viewer = await server.connect("rpc-viewer")
    await viewer.ok("join", room="rpc-1")
    await viewer.ok("join", room="rpc-2")
    reply = await viewer.call("join", room="rpc-3")
    assert reply["error"]["code"] == "limit_exceeded"
    assert "at most 2 rooms per connection" in reply["error"]["message"]
    await viewer.ok("join", room="rpc-1")  # joining again is not a new room
    await viewer.ok("leave", room="rpc-1")
    await viewer.ok("join", room="rpc-3")
    # the cap is per connection
    other = await server.connect("rpc-viewer")
    await other.ok("join", room="rpc-1")


async def test_connections_per_user(make_server: ServerFactory) -> None:
    server = await make_server(max_connections_per_user=2)
    first = await server.connect("cpu-dave")
    await server.connect("cpu-dave")
    third = await server.raw()
    reply = await third.call("hello", token=server.token("cpu-dave"))
    assert reply["error"]["code"] == "limit_exceeded"
    assert "at most 2 connections per user" in reply["error"]["message"]
    assert await third.closed() == 4430
    await server.connect("cpu-erin")  # other users are not affected
    await first.close()
    async with asyncio.timeout(scaled(10)):
        while True:
            c = await server.raw()
            if (await c.call("hello", token=server.token("cpu-dave")))["ok"]:
                break
            await asyncio.sleep(0.05)


async def test_join_unknown_room_writes_nothing(server: Running) -> None:
    viewer = await server.connect("ghost-viewer")
    for _ in range(3):
        assert await viewer.error("join", room="ghost-room") == "not_found"
    keys = [k async for k in server.backend.redis.scan_iter(match="*ghost-room*")]
    assert keys == []


async def test_hello_is_rate_limited(make_server: ServerFactory) -> None:
    server = await make_server(ops_per_second=0.01, ops_burst=3)
    c = await server.raw()
    token = server.token("hello-flood")
    for _ in range(3):
        await c.ok("hello", token=token)
    assert await c.error("hello", token=token) == "rate_limited"
    assert await c.error("wallet") == "rate_limited"
    # a bad token still closes at once with 4401
    bad = await server.raw()
    assert await bad.error("hello", token="not-a-token") == "unauthorized"
    assert await bad.closed() == 4401


# -- self-dealing and identifiers --------------------------------------------------------


async def test_self_gift_forbidden(server: Running) -> None:
    await server.grant("selfish", 1000)
    creator = await server.connect("selfish", "creator")
    await creator.ok("room_open", room="selfish-room", title="me")
    await creator.ok("join", room="selfish-room")
    reply = await creator.call("gift", room="selfish-room", gift="rose", count=5, key="self-1")
    assert reply["error"]["code"] == "forbidden"
    assert (await creator.ok("wallet"))["coins"] == 1000
    assert await creator.error("subscribe", room="selfish-room", key="self-2") == "forbidden"
    # a viewer's gift to the same room goes through
    await server.grant("selfish-fan", 10)
    fan = await server.connect("selfish-fan")
    await fan.ok("join", room="selfish-room")
    assert (await fan.ok("gift", room="selfish-room", gift="rose", count=5, key="f-1"))[
        "coins"
    ] == 5


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_lookalike_ids_refused_over_websocket(server: Running, bad: str) -> None:
    creator = await server.connect("ids-creator", "creator")
    await creator.ok("room_open", room="ids-room", title="real")
    await creator.ok("product_create", product="ids-prod", title="p", price=1, stock=5)
    await server.grant("ids-viewer", 100)
    viewer = await server.connect("ids-viewer")
    await viewer.ok("join", room="ids-room")
    calls: list[tuple[Client, str, dict[str, Any]]] = [
        (creator, "room_open", {"room": bad, "title": "fake"}),
        (viewer, "join", {"room": bad}),
        (viewer, "gift", {"room": "ids-room", "gift": bad, "count": 1, "key": "ids-k1"}),
        (viewer, "gift", {"room": bad, "gift": "rose", "count": 1, "key": "ids-k2"}),
        (creator, "product_create", {"product": bad, "title": "p", "price": 1, "stock": 1}),
        (viewer, "buy", {"room": "ids-room", "product": bad, "qty": 1, "key": "ids-k3"}),
        (viewer, "products", {"seller": bad}),
        (viewer, "subscribe", {"room": bad, "key": "ids-k4"}),
    ]
    for client, op, args in calls:
        reply = await client.call(op, **args)
        assert reply["error"]["code"] == "bad_request", (op, args, reply)
    assert (await viewer.ok("wallet"))["coins"] == 100
    # nothing under a look-alike name was written
    names = [k async for k in server.backend.redis.scan_iter(match="*")]
    assert not [k for k in names if bad in k]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_lookalike_ids_refused_over_http(
    server: Running, http: aiohttp.ClientSession, bad: str
) -> None:
    auth = {"Authorization": "Bearer " + server.token("ids-ops", "admin")}
    base = server.http_url
    body: dict[str, Any] = {"user": bad, "role": "viewer"}
    async with http.post(f"{base}/api/tokens", json=body, headers=auth) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
    path = URL(f"{base}/api/users/{urllib.parse.quote(bad, safe='')}/wallet", encoded=True)
    async with http.get(path, headers=auth) as r:
        assert r.status == 400
    body = {"product": bad, "title": "p", "seller": "ids-seller", "price": 1, "stock": 1}
    async with http.post(f"{base}/api/products", json=body, headers=auth) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
    # a token whose subject is a look-alike is refused at hello
    forged = jwt.encode(
        {"sub": bad, "role": "viewer", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"
    )
    c = await server.raw()
    assert await c.error("hello", token=forged) == "unauthorized"
    assert await c.closed() == 4401


# -- admin routes -------------------------------------------------------------------------


async def test_demo_routes_absent_without_demo(
    server: Running, http: aiohttp.ClientSession
) -> None:
    for method in ("POST", "GET", "PUT"):
        body = {"user": "demo-nobody", "role": "viewer"}
        async with http.request(method, f"{server.http_url}/demo/login", json=body) as r:
            assert r.status == 404, method
            assert (await r.json())["error"]["code"] == "not_found"
    keys = [k async for k in server.backend.redis.scan_iter(match="*demo-nobody*")]
    assert keys == []


async def test_bearer_scheme_is_case_insensitive(
    server: Running, http: aiohttp.ClientSession
) -> None:
    token = server.token("case-ops", "admin")
    url = f"{server.http_url}/api/users/case-user/wallet"
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        async with http.get(url, headers={"Authorization": f"{scheme} {token}"}) as r:
            assert r.status == 200, scheme
            assert (await r.json())["coins"] == 0
    for header in (f"Basic {token}", "Bearer", f"Bearer{token}"):
        async with http.get(url, headers={"Authorization": header}) as r:
            assert r.status == 401, header

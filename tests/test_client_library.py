"""``livesrv.client`` against a real in-process server: hello, calls and typed errors, the
event iterator, both codecs, and what it does when the connection or the store goes away
(re-join with ``since``, keyed ops sent again with their key and applied exactly once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from livesrv import client as lib
from livesrv.errors import ERROR_CODES
from livesrv.store.embedded import EmbeddedStore
from tests.client import JSON, MSGPACK, Client
from tests.conftest import Nodes, Running, ServerFactory
from tests.timing import scaled, until

FAST = lib.Backoff(initial=0.05, maximum=0.5, deadline=60.0)


@pytest.fixture(params=["json", "msgpack"])
def codec(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def open_lib(server: Running, user: str, **options: Any) -> lib.Client:
    options.setdefault("reconnect", FAST)
    options.setdefault("retry", FAST)
    return await lib.Client.connect(server.ws_url, server.token(user), **options)


async def live_room(server: Running, creator: str, room: str) -> Client:
    c = await server.connect(creator, "creator")
    await c.ok("room_open", room=room, title="library")
    await c.ok("join", room=room)
    return c


async def take(c: lib.Client, n: int, room: str, names: Any = None) -> list[dict[str, Any]]:
    """The next ``n`` events of ``room`` (named ``names``) from the iterator."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(scaled(15)):
        async for ev in c.events(room=room, names=names):
            got.append(ev)
            if len(got) == n:
                break
    return got


def cut(c: lib.Client) -> None:
    """Drop the connection under the client, as a network failure would (no close frame)."""
    c.ws.transport.abort()


# -- calls, typed errors, codecs ----------------------------------------------------------


async def test_hello_call_and_typed_errors(server: Running, codec: str) -> None:
    await server.grant("lib-fan", 30)
    c = await open_lib(server, "lib-fan", codec=codec)
    try:
        assert c.codec == (MSGPACK if codec == "msgpack" else JSON)
        assert c.ws.subprotocol == c.codec
        assert c.user is not None and (c.user["user"], c.user["coins"]) == ("lib-fan", 30)
        assert (await c.call("wallet"))["coins"] == 30
        with pytest.raises(lib.NotFound) as missing:
            await c.call("join", room="lib-nowhere")
        assert missing.value.code == "not_found" and missing.value.message
        with pytest.raises(lib.BadRequest):
            await c.call("no_such_op")
        with pytest.raises(lib.Forbidden):
            await c.call("room_open", room="lib-r", title="viewers cannot")
        creator = await live_room(server, "lib-cr", "lib-r")
        await c.call("join", room="lib-r")
        with pytest.raises(lib.InsufficientFunds) as poor:
            await c.call("gift", room="lib-r", gift="rainbow_puke", count=1, key="lib-k0")
        assert isinstance(poor.value, lib.ProtocolError) and poor.value.reply["ok"] is False
        reply = await c.call("gift", room="lib-r", gift="panda", count=2, key="lib-k1")
        assert reply["coins"] == 20
        with pytest.raises(lib.IdempotencyConflict):
            await c.call("gift", room="lib-r", gift="panda", count=3, key="lib-k1")
        with pytest.raises(lib.CallTimeout):
            await c.call("wallet", timeout=0)
        assert (await c.call("wallet"))["coins"] == 20
        await creator.event("gift", lambda e: e["from"] == "lib-fan")
    finally:
        await c.close()
    with pytest.raises(lib.ConnectionLost):
        await c.call("wallet")


async def test_every_error_code_has_its_class(server: Running) -> None:
    assert set(ERROR_CODES) <= set(lib.BY_CODE)  # a new server code needs its class here
    for code, cls in lib.BY_CODE.items():
        assert issubclass(cls, lib.ProtocolError) and cls.code == code
    future = lib.error_for({"ok": False, "error": {"code": "brand_new", "message": "m"}})
    assert isinstance(future, lib.UnknownError) and future.code == "brand_new"
    with pytest.raises(lib.Unauthorized):
        await lib.Client.connect(server.ws_url, "not-a-token", reconnect=None)


async def test_events_iterator_filters_and_bounds(server: Running, codec: str) -> None:
    creator = await live_room(server, "lib-ev-cr", "lib-ev")
    c = await open_lib(server, "lib-ev-fan", codec=codec)
    small = await open_lib(server, "lib-ev-small", codec=codec, event_buffer=2)
    try:
        await c.call("join", room="lib-ev")
        await small.call("join", room="lib-ev")
        for i in range(4):
            await creator.ok("chat", room="lib-ev", text=f"line {i}")
        chats = await take(c, 4, "lib-ev", "chat")
        assert [e["text"] for e in chats] == [f"line {i}" for i in range(4)]
        seqs = [e["seq"] for e in chats]
        assert seqs == list(range(seqs[0], seqs[0] + 4))
        # the bounded buffer keeps the newest events and counts the dropped ones
        await until(lambda: any(e.get("text") == "line 3" for e in small.buffer.events))
        # (4 chats into room for 2: at least 2 dropped; viewer counts may add more)
        assert len(small.buffer.events) == 2 and small.buffer.dropped >= 2
    finally:
        await c.close()
        await small.close()
    assert [e async for e in c.events(names="no_such_event")] == []  # ends once closed


# -- reconnects --------------------------------------------------------------------------


async def test_keyed_gift_cut_before_its_reply_is_applied_once(server: Running, codec: str) -> None:
    creator = await live_room(server, "lib-cut-cr", "lib-cut")
    await server.grant("lib-cut-fan", 100)
    c = await open_lib(server, "lib-cut-fan", codec=codec)
    try:
        await c.call("join", room="lib-cut")
        c.ws.transport.pause_reading()  # the reply (and the event) will never be read
        gift = asyncio.create_task(
            c.call("gift", room="lib-cut", gift="panda", count=3, key="lib-cut-k")
        )
        first = await creator.event("gift", lambda e: e["from"] == "lib-cut-fan")
        cut(c)
        reply = await gift
        assert reply["coins"] == 85 and c.reconnects == 1 and c.retries == 1
        assert (await c.call("wallet"))["coins"] == 85
        await c.call("chat", room="lib-cut", text="after")
        await creator.event("chat", lambda e: e["text"] == "after")
        gifts = [e for e in creator.events if e["ev"] == "gift"]
        assert gifts == [first]
        # the library's own stream got the gift event once, by the replay of the re-join
        got = await take(c, 2, "lib-cut", ("gift", "chat"))
        assert [(e["ev"], e["seq"]) for e in got] == [
            ("gift", first["seq"]),
            ("chat", first["seq"] + 1),
        ]
    finally:
        await c.close()


async def test_plain_op_in_flight_raises_connection_lost(server: Running) -> None:
    creator = await live_room(server, "lib-lost-cr", "lib-lost")
    c = await open_lib(server, "lib-lost-fan")
    try:
        await c.call("join", room="lib-lost")
        c.ws.transport.pause_reading()
        chat = asyncio.create_task(c.call("chat", room="lib-lost", text="once"))
        await creator.event("chat", lambda e: e["text"] == "once")
        cut(c)
        with pytest.raises(lib.ConnectionLost):
            await chat
        await c.call("chat", room="lib-lost", text="marker")  # waits for the reconnect
        await creator.event("chat", lambda e: e["text"] == "marker")
        assert [e["text"] for e in creator.events if e["ev"] == "chat"] == ["once", "marker"]
    finally:
        await c.close()


async def test_reconnect_rejoins_since_and_misses_nothing(server: Running, codec: str) -> None:
    creator = await live_room(server, "lib-rj-cr", "lib-rj")
    c = await open_lib(server, "lib-rj-fan", codec=codec, dedupe=False)
    try:
        await c.call("join", room="lib-rj")
        await creator.ok("chat", room="lib-rj", text="m0")
        assert [e["text"] for e in await take(c, 1, "lib-rj", "chat")] == ["m0"]
        c.ws.transport.pause_reading()
        for i in (1, 2, 3):
            await creator.ok("chat", room="lib-rj", text=f"m{i}")
        await creator.event("chat", lambda e: e["text"] == "m3")
        cut(c)
        await until(lambda: c.reconnects == 1 and not c.closed)
        await creator.ok("chat", room="lib-rj", text="m4")
        got = await take(c, 4, "lib-rj", "chat")
        assert [e["text"] for e in got] == ["m1", "m2", "m3", "m4"]
        seqs = [e["seq"] for e in got]
        assert seqs == list(range(seqs[0], seqs[0] + 4))
        assert c.rooms.last["lib-rj"] == seqs[-1]
        assert c.user is not None and c.user["user"] == "lib-rj-fan"
    finally:
        await c.close()


async def test_reconnect_past_the_replay_limit_surfaces_a_gap(make_server: ServerFactory) -> None:
    server = await make_server(replay_limit=2)
    creator = await live_room(server, "lib-gap-cr", "lib-gap")
    c = await open_lib(server, "lib-gap-fan")
    try:
        await c.call("join", room="lib-gap")
        await creator.ok("chat", room="lib-gap", text="g0")
        (g0,) = await take(c, 1, "lib-gap", "chat")
        c.ws.transport.pause_reading()
        for i in (1, 2, 3, 4):
            await creator.ok("chat", room="lib-gap", text=f"g{i}")
        await creator.event("chat", lambda e: e["text"] == "g4")
        cut(c)
        got = await take(c, 3, "lib-gap", ("gap", "chat"))
        gap, *chats = got
        assert gap == {
            "ev": lib.GAP,
            "room": "lib-gap",
            "since": g0["seq"],
            "replay_from": g0["seq"] + 3,
            "seq_now": g0["seq"] + 4,
        }
        assert [e["text"] for e in chats] == ["g3", "g4"]
    finally:
        await c.close()


# -- the store away: ``unavailable`` retried with the same key -----------------------------


@pytest.fixture
async def own_store(tmp_path: Path) -> AsyncIterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "own-store", appendfsync="always")
    await asyncio.to_thread(s.start)
    yield s
    await asyncio.to_thread(s.stop)


@pytest.fixture
async def own_node(own_store: EmbeddedStore, tmp_path: Path) -> AsyncIterator[Running]:
    nodes = Nodes()
    yield await nodes.start(tmp_path / "data", own_store.url)
    await nodes.close()


async def test_unavailable_is_retried_until_the_store_is_back(
    own_node: Running, own_store: EmbeddedStore
) -> None:
    creator = await live_room(own_node, "lib-st-cr", "lib-st")
    await own_node.grant("lib-st-fan", 50)
    c = await open_lib(own_node, "lib-st-fan", codec="msgpack")
    try:
        await c.call("join", room="lib-st")
        await asyncio.to_thread(own_store.stop)
        with pytest.raises(lib.Unavailable):
            await c.call("wallet")  # not keyed: the error is the caller's
        gift = asyncio.create_task(
            c.call("gift", room="lib-st", gift="panda", count=2, key="lib-st-k", timeout=60)
        )
        await until(lambda: c.retries >= 2)
        assert not gift.done()
        await asyncio.to_thread(own_store.start)
        reply = await gift
        assert reply["coins"] == 40
        assert (await c.call("wallet"))["coins"] == 40
        await c.call("chat", room="lib-st", text="back")
        await creator.event("chat", lambda e: e["text"] == "back")
        assert [e["count"] for e in creator.events if e["ev"] == "gift"] == [2]
    finally:
        await c.close()

"""End to end over real WebSockets: every op, event, error code and close code of protocol
v1 that the core server implements, in both codecs where the codec matters.

Each test asserts what a client sees: the exact reply, the error code, the close code,
the balances and the event seqs.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from livesrv.catalog import Catalog
from tests.client import JSON, MSGPACK, Client
from tests.conftest import Running, ServerFactory
from tests.timing import scaled, until

CODECS = [JSON, MSGPACK]


@pytest.fixture(params=CODECS, ids=["json", "msgpack"])
def codec(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def live(server: Running, room: str = "r1", codec: str = JSON) -> Client:
    """A creator with an open room, joined to it (so it sees the room's events)."""
    creator = await server.connect("alice", "creator", codec)
    await creator.ok("room_open", room=room, title="Alice live")
    await creator.ok("join", room=room)
    return creator


async def viewer(server: Running, user: str, room: str = "r1", codec: str = JSON) -> Client:
    c = await server.connect(user, "viewer", codec)
    await c.ok("join", room=room)
    return c


def body(reply: dict[str, Any]) -> dict[str, Any]:
    """A reply without its id and ok."""
    return {k: v for k, v in reply.items() if k not in ("id", "ok")}


def no_ts(ev: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(ev["ts"], int) and abs(ev["ts"] - time.time() * 1000) < 60_000
    return {k: v for k, v in ev.items() if k != "ts"}


async def until_seq(c: Client, room: str, seq: int) -> list[int]:
    await c.wait(lambda: max(c.seqs(room), default=0) >= seq)
    return c.seqs(room)


async def settle_quietly(seconds: float = 0.15) -> None:
    """Let a few hub ticks pass (tests use 20 ms ticks) so that late frames would show."""
    await asyncio.sleep(scaled(seconds))


# -- transport and session ------------------------------------------------------------------


async def test_no_subprotocol_gets_json(server: Running) -> None:
    async with connect(server.ws_url) as ws:
        assert ws.subprotocol is None
        await ws.send(json.dumps({"id": 1, "op": "hello", "token": server.token("bob")}))
        raw = await ws.recv()
        assert isinstance(raw, str)  # a text frame
        assert json.loads(raw)["ok"] is True


async def test_first_supported_subprotocol_is_picked(server: Running) -> None:
    async with connect(server.ws_url, subprotocols=["chat", MSGPACK, JSON]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == MSGPACK
        await ws.send(msgpack.packb({"id": 1, "op": "hello", "token": server.token("bob")}))
        raw = await ws.recv()
        assert isinstance(raw, bytes)  # a binary frame
        assert msgpack.unpackb(raw)["ok"] is True
    async with connect(server.ws_url, subprotocols=[JSON, MSGPACK]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == JSON


async def test_only_the_ws_path_is_served(server: Running) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as info:
        async with connect(server.ws_url.replace("/ws", "/other")):
            pass
    assert info.value.response.status_code == 404


async def test_hello(server: Running, codec: str) -> None:
    await server.grant("bob", 250)
    c = await server.raw(codec)
    reply = await c.call("hello", token=server.token("bob"))
    assert body(reply) == {
        "user": "bob",
        "role": "viewer",
        "coins": 250,
        "diamonds": 0,
        "pending": 0,
        "protocol": 1,
    }
    assert reply["ok"] is True
    creator = await server.raw(codec)
    r = await creator.ok("hello", token=server.token("carol", "creator"))
    assert (r["user"], r["role"], r["coins"]) == ("carol", "creator", 0)


async def test_reply_carries_the_request_id(server: Running, codec: str) -> None:
    c = await server.connect("bob", codec=codec)
    for rid in (0, -7, (1 << 53) - 1, "x", "a" * 64, "é id"):
        reply = await c.request({"id": rid, "op": "wallet"})
        assert reply["id"] == rid and reply["ok"] is True


OPS_BEFORE_HELLO: dict[str, dict[str, Any]] = {
    "wallet": {},
    "catalog": {},
    "rooms": {},
    "buy_coins": {"package": "p65", "receipt": "rc-1"},
    "room_open": {"room": "r1", "title": "t"},
    "room_close": {"room": "r1"},
    "join": {"room": "r1"},
    "history": {"room": "r1", "before": 2},
    "leave": {"room": "r1"},
    "chat": {"room": "r1", "text": "hi"},
    "like": {"room": "r1"},
    "gift": {"room": "r1", "gift": "rose", "count": 1, "key": "k"},
}


async def test_every_op_before_hello_is_unauthorized(server: Running, codec: str) -> None:
    c = await server.raw(codec)
    for op, args in OPS_BEFORE_HELLO.items():
        reply = await c.call(op, **args)
        assert reply["error"]["code"] == "unauthorized", (op, reply)
        assert reply["error"]["message"]
    # nothing moved, the connection is still open, and hello still works
    r = await c.ok("hello", token=server.token("bob"))
    assert r["coins"] == 0
    assert (await c.ok("wallet"))["coins"] == 0


@pytest.mark.parametrize("kind", ["garbage", "wrong_secret", "expired", "bad_role"])
async def test_bad_token_fails_and_closes_4401(server: Running, codec: str, kind: str) -> None:
    import jwt

    now = int(time.time())
    token = {
        "garbage": "not.a.token",
        "wrong_secret": jwt.encode(
            {"sub": "bob", "role": "viewer", "exp": now + 60}, "x" * 40, algorithm="HS256"
        ),
        "expired": jwt.encode(
            {"sub": "bob", "role": "viewer", "exp": now - 5},
            "test-secret-0123456789abcdef0123456789abcdef",
            algorithm="HS256",
        ),
        "bad_role": jwt.encode(
            {"sub": "bob", "role": "root", "exp": now + 60},
            "test-secret-0123456789abcdef0123456789abcdef",
            algorithm="HS256",
        ),
    }[kind]
    c = await server.raw(codec)
    reply = await c.call("hello", token=token)
    assert reply["ok"] is False and reply["error"]["code"] == "unauthorized"
    assert await c.closed() == 4401


async def test_token_that_is_not_a_string_is_bad_request(server: Running) -> None:
    c = await server.raw()
    assert await c.error("hello", token=12) == "bad_request"
    assert (await c.ok("hello", token=server.token("bob")))["user"] == "bob"


async def test_hello_again(server: Running, codec: str) -> None:
    c = await server.connect("bob", codec=codec)
    # the same user again is fine (a token refresh)
    assert (await c.ok("hello", token=server.token("bob", ttl=7200)))["user"] == "bob"
    # another user on the same connection is refused, and the session is unchanged
    assert await c.error("hello", token=server.token("mallory")) == "bad_request"
    await server.grant("bob", 5)
    assert (await c.ok("wallet"))["coins"] == 5


async def test_no_hello_in_time_closes_4408(make_server: ServerFactory, codec: str) -> None:
    server = await make_server(hello_timeout=0.5)
    silent = await server.raw(codec)
    chatty = await server.raw(codec)  # sends requests, but never a good hello
    assert await chatty.error("wallet") == "unauthorized"
    fine = await server.connect("bob", codec=codec)
    start = time.monotonic()
    assert await silent.closed(timeout=5) == 4408
    assert await chatty.closed(timeout=5) == 4408
    assert 0.4 < time.monotonic() - start < scaled(3)
    # a signed-in connection is not affected by the hello timeout
    await asyncio.sleep(0.3)
    assert (await fine.ok("wallet"))["coins"] == 0


# -- wallet, catalog, rooms, buy_coins --------------------------------------------------


async def test_wallet(server: Running, codec: str) -> None:
    c = await server.connect("bob", codec=codec)
    assert body(await c.ok("wallet")) == {"coins": 0, "diamonds": 0, "pending": 0}
    await server.grant("bob", 42)
    assert body(await c.ok("wallet")) == {"coins": 42, "diamonds": 0, "pending": 0}


async def test_catalog(server: Running, codec: str) -> None:
    c = await server.connect("bob", codec=codec)
    r = body(await c.ok("catalog"))
    assert r == Catalog.load().to_wire()
    gifts = {g["gift"]: (g["coins"], g["streak"]) for g in r["gifts"]}
    assert gifts["rose"] == (1, True) and gifts["universe"] == (34999, False)
    packages = {p["package"]: (p["coins"], p["cents"]) for p in r["packages"]}
    assert packages["p65"] == (65, 99) and packages["p6607"] == (6607, 9999)


async def test_rooms(server: Running, codec: str) -> None:
    c = await server.connect("bob", codec=codec)
    assert body(await c.ok("rooms")) == {"rooms": [], "next": None}
    creator = await server.connect("alice", "creator", codec)
    await creator.ok("room_open", room="r1", title="Alice live")
    await creator.ok("room_open", room="r2", title="Second")
    await c.ok("join", room="r1")
    r = await c.ok("rooms")
    assert r["rooms"] == [
        {"room": "r1", "title": "Alice live", "creator": "alice", "viewers": 1},
        {"room": "r2", "title": "Second", "creator": "alice", "viewers": 0},
    ]
    await creator.ok("room_close", room="r2")
    assert [x["room"] for x in (await c.ok("rooms"))["rooms"]] == ["r1"]


async def test_buy_coins(server: Running, codec: str) -> None:
    bob = await server.connect("bob", codec=codec)
    bob2 = await server.connect("bob", codec=codec)  # a second device of the same user
    eve = await server.connect("eve", codec=codec)
    r = await bob.ok("buy_coins", package="p65", receipt=server.receipt("bob", "p65", "rcpt-1"))
    assert body(r) == {"coins": 65}
    r = await bob.ok("buy_coins", package="p330", receipt=server.receipt("bob", "p330", "rcpt-2"))
    assert body(r) == {"coins": 395}
    assert (await bob.ok("wallet"))["coins"] == 395
    # the owner's connections are told; nobody else is
    for c in (bob, bob2):
        w = await c.event("wallet", lambda e: e["coins"] == 395)
        assert no_ts(w) == {"ev": "wallet", "coins": 395, "diamonds": 0, "pending": 0}
    await settle_quietly()
    assert [e for e in eve.events if e["ev"] == "wallet"] == []
    assert "room" not in w and "seq" not in w


async def test_buy_coins_unknown_package(server: Running, codec: str) -> None:
    bob = await server.connect("bob", codec=codec)
    unknown = server.receipt("bob", "p99", "rcpt-1")
    assert await bob.error("buy_coins", package="p99", receipt=unknown) == "not_found"
    assert (await bob.ok("wallet"))["coins"] == 0
    # the receipt id was not used up by the failed request
    receipt = server.receipt("bob", "p65", "rcpt-1")
    assert body(await bob.ok("buy_coins", package="p65", receipt=receipt)) == {"coins": 65}


# -- room_open, room_close -------------------------------------------------------------


async def test_room_open(server: Running, codec: str) -> None:
    alice = await server.connect("alice", "creator", codec)
    r = await alice.ok("room_open", room="r1", title="Alice live")
    assert body(r) == {"room": "r1", "seq": 1, "session": 1}
    # opening a live room again changes nothing
    r = await alice.ok("room_open", room="r1", title="Alice live")
    assert body(r) == {"room": "r1", "seq": 1, "session": 1}
    j = await alice.ok("join", room="r1")
    assert j["seq"] == 1 and j["live"] is True


async def test_room_open_needs_a_creator_who_owns_the_room(server: Running, codec: str) -> None:
    bob = await server.connect("bob", "viewer", codec)
    assert await bob.error("room_open", room="r1", title="mine") == "forbidden"
    alice = await server.connect("alice", "creator", codec)
    await alice.ok("room_open", room="r1", title="Alice live")
    carol = await server.connect("carol", "creator", codec)
    assert await carol.error("room_open", room="r1", title="taken") == "forbidden"
    await alice.ok("room_close", room="r1")
    assert await carol.error("room_open", room="r1", title="taken") == "forbidden"
    j = await bob.ok("join", room="r1")
    assert (j["creator"], j["title"], j["seq"]) == ("alice", "Alice live", 2)


async def test_room_close_and_reopen(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    await server.grant("bob", 100)
    bob = await viewer(server, "bob", codec=codec)
    await bob.ok("gift", room="r1", gift="rose", count=7, key="g1")
    assert body(await alice.ok("room_close", room="r1")) == {"seq": 3}
    for c in (alice, bob):
        ev = await c.event("room_closed")
        assert no_ts(ev) == {"ev": "room_closed", "room": "r1", "seq": 3}
    assert await alice.error("room_close", room="r1") == "not_live"
    j = await bob.ok("join", room="r1")
    assert j["live"] is False and j["seq"] == 3 and j["top"] == [["bob", 7]]
    # reopening starts a new live session: new title, fresh leaderboard
    r = await alice.ok("room_open", room="r1", title="Round two")
    assert body(r) == {"room": "r1", "seq": 4, "session": 2}
    ev = await bob.event("room_open")
    assert no_ts(ev) == {
        "ev": "room_open",
        "room": "r1",
        "seq": 4,
        "title": "Round two",
        "creator": "alice",
    }
    j = await bob.ok("join", room="r1")
    assert (j["live"], j["title"], j["top"], j["likes"]) == (True, "Round two", [], 0)


async def test_room_close_who_may(server: Running, codec: str) -> None:
    alice = await server.connect("alice", "creator", codec)
    await alice.ok("room_open", room="r1", title="Alice live")
    bob = await server.connect("bob", "viewer", codec)
    carol = await server.connect("carol", "creator", codec)
    admin = await server.connect("root", "admin", codec)
    assert await bob.error("room_close", room="r1") == "forbidden"
    assert await carol.error("room_close", room="r1") == "forbidden"
    assert await alice.error("room_close", room="nope") == "not_found"
    assert body(await admin.ok("room_close", room="r1")) == {"seq": 2}
    assert await admin.error("room_close", room="r1") == "not_live"


# -- join, leave, replay --------------------------------------------------------------


async def test_join_result(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    await server.grant("bob", 100)
    bob = await server.connect("bob", codec=codec)
    r = await bob.ok("join", room="r1")
    assert body(r) == {
        "room": "r1",
        "title": "Alice live",
        "creator": "alice",
        "live": True,
        "viewers": 2,
        "seq": 1,
        "top": [],
        "pinned": None,
        "gap": False,
        "replay_from": None,
        "subscribers_only": False,
        "sub_price": 350,
        "subscribed_until": 0,
        "pinned_product": None,
        "likes": 0,
        "match": None,  # -- live match, goal, hype train (none running) --
        "goal": None,
        "hype": None,
        "mods": [],  # -- moderation --
        "slow_mode": 0,
        "muted_until": 0,
        "pins": [],  # -- paid pins, treasure boxes --
        "boxes": [],
        "sub_tiers": [350, 700, 1750],  # -- subscription tiers, loyalty months --
        "sub_tier": 0,
        "sub_months": 0,
    }
    await bob.ok("gift", room="r1", gift="panda", count=2, key="g1")
    await alice.ok("chat", room="r1", text="thanks")
    carol = await server.connect("carol", codec=codec)
    r = await carol.ok("join", room="r1")
    assert (r["viewers"], r["seq"], r["top"], r["gap"]) == (3, 3, [["bob", 10]], False)


async def test_join_unknown_room(server: Running, codec: str) -> None:
    bob = await server.connect("bob", codec=codec)
    assert await bob.error("join", room="nowhere") == "not_found"
    alice = await live(server, codec=codec)
    # the failed join left no trace in the viewer count
    r = await bob.ok("join", room="r1")
    assert r["viewers"] == 2
    ev = await alice.event("viewers", lambda e: e["count"] == 2)
    assert no_ts(ev) == {"ev": "viewers", "room": "r1", "count": 2}


async def test_join_twice_counts_once(server: Running) -> None:
    await live(server)
    bob = await viewer(server, "bob")
    r = await bob.ok("join", room="r1")
    assert r["viewers"] == 2
    bob2 = await viewer(server, "bob")  # the same user on another device
    assert (await bob2.ok("join", room="r1"))["viewers"] == 2


async def test_join_since_replays_in_order_then_live(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    for i in range(5):
        await alice.ok("chat", room="r1", text=f"m{i}")  # seqs 2..6
    bob = await server.connect("bob", codec=codec)
    frames_before = len(bob.frames)
    r = await bob.ok("join", room="r1", since=3)
    assert (r["seq"], r["gap"]) == (6, False)
    assert await until_seq(bob, "r1", 6) == [4, 5, 6]
    assert [e["text"] for e in bob.events if e["ev"] == "chat"] == ["m2", "m3", "m4"]
    # the reply comes first, then the replay
    later = bob.frames[frames_before:]
    first_event = next(
        i
        for i, f in enumerate(later)
        if any("ev" in m for m in (f if isinstance(f, list) else [f]))
    )
    reply_at = next(
        i for i, f in enumerate(later) if isinstance(f, dict) and f.get("id") is not None
    )
    assert reply_at < first_event
    await alice.ok("chat", room="r1", text="live")
    assert await until_seq(bob, "r1", 7) == [4, 5, 6, 7]
    await settle_quietly()
    assert bob.seqs("r1") == [4, 5, 6, 7]


async def test_join_since_zero_replays_everything(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    await alice.ok("chat", room="r1", text="one")
    await alice.ok("room_close", room="r1")
    bob = await server.connect("bob", codec=codec)
    r = await bob.ok("join", room="r1", since=0)
    assert (r["seq"], r["gap"], r["live"]) == (3, False, False)
    await until_seq(bob, "r1", 3)
    logged = [no_ts(e) for e in bob.events if "seq" in e]
    assert logged == [
        {"ev": "room_open", "room": "r1", "seq": 1, "title": "Alice live", "creator": "alice"},
        {"ev": "chat", "room": "r1", "seq": 2, "from": "alice", "text": "one", "badge": None},
        {"ev": "room_closed", "room": "r1", "seq": 3},
    ]


@pytest.mark.parametrize("since", [2, 3, 50])
async def test_join_since_current_or_future_replays_nothing(server: Running, since: int) -> None:
    alice = await live(server)
    await alice.ok("chat", room="r1", text="x")  # seq 2
    bob = await server.connect("bob")
    r = await bob.ok("join", room="r1", since=since)
    # a since beyond the room's seq names events the store does not hold: gap
    assert (r["seq"], r["gap"], r["replay_from"]) == (2, since > 2, None)
    await alice.ok("chat", room="r1", text="y")
    assert await until_seq(bob, "r1", 3) == [3]


async def test_join_since_too_old_reports_gap(make_server: ServerFactory) -> None:
    server = await make_server(log_maxlen=5, ops_per_second=10_000, ops_burst=10_000)
    alice = await live(server)
    await asyncio.gather(*(alice.ok("chat", room="r1", text=f"m{i}") for i in range(299)))
    bob = await server.connect("bob")
    r = await bob.ok("join", room="r1", since=0)
    assert r["gap"] is True and r["seq"] == 300
    seqs = await until_seq(bob, "r1", 300)
    # what the trimmed log still holds, oldest first, contiguous up to the current seq
    assert seqs[0] > 1 and seqs == list(range(seqs[0], 301))
    # a since inside what is kept is not a gap
    carol = await server.connect("carol")
    r = await carol.ok("join", room="r1", since=295)
    assert r["gap"] is False
    assert await until_seq(carol, "r1", 300) == [296, 297, 298, 299, 300]


async def test_join_since_while_events_flow_skips_and_repeats_nothing(
    make_server: ServerFactory,
) -> None:
    # every replay fits (replay_limit): test_bounded_replies covers the ones that do not
    server = await make_server(ops_per_second=10_000, ops_burst=10_000, replay_limit=10_000)
    alice = await live(server)
    stop = asyncio.Event()

    async def chatter() -> None:
        i = 0
        while not stop.is_set():
            await alice.ok("chat", room="r1", text=f"c{i}")
            i += 1

    task = asyncio.create_task(chatter())
    try:
        await asyncio.sleep(0.1)
        joiners = []
        for n in range(6):
            c = await server.connect(f"v{n}")
            since = max(1, n * 3)
            await c.ok("join", room="r1", since=since)
            joiners.append((c, since))
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
    final = (await alice.ok("join", room="r1"))["seq"]
    for c, since in joiners:
        assert await until_seq(c, "r1", final) == list(range(since + 1, final + 1))


async def test_leave(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    bob = await viewer(server, "bob", codec=codec)
    await alice.event("viewers", lambda e: e["count"] == 2)
    assert body(await bob.ok("leave", room="r1")) == {}
    await alice.event("viewers", lambda e: e["count"] == 1)
    assert await bob.error("leave", room="r1") == "forbidden"
    assert await bob.error("leave", room="never") == "forbidden"
    assert await bob.error("chat", room="r1", text="hi") == "forbidden"
    seen = len(bob.events)
    await alice.ok("chat", room="r1", text="after bob left")
    await alice.event("chat")
    await settle_quietly()
    assert bob.events[seen:] == []
    assert (await alice.ok("rooms"))["rooms"][0]["viewers"] == 1


async def test_disconnect_leaves_the_room(server: Running) -> None:
    alice = await live(server)
    bob = await viewer(server, "bob")
    await alice.event("viewers", lambda e: e["count"] == 2)
    await bob.close()
    await alice.event("viewers", lambda e: e["count"] == 1)


# -- chat ------------------------------------------------------------------------------


async def test_chat(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    bob = await viewer(server, "bob", codec=codec)
    assert body(await bob.ok("chat", room="r1", text="hello ünïcode 🎉")) == {}
    for c in (alice, bob):
        ev = await c.event("chat")
        assert no_ts(ev) == {
            "ev": "chat",
            "room": "r1",
            "seq": 2,
            "from": "bob",
            "text": "hello ünïcode 🎉",
            "badge": None,
        }
    await bob.ok("chat", room="r1", text="x" * 500)
    assert (await alice.event("chat", lambda e: e["seq"] == 3))["text"] == "x" * 500
    assert await bob.error("chat", room="r1", text="x" * 501) == "bad_request"
    assert await bob.error("chat", room="r1", text="") == "bad_request"


async def test_chat_needs_membership_and_a_live_room(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    bob = await server.connect("bob", codec=codec)
    assert await bob.error("chat", room="r1", text="hi") == "forbidden"
    assert await bob.error("chat", room="nowhere", text="hi") == "forbidden"
    await bob.ok("join", room="r1")
    await alice.ok("room_close", room="r1")
    await bob.event("room_closed")
    assert await bob.error("chat", room="r1", text="hi") == "not_live"
    assert (await bob.ok("join", room="r1"))["seq"] == 2  # nothing was logged


# -- like ------------------------------------------------------------------------------


async def test_likes_are_coalesced(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    bob = await viewer(server, "bob", codec=codec)
    carol = await viewer(server, "carol", codec=codec)
    start = time.monotonic()
    await asyncio.gather(
        *(bob.ok("like", room="r1") for _ in range(50)),
        *(carol.ok("like", room="r1") for _ in range(50)),
    )
    await carol.ok("like", room="r1", count=100)
    ev = await alice.event("like", lambda e: e["total"] == 200)
    ticks = (time.monotonic() - start) / (server.settings.tick_ms / 1000)
    assert no_ts(ev) == {"ev": "like", "room": "r1", "total": 200}
    await settle_quietly()
    totals = [e["total"] for e in alice.events if e["ev"] == "like"]
    # 101 like requests became at most one like event per tick, with a growing total
    assert len(totals) < 101 and len(totals) <= ticks + 2, (totals, ticks)
    assert totals == sorted(set(totals)) and totals[-1] == 200
    assert [e["total"] for e in bob.events if e["ev"] == "like"][-1] == 200
    assert all("seq" not in e for e in alice.events if e["ev"] == "like")
    assert (await bob.ok("join", room="r1"))["likes"] == 200


async def test_like_needs_membership_and_a_live_room(server: Running) -> None:
    alice = await live(server)
    bob = await server.connect("bob")
    assert await bob.error("like", room="r1") == "forbidden"
    await bob.ok("join", room="r1")
    for count in (0, 101, -1, 1.5):
        assert await bob.error("like", room="r1", count=count) == "bad_request"
    await alice.ok("room_close", room="r1")
    await bob.event("room_closed")
    assert await bob.error("like", room="r1") == "not_live"
    await settle_quietly()
    assert [e for e in alice.events if e["ev"] == "like"] == []


# -- gift --------------------------------------------------------------------------------


async def test_gift(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    await server.grant("bob", 1000)
    bob = await viewer(server, "bob", codec=codec)
    r = await bob.ok("gift", room="r1", gift="panda", count=3, key="g1")
    assert body(r) == {"coins": 985, "combo": 3}
    for c in (alice, bob):
        ev = await c.event("gift")
        assert no_ts(ev) == {
            "ev": "gift",
            "room": "r1",
            "seq": 2,
            "from": "bob",
            "gift": "panda",
            "count": 3,
            "combo": 3,
            "coins": 15,
            "streak": True,
        }
        top = await c.event("top")
        assert no_ts(top) == {"ev": "top", "room": "r1", "top": [["bob", 15]]}
    w = await bob.event("wallet", lambda e: e["coins"] == 985)
    assert no_ts(w) == {"ev": "wallet", "coins": 985, "diamonds": 0, "pending": 0}
    # the creator's diamonds arrive through settlement, pushed as a wallet event
    w = await alice.event("wallet", lambda e: e["diamonds"] == 7)
    assert no_ts(w) == {"ev": "wallet", "coins": 0, "diamonds": 7, "pending": 0}
    assert body(await alice.ok("wallet")) == {"coins": 0, "diamonds": 7, "pending": 0}
    assert (await bob.ok("wallet"))["coins"] == 985


async def test_top_is_largest_first(server: Running) -> None:
    alice = await live(server)
    clients = {}
    for user, coins in (("u1", 5), ("u2", 100), ("u3", 1)):
        await server.grant(user, 1000)
        clients[user] = await viewer(server, user)
        await clients[user].ok("gift", room="r1", gift="rose", count=coins, key="k")
    await clients["u1"].ok("gift", room="r1", gift="rose", count=200, key="k2")
    top = await alice.event("top", lambda e: len(e["top"]) == 3 and e["top"][0][1] == 205)
    assert top["top"] == [["u1", 205], ["u2", 100], ["u3", 1]]
    assert (await alice.ok("join", room="r1"))["top"] == [["u1", 205], ["u2", 100], ["u3", 1]]


async def test_gift_streaks_within_the_window(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    await server.grant("bob", 1000)
    await server.grant("carol", 1000)
    bob = await viewer(server, "bob", codec=codec)
    carol = await viewer(server, "carol", codec=codec)
    combos = [
        (await bob.ok("gift", room="r1", gift="rose", count=n, key=f"r{i}"))["combo"]
        for i, n in enumerate((1, 1, 5, 3))
    ]
    assert combos == [1, 2, 7, 10]
    # another gift, another viewer: separate streaks
    assert (await bob.ok("gift", room="r1", gift="panda", count=1, key="p1"))["combo"] == 1
    assert (await carol.ok("gift", room="r1", gift="rose", count=2, key="c1"))["combo"] == 2
    assert (await bob.ok("gift", room="r1", gift="rose", count=1, key="r9"))["combo"] == 11
    # a gift that is not streakable has no running combo
    for key in ("n1", "n2"):
        r = await bob.ok("gift", room="r1", gift="rainbow_puke", count=2, key=key)
        assert r["combo"] == 2
    await until_seq(alice, "r1", 10)
    gifts = [
        (e["from"], e["gift"], e["count"], e["combo"]) for e in alice.events if e["ev"] == "gift"
    ]
    assert gifts == [
        ("bob", "rose", 1, 1),
        ("bob", "rose", 1, 2),
        ("bob", "rose", 5, 7),
        ("bob", "rose", 3, 10),
        ("bob", "panda", 1, 1),
        ("carol", "rose", 2, 2),
        ("bob", "rose", 1, 11),
        ("bob", "rainbow_puke", 2, 2),
        ("bob", "rainbow_puke", 2, 2),
    ]
    streak = {e["gift"]: e["streak"] for e in alice.events if e["ev"] == "gift"}
    assert streak == {"rose": True, "panda": True, "rainbow_puke": False}


async def test_gift_streak_resets_after_the_window(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    assert Catalog.load().streak_window_ms == 3000  # the default; shortened here
    path = tmp_path / "catalog.json"
    path.write_text(
        json.dumps(
            {
                "packages": {"p65": {"coins": 65, "cents": 99}},
                "gifts": {"rose": {"coins": 1, "streak": True}},
                "streak_window_ms": 1000,
            }
        )
    )
    server = await make_server(catalog=path)
    await live(server)
    await server.grant("bob", 100)
    bob = await viewer(server, "bob")
    assert (await bob.ok("gift", room="r1", gift="rose", count=2, key="a"))["combo"] == 2
    await asyncio.sleep(0.1)
    assert (await bob.ok("gift", room="r1", gift="rose", count=2, key="b"))["combo"] == 4
    await asyncio.sleep(1.2)  # more than the window since the last send
    assert (await bob.ok("gift", room="r1", gift="rose", count=1, key="c"))["combo"] == 1
    assert (await bob.ok("gift", room="r1", gift="rose", count=1, key="d"))["combo"] == 2


async def test_gift_errors_move_nothing(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    await server.grant("bob", 50)
    bob = await server.connect("bob", codec=codec)
    assert await bob.error("gift", room="r1", gift="rose", count=1, key="k") == "forbidden"
    await bob.ok("join", room="r1")
    assert await bob.error("gift", room="r1", gift="unicorn", count=1, key="k") == "not_found"
    assert (
        await bob.error("gift", room="r1", gift="rainbow_puke", count=1, key="k")
        == "insufficient_funds"
    )
    assert (
        await bob.error("gift", room="r1", gift="rose", count=51, key="k") == "insufficient_funds"
    )
    for count in (0, -1, 10_000, 1.0, "1"):
        assert (
            await bob.error("gift", room="r1", gift="rose", count=count, key="k") == "bad_request"
        )
    assert await bob.error("gift", room="r1", gift="rose", count=1) == "bad_request"  # no key
    assert (await bob.ok("wallet"))["coins"] == 50
    # the failed requests did not use up the key
    assert (await bob.ok("gift", room="r1", gift="rose", count=50, key="k"))["coins"] == 0
    await alice.ok("room_close", room="r1")
    await bob.event("room_closed")
    await server.grant("bob", 10, key="more")
    assert await bob.error("gift", room="r1", gift="rose", count=1, key="k2") == "not_live"
    assert (await bob.ok("wallet"))["coins"] == 10
    assert alice.seqs("r1") == [2, 3] or await until_seq(alice, "r1", 3) == [2, 3]
    report = await server.audit()
    assert report["ok"], report


async def test_daily_spend_limit(make_server: ServerFactory, codec: str) -> None:
    server = await make_server(day_limit=100)
    await live(server, codec=codec)
    await server.grant("bob", 1000)
    bob = await viewer(server, "bob", codec=codec)
    assert (await bob.ok("gift", room="r1", gift="rose", count=60, key="a"))["coins"] == 940
    reply = await bob.call("gift", room="r1", gift="rose", count=41, key="b")
    assert reply["error"]["code"] == "limit_exceeded" and "100" in reply["error"]["message"]
    assert (await bob.ok("wallet"))["coins"] == 940
    assert (await bob.ok("gift", room="r1", gift="rose", count=40, key="b"))["coins"] == 900
    assert await bob.error("gift", room="r1", gift="rose", count=1, key="c") == "limit_exceeded"
    # not enough coins is reported before the limit
    await server.grant("carol", 5)
    carol = await viewer(server, "carol", codec=codec)
    assert (
        await carol.error("gift", room="r1", gift="rainbow_puke", count=1, key="x")
        == "insufficient_funds"
    )
    report = await server.audit()
    assert report["ok"], report


# -- events: seq grows by exactly one ------------------------------------------------------


async def test_logged_events_seq_grows_by_one(server: Running, codec: str) -> None:
    alice = await live(server, codec=codec)
    await server.grant("bob", 500)
    bob = await viewer(server, "bob", codec=codec)
    observer = await viewer(server, "obs", codec=codec)
    await bob.ok("chat", room="r1", text="a")
    await bob.ok("gift", room="r1", gift="rose", count=1, key="1")
    await bob.ok("like", room="r1", count=3)
    await alice.ok("chat", room="r1", text="b")
    await bob.ok("gift", room="r1", gift="panda", count=1, key="2")
    await alice.ok("room_close", room="r1")
    await alice.ok("room_open", room="r1", title="again")
    await bob.ok("chat", room="r1", text="c")
    assert await until_seq(observer, "r1", 8) == [2, 3, 4, 5, 6, 7, 8]
    names = [e["ev"] for e in observer.events if "seq" in e]
    assert names == ["chat", "gift", "chat", "gift", "room_closed", "room_open", "chat"]
    # the leaderboard a gift changed goes out at the tick after the gift's own
    await observer.wait(lambda: any(e["ev"] == "top" for e in observer.events))
    unlogged = {e["ev"] for e in observer.events if "seq" not in e}
    assert unlogged <= {"viewers", "like", "top"} and {"viewers", "top"} <= unlogged
    assert all(e["room"] == "r1" for e in observer.events)


# -- rate limiting and abuse ------------------------------------------------------------


async def test_rate_limited(make_server: ServerFactory, codec: str) -> None:
    server = await make_server(ops_per_second=1, ops_burst=4)
    bob = await server.connect("bob", codec=codec)  # hello counts like any op: 3 left
    assert [(await bob.call("wallet"))["ok"] for _ in range(3)] == [True, True, True]
    reply = await bob.call("wallet")
    assert reply["ok"] is False and reply["error"]["code"] == "rate_limited"
    await asyncio.sleep(1.1)  # the bucket refills at 1 per second
    assert (await bob.call("wallet"))["ok"] is True
    other = await server.connect("carol", codec=codec)  # the limit is per connection
    assert (await other.call("wallet"))["ok"] is True


async def test_rate_limited_gift_moves_nothing(make_server: ServerFactory) -> None:
    server = await make_server(ops_per_second=0.5, ops_burst=3)
    await live(server)
    await server.grant("bob", 100)
    bob = await viewer(server, "bob")  # hello and join used two tokens
    await bob.ok("gift", room="r1", gift="rose", count=1, key="a")
    assert await bob.error("gift", room="r1", gift="rose", count=1, key="b") == "rate_limited"
    assert await bob.error("gift", room="r1", gift="rose", count=1, key="b") == "rate_limited"
    again = await server.connect("bob")  # another connection has its own bucket
    assert (await again.ok("wallet"))["coins"] == 99


async def test_repeated_rate_limit_closes_4429(make_server: ServerFactory, codec: str) -> None:
    server = await make_server(ops_per_second=0.01, ops_burst=3, abuse_limit=5)
    bob = await server.connect("bob", codec=codec)  # hello used one token
    codes = [(await bob.call("wallet")).get("error", {}).get("code") for _ in range(7)]
    assert codes == [None, None, *["rate_limited"] * 5]
    assert await bob.closed() == 4429


async def test_repeated_abuse_closes_4400(server: Running, codec: str) -> None:
    bob = await server.connect("bob", codec=codec)
    # 19 bad requests, then a good one resets the count
    for _ in range(19):
        assert await bob.error("gift", room="r1", gift="rose", count=0, key="k") == "bad_request"
    await bob.ok("wallet")
    for _ in range(19):
        assert await bob.error("nonsense") == "bad_request"
    assert (await bob.ok("wallet"))["coins"] == 0
    for _ in range(20):
        assert await bob.error("nonsense") == "bad_request"
    assert await bob.closed() == 4400


async def test_business_errors_are_not_abuse(server: Running) -> None:
    bob = await server.connect("bob")
    for _ in range(30):
        assert await bob.error("join", room="nowhere") == "not_found"
    assert (await bob.ok("wallet"))["coins"] == 0


# -- frame size ------------------------------------------------------------------------


async def test_oversize_frame_closes_1009(server: Running, codec: str) -> None:
    bob = await server.connect("bob", codec=codec)
    other = await server.connect("carol", codec=codec)
    # just under the limit is answered (the text is too long for chat, so bad_request)
    near = {"id": 1, "op": "chat", "room": "r1", "text": "x" * (64 * 1024 - 100)}
    reply = await bob.request(near)
    assert reply["error"]["code"] == "bad_request"
    await bob.send_raw(bob.encode({"id": 2, "op": "chat", "room": "r1", "text": "x" * 70_000}))
    assert await bob.closed() == 1009
    assert (await other.ok("wallet"))["coins"] == 0


async def test_frame_limit_is_configurable(make_server: ServerFactory) -> None:
    server = await make_server(max_frame=1024)
    bob = await server.connect("bob")
    await bob.send_raw(json.dumps({"id": 1, "op": "chat", "room": "r", "text": "y" * 1100}))
    assert await bob.closed() == 1009


# -- slow consumers ------------------------------------------------------------------------


async def non_reader(server: Running, user: str, codec: str) -> ClientConnection:
    """A client signed in and joined to r1 that then stops reading: a small receive buffer
    and a client queue of one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    host, port = server.node.settings.host, server.node.ws_port
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    ws = await connect(server.ws_url, sock=sock, subprotocols=[codec], max_queue=1)  # type: ignore[list-item]

    def enc(message: dict[str, Any]) -> str | bytes:
        return msgpack.packb(message) if codec == MSGPACK else json.dumps(message)

    await ws.send(enc({"id": 1, "op": "hello", "token": server.token(user)}))
    await ws.send(enc({"id": 2, "op": "join", "room": "r1"}))
    return ws


async def chat_until_cut(server: Running, alice: Client, *readers: Client) -> int:
    """Chat 2 KB events into r1, 10 at a time, until the server cut a slow consumer; how
    many were sent. (10 a time: one tick's batch, about 20 KB, stays under the 32 KiB send
    buffer limit of the clients that do read.) The next 10 go once alice and ``readers``
    have every chat so far: a client that reads never has more than one batch waiting
    however busy the machine (without that wait, alice was once cut on a busy machine)."""
    text = "🎉" * 500  # 2 KB per chat event
    sent = 0
    deadline = time.monotonic() + scaled(20)
    while server.node.metrics.slow_consumers._value.get() == 0:  # noqa: SLF001
        assert time.monotonic() < deadline, "the client that stopped reading was never cut"
        await asyncio.gather(*(alice.ok("chat", room="r1", text=text) for _ in range(10)))
        sent += 10
        for reader in (alice, *readers):
            await until(lambda r=reader, n=sent: sum(e["ev"] == "chat" for e in r.events) >= n)
    return sent


async def test_slow_consumer_is_cut_4409(make_server: ServerFactory, codec: str) -> None:
    server = await make_server(
        send_buffer_limit=32 * 1024, ops_per_second=100_000, ops_burst=100_000
    )
    alice = await live(server, codec=codec)
    fast = await viewer(server, "fast", codec=codec)
    slow = await non_reader(server, "slow", codec)
    sent = await chat_until_cut(server, alice, fast)
    # the slow client now reads what was buffered, then sees the close code
    code = None
    try:
        async with asyncio.timeout(scaled(10)):
            while True:
                await slow.recv()
    except ConnectionClosed:
        code = slow.close_code
    assert code == 4409
    # the clients that keep reading got everything and were not cut
    total = 1 + sent
    assert await until_seq(fast, "r1", total) == list(range(2, total + 1))
    assert (await fast.ok("wallet"))["coins"] == 0
    assert (await alice.ok("chat", room="r1", text="still here"))["ok"]
    await fast.event("chat", lambda e: e["text"] == "still here")


async def test_a_cut_client_that_never_reads_again_is_dropped(make_server: ServerFactory) -> None:
    # the close frame waits behind data the client never reads: after the close timeout
    # (2 s) the server drops the connection instead of holding it and its buffer
    server = await make_server(
        send_buffer_limit=32 * 1024, ops_per_second=100_000, ops_burst=100_000
    )
    alice = await live(server)
    stalled = await non_reader(server, "stalled", JSON)
    held = len(server.node.connections)
    await chat_until_cut(server, alice)
    deadline = time.monotonic() + scaled(10)
    while len(server.node.connections) >= held:
        assert time.monotonic() < deadline, "the server still holds the stalled connection"
        await asyncio.sleep(0.05)
    assert (await alice.ok("chat", room="r1", text="still here"))["ok"]
    stalled.transport.abort()


# -- shutdown --------------------------------------------------------------------------


async def test_server_stop_closes_1001(server: Running, codec: str) -> None:
    await live(server, codec=codec)
    bob = await viewer(server, "bob", codec=codec)
    idle = await server.raw(codec)
    await server.node.stop()
    assert await bob.closed() == 1001
    assert await idle.closed() == 1001


# -- internal ------------------------------------------------------------------------------


async def test_unexpected_failure_is_internal(
    server: Running, codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No normal flow answers ``internal``; a fault is injected to see the one mapping:
    the reply keeps its id, says nothing about the cause, and the connection stays open."""
    from livesrv.services import wallet

    bob = await server.connect("bob", codec=codec)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(wallet, "read", broken)
    reply = await bob.request({"id": "w1", "op": "wallet"})
    assert reply == {
        "id": "w1",
        "ok": False,
        "error": {"code": "internal", "message": "internal error"},
    }
    monkeypatch.undo()
    assert body(await bob.ok("wallet")) == {"coins": 0, "diamonds": 0, "pending": 0}

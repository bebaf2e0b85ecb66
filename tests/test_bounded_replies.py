"""Bounded replies over the wire: `join since` replays at most replay_limit events (the
newest), `history` pages the older ones, and every listing is paged by cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from livesrv.store.keys import LEGACY_LIVE_ROOMS, LEGACY_PRODUCTS, LIVE_ROOMS, PRODUCTS
from tests.client import Client
from tests.conftest import Running, ServerFactory

N = 20  # replay_limit in these tests
FAST = {"ops_per_second": 10_000, "ops_burst": 10_000}


async def until_seq(c: Client, room: str, seq: int) -> list[int]:
    await c.wait(lambda: max(c.seqs(room), default=0) >= seq)
    return c.seqs(room)


def replay_frames(c: Client, room: str) -> list[list[dict[str, Any]]]:
    """The frames that carried logged events of ``room``, as lists of those events."""
    out = []
    for frame in c.frames:
        msgs = frame if isinstance(frame, list) else [frame]
        logged = [m for m in msgs if m.get("room") == room and "seq" in m and "ev" in m]
        if logged:
            out.append(logged)
    return out


@pytest.fixture
async def server(make_server: ServerFactory) -> Running:
    return await make_server(replay_limit=N, **FAST)


@pytest.fixture
async def http(server: Running) -> AsyncIterator[Callable[[str], Awaitable[tuple[int, Any]]]]:
    auth = {"Authorization": "Bearer " + server.token("ops", "admin")}
    async with aiohttp.ClientSession() as session:

        async def get(path: str) -> tuple[int, Any]:
            async with session.get(server.http_url + path, headers=auth) as resp:
                return resp.status, await resp.json()

        yield get


# -- join since and history ---------------------------------------------------------------


async def test_join_since_replays_newest_n_then_history_reaches_seq_1(server: Running) -> None:
    host = await server.connect("br_host", "creator")
    await host.ok("room_open", room="br_big", title="big")  # seq 1
    await host.ok("join", room="br_big")
    for i in range(3 * N):
        await host.ok("chat", room="br_big", text=f"m{i}")
    last = 3 * N + 1
    viewer = await server.connect("br_viewer")
    r = await viewer.ok("join", room="br_big", since=0)
    assert (r["seq"], r["gap"], r["replay_from"]) == (last, True, last - N + 1)
    assert await until_seq(viewer, "br_big", last) == list(range(last - N + 1, last + 1))
    assert max(len(f) for f in replay_frames(viewer, "br_big")) <= N
    # live events carry on right after the replay, with no hole
    await host.ok("chat", room="br_big", text="live")
    assert await until_seq(viewer, "br_big", last + 1) == list(range(last - N + 1, last + 2))

    # history pages backwards from the first replayed seq down to seq 1
    seen: list[int] = []
    before: int | None = r["replay_from"]
    pages = 0
    while before is not None:
        page = await viewer.ok("history", room="br_big", before=before, limit=N)
        seqs = [e["seq"] for e in page["events"]]
        assert seqs == sorted(seqs) and len(seqs) <= N and all(s < before for s in seqs)
        seen = seqs + seen
        before = page["next"]
        pages += 1
        assert pages <= 5
    assert seen == list(range(1, r["replay_from"]))
    first = (await viewer.ok("history", room="br_big", before=2))["events"]
    assert [(e["seq"], e["ev"], e["title"]) for e in first] == [(1, "room_open", "big")]
    chats = (await viewer.ok("history", room="br_big", before=4, limit=2))["events"]
    assert [(e["seq"], e["text"]) for e in chats] == [(2, "m0"), (3, "m1")]
    nothing = await viewer.ok("history", room="br_big", before=1)
    assert (nothing["events"], nothing["next"]) == ([], None)


async def test_history_limits_and_membership(server: Running) -> None:
    host = await server.connect("hl_host", "creator")
    await host.ok("room_open", room="hl_room", title="t")
    outsider = await server.connect("hl_outsider")
    assert await outsider.error("history", room="hl_room", before=2) == "forbidden"
    await outsider.ok("join", room="hl_room")
    assert await outsider.error("history", room="hl_room", before=2, limit=N + 1) == "bad_request"
    assert await outsider.error("history", room="hl_room", before=2, limit=0) == "bad_request"
    assert await outsider.error("history", room="hl_room", before=0) == "bad_request"
    assert await outsider.error("history", room="hl_room") == "bad_request"
    page = await outsider.ok("history", room="hl_room", before=2, limit=N)
    assert [e["seq"] for e in page["events"]] == [1] and page["next"] is None
    await outsider.ok("leave", room="hl_room")
    assert await outsider.error("history", room="hl_room", before=2) == "forbidden"


async def test_reconnect_that_fits_is_gap_free(server: Running) -> None:
    host = await server.connect("rf_host", "creator")
    await host.ok("room_open", room="rf_room", title="t")
    await host.ok("join", room="rf_room")
    viewer = await server.connect("rf_viewer")
    await viewer.ok("join", room="rf_room")
    await host.ok("chat", room="rf_room", text="before")
    assert await until_seq(viewer, "rf_room", 2) == [2]
    await viewer.close()
    for i in range(N):  # exactly N missed: still fits
        await host.ok("chat", room="rf_room", text=f"away {i}")
    again = await server.connect("rf_viewer")
    r = await again.ok("join", room="rf_room", since=2)
    assert (r["seq"], r["gap"], r["replay_from"]) == (N + 2, False, 3)
    await host.ok("chat", room="rf_room", text="after")
    got = await until_seq(again, "rf_room", N + 3)
    assert got == list(range(3, N + 4))
    texts = [e["text"] for e in again.events if e["ev"] == "chat"]
    assert texts == [f"away {i}" for i in range(N)] + ["after"]
    # nothing missed: no replay at all
    third = await server.connect("rf_viewer")
    r = await third.ok("join", room="rf_room", since=N + 3)
    assert (r["gap"], r["replay_from"]) == (False, None)


# -- paged listings -------------------------------------------------------------------------


async def walk_ws(c: Client, op: str, field: str, limit: int, **args: Any) -> list[Any]:
    items: list[Any] = []
    cursor = None
    for _ in range(20):
        extra = {"cursor": cursor} if cursor else {}
        page = await c.ok(op, limit=limit, **args, **extra)
        assert len(page[field]) <= limit
        items.extend(page[field])
        cursor = page["next"]
        if cursor is None:
            return items
        assert isinstance(cursor, str)
    raise AssertionError("the listing never ended")


async def walk_http(
    get: Callable[[str], Awaitable[tuple[int, Any]]], path: str, field: str, limit: int
) -> list[Any]:
    items: list[Any] = []
    cursor = None
    sep = "&" if "?" in path else "?"
    for _ in range(20):
        url = f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        status, page = await get(url)
        assert status == 200, page
        assert len(page[field]) <= limit
        items.extend(page[field])
        cursor = page["next"]
        if cursor is None:
            return items
    raise AssertionError("the listing never ended")


async def test_rooms_and_products_pages(server: Running, http: Any) -> None:
    host = await server.connect("pg_host", "creator")
    rooms = [f"pg_room{i:02d}" for i in range(10)]
    for i, room in enumerate(rooms):  # a creator has a few live rooms at most: use several
        opener = await server.connect(f"pg_creator{i // 3}", "creator")
        await opener.ok("room_open", room=room, title=room)
    await host.ok("room_open", room="pg_closed", title="closed")
    await host.ok("room_close", room="pg_closed")
    viewer = await server.connect("pg_viewer")
    listed = await walk_ws(viewer, "rooms", "rooms", 4)
    assert [r["room"] for r in listed] == rooms
    assert [r["room"] for r in await walk_http(http, "/api/rooms", "rooms", 4)] == rooms
    first = await viewer.ok("rooms", limit=4)
    assert [r["room"] for r in first["rooms"]] == rooms[:4] and first["next"]

    products = [f"pg_prod{i:02d}" for i in range(10)]
    for p in products:
        await host.ok("product_create", product=p, title=p, price=10, stock=5)
    other = await server.connect("pg_other", "creator")
    await other.ok("product_create", product="pg_zz_other", title="o", price=10, stock=5)
    listed = await walk_ws(viewer, "products", "products", 4)
    assert [p["product"] for p in listed] == [*products, "pg_zz_other"]
    mine = await walk_ws(viewer, "products", "products", 4, seller="pg_host")
    assert [p["product"] for p in mine] == products
    admin = await walk_http(http, "/api/products", "products", 4)
    assert [p["product"] for p in admin] == [*products, "pg_zz_other"]

    # limits and cursors
    assert await viewer.error("rooms", limit=201) == "bad_request"
    assert await viewer.error("rooms", limit=0) == "bad_request"
    assert await viewer.error("products", limit=201) == "bad_request"
    assert await viewer.error("rooms", cursor="not a cursor") == "bad_request"
    assert await viewer.error("rooms", cursor="eyJ4Ijox") == "bad_request"
    assert await viewer.error("rooms", cursor=first["next"] + "x") == "bad_request"
    products_cursor = (await viewer.ok("products", limit=2))["next"]
    assert await viewer.error("rooms", cursor=products_cursor) == "bad_request"
    assert len((await viewer.ok("rooms", limit=200))["rooms"]) == 10
    assert len((await viewer.ok("rooms"))["rooms"]) == 10  # default 50
    for path in ("/api/rooms?limit=201", "/api/rooms?limit=x", "/api/products?cursor=zzz"):
        status, body = await http(path)
        assert (status, body["error"]["code"]) == (400, "bad_request"), path


async def test_orders_pages(server: Running, http: Any) -> None:
    host = await server.connect("po_host", "creator")
    await host.ok("room_open", room="po_room", title="shop")
    await host.ok("product_create", product="po_mug", title="mug", price=10, stock=100)
    await server.grant("po_buyer", 1000)
    await server.grant("po_second", 1000)
    buyer = await server.connect("po_buyer")
    second = await server.connect("po_second")
    await buyer.ok("join", room="po_room")
    await second.ok("join", room="po_room")
    mine = []
    for i in range(10):
        mine.append(
            (await buyer.ok("buy", room="po_room", product="po_mug", qty=1, key=f"k{i}"))["order"]
        )
    theirs = [
        (await second.ok("buy", room="po_room", product="po_mug", qty=2, key=f"k{i}"))["order"]
        for i in range(2)
    ]
    newest_first = mine[::-1]
    assert [o["order"] for o in await walk_ws(buyer, "orders", "orders", 4)] == newest_first
    by_user = await walk_http(http, "/api/orders?user=po_buyer", "orders", 4)
    assert [o["order"] for o in by_user] == newest_first
    everyone = await walk_http(http, "/api/orders", "orders", 5)
    assert sorted(o["order"] for o in everyone) == sorted(mine + theirs)
    assert len(everyone) == 12

    # a new order while paging does not shift the pages of the older ones
    first = await buyer.ok("orders", limit=4)
    await buyer.ok("buy", room="po_room", product="po_mug", qty=1, key="k-late")
    rest = await walk_ws_from(buyer, "orders", "orders", 4, first["next"])
    assert [o["order"] for o in first["orders"] + rest] == newest_first

    assert await buyer.error("orders", limit=201) == "bad_request"
    assert await buyer.error("orders", cursor="bad") == "bad_request"
    for path in (
        "/api/orders?limit=201",
        "/api/orders?cursor=bad",
        "/api/orders?user=x&cursor=bad",
    ):
        status, body = await http(path)
        assert (status, body["error"]["code"]) == (400, "bad_request"), path


async def walk_ws_from(c: Client, op: str, field: str, limit: int, cursor: str) -> list[Any]:
    items: list[Any] = []
    while cursor is not None:
        page = await c.ok(op, limit=limit, cursor=cursor)
        items.extend(page[field])
        cursor = page["next"]
    return items


async def test_withdrawals_pages(server: Running, http: Any) -> None:
    await server.grant("pw_whale", 60_000)
    whale = await server.connect("pw_whale")
    creators = {}
    for name, gifts in (("pw_star", 4), ("pw_other", 1)):
        c = await server.connect(name, "creator")
        await c.ok("room_open", room=f"{name}_room", title="t")
        await whale.ok("join", room=f"{name}_room")
        for i in range(gifts):  # 5000 diamonds each
            await whale.ok(
                "gift", room=f"{name}_room", gift="interstellar", count=1, key=f"{name}{i}"
            )
        creators[name] = c
    await server.settle()
    star = [
        (await creators["pw_star"].ok("withdraw", diamonds=2000, key=f"w{i}"))["withdrawal"]
        for i in range(10)
    ]
    other = [
        (await creators["pw_other"].ok("withdraw", diamonds=2000, key=f"w{i}"))["withdrawal"]
        for i in range(2)
    ]
    listed = await walk_ws(creators["pw_star"], "withdrawals", "withdrawals", 4)
    assert sorted(w["withdrawal"] for w in listed) == sorted(star)
    assert len(listed) == 10 and {w["user"] for w in listed} == {"pw_star"}
    created = [w["created"] for w in listed]
    assert created == sorted(created, reverse=True)

    everyone = await walk_http(http, "/api/withdrawals", "withdrawals", 5)
    assert sorted(w["withdrawal"] for w in everyone) == sorted(star + other)
    assert len(everyone) == 12
    assert [w["created"] for w in everyone] == sorted(
        (w["created"] for w in everyone), reverse=True
    )
    requested = await walk_http(http, "/api/withdrawals?status=requested", "withdrawals", 3)
    assert len(requested) == 12

    assert await creators["pw_star"].error("withdrawals", limit=500) == "bad_request"
    assert await creators["pw_star"].error("withdrawals", cursor="@@@") == "bad_request"
    status, body = await http("/api/withdrawals?limit=999")
    assert (status, body["error"]["code"]) == (400, "bad_request")


async def test_index_written_by_an_older_version_is_adopted(server: Running, http: Any) -> None:
    """A store from before paged listings kept live rooms and products in plain sets."""
    host = await server.connect("lg_host", "creator")
    await host.ok("room_open", room="lg_old_room", title="old")
    await host.ok("room_open", room="lg_new_room", title="new")
    await host.ok("product_create", product="lg_old_prod", title="old", price=10, stock=5)
    store = aioredis.Redis.from_url(server.settings.redis_url, decode_responses=True)
    try:  # put two names back where the previous version kept them
        await store.zrem(LIVE_ROOMS, "lg_old_room")
        await store.sadd(LEGACY_LIVE_ROOMS, "lg_old_room")
        await store.zrem(PRODUCTS, "lg_old_prod")
        await store.sadd(LEGACY_PRODUCTS, "lg_old_prod")
    finally:
        await store.aclose()
    viewer = await server.connect("lg_viewer")
    rooms = [r["room"] for r in await walk_ws(viewer, "rooms", "rooms", 1)]
    assert rooms == ["lg_new_room", "lg_old_room"]
    assert [p["product"] for p in (await viewer.ok("products"))["products"]] == ["lg_old_prod"]
    await host.ok("room_close", room="lg_old_room")
    assert [r["room"] for r in (await viewer.ok("rooms"))["rooms"]] == ["lg_new_room"]
    status, body = await http("/api/rooms")
    assert status == 200 and [r["room"] for r in body["rooms"]] == ["lg_new_room"]

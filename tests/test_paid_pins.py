"""Paid pinned messages (issue 13, item 3): the tier rules without sockets, then over the
wire: pay, pin, the creator's share through settlement, pins in the join reply (and after a
reconnect) until they expire, unpin, the day limit, and a clean audit.
"""

from __future__ import annotations

import asyncio
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from livesrv.catalog import Catalog
from livesrv.errors import BadRequest
from livesrv.services import paid_chat, wallet
from livesrv.services.paid_chat import live_pins, pin_seconds
from tests.client import Client
from tests.conftest import Running, ServerFactory
from tests.timing import scaled

TIERS = ((5, 0), (100, 120), (5000, 3600))


# -- rules (no socket) ----------------------------------------------------------------


def test_pin_seconds_by_tier() -> None:
    assert pin_seconds(TIERS, 5) == 0
    assert pin_seconds(TIERS, 99) == 0
    assert pin_seconds(TIERS, 100) == 120
    assert pin_seconds(TIERS, 4999) == 120
    assert pin_seconds(TIERS, 5000) == 3600
    assert pin_seconds(TIERS, 1_000_000) == 3600
    with pytest.raises(BadRequest, match="at least 5 coins"):
        pin_seconds(TIERS, 4)


def test_live_pins_filter_and_order() -> None:
    def pin(p: str, coins: int, until: int) -> str:
        return json.dumps({"pin": p, "coins": coins, "until": until})

    meta = {
        "seq": "9",
        "pin:a": pin("a", 100, 2000),
        "pin:b": pin("b", 5000, 1500),
        "pin:c": pin("c", 100, 999),  # ended
        "pin:d": "",  # unpinned
        "pin:e": pin("e", 100, 3000),
    }
    shown, ended = live_pins(meta, 1000)
    assert [p["pin"] for p in shown] == ["b", "e", "a"]
    assert sorted(ended) == ["pin:c", "pin:d"]


def _catalog(**change: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "packages": {"p1": {"coins": 10, "cents": 15}},
        "gifts": {"g": {"coins": 2, "streak": True}},
    }
    d.update(change)
    return d


def test_catalogue_tiers() -> None:
    assert Catalog.from_dict(_catalog()).paid_chat_tiers == TIERS
    assert Catalog.load().paid_chat_tiers == TIERS and Catalog.load().paid_chat_share_bps == 5000
    cat = Catalog.from_dict(_catalog(paid_chat_tiers=[[1, 0], [10, 2]], paid_chat_share_bps=7000))
    assert cat.paid_chat_tiers == ((1, 0), (10, 2)) and cat.paid_chat_share_bps == 7000
    for bad in (
        {"paid_chat_tiers": []},
        {"paid_chat_tiers": [[0, 0]]},
        {"paid_chat_tiers": [[10, 0], [10, 5]]},
        {"paid_chat_tiers": [[10, -1]]},
        {"paid_chat_tiers": [[10, "x"]]},
        {"paid_chat_share_bps": 10001},
    ):
        with pytest.raises(ValueError, match="invalid catalogue"):
            Catalog.from_dict(_catalog(**bad))


# -- over the wire ----------------------------------------------------------------------


async def _room(server: Running, creator: str, room: str) -> Client:
    c = await server.connect(creator, "creator")
    await c.ok("room_open", room=room, title="live")
    await c.ok("join", room=room)
    return c


async def _viewer(server: Running, user: str, room: str, coins: int) -> Client:
    if coins:
        await server.grant(user, coins)
    v = await server.connect(user)
    await v.ok("join", room=room)
    return v


async def _audit_ok(server: Running) -> dict[str, dict[str, Any]]:
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    return {c["name"]: c for c in report["checks"]}


async def test_paid_message_pins_pays_and_settles(server: Running) -> None:
    creator = await _room(server, "pc_cr", "pc_room")
    v = await _viewer(server, "pc_v", "pc_room", 1000)
    assert (await v.ok("catalog"))["paid_chat_tiers"] == [[5, 0], [100, 120], [5000, 3600]]

    before = int(time.time() * 1000)
    r = await v.ok("paid_chat", room="pc_room", text="hello!", coins=100, key="m1")
    after = int(time.time() * 1000)
    assert r["coins"] == 900 and r["pin"] and isinstance(r["seq"], int)
    assert before + 120_000 <= r["until"] <= after + 120_000
    ev = await creator.event("paid_chat", lambda e: e["pin"] == r["pin"])
    assert ev["from"] == "pc_v" and ev["text"] == "hello!" and ev["coins"] == 100
    assert ev["until"] == r["until"] and ev["seq"] == r["seq"]

    # a retry answers the first result and moves nothing; other arguments conflict
    again = await v.ok("paid_chat", room="pc_room", text="hello!", coins=100, key="m1")
    assert {k: again[k] for k in ("coins", "pin", "until", "seq")} == {
        k: r[k] for k in ("coins", "pin", "until", "seq")
    }
    assert await v.error("paid_chat", room="pc_room", text="other", coins=100, key="m1") == (
        "idempotency_conflict"
    )

    # the lowest tier: shown in chat, not pinned
    low = await v.ok("paid_chat", room="pc_room", text="hi", coins=5, key="m2")
    assert low["until"] == 0 and low["coins"] == 895

    # refusals move nothing
    assert await v.error("paid_chat", room="pc_room", text="x", coins=4, key="m3") == (
        "bad_request"
    )
    assert await v.error("paid_chat", room="pc_room", text="x", coins=5000, key="m4") == (
        "insufficient_funds"
    )
    assert await creator.error("paid_chat", room="pc_room", text="x", coins=5, key="m5") == (
        "forbidden"
    )
    outsider = await server.connect("pc_out")
    await server.grant("pc_out", 100)
    assert await outsider.error("paid_chat", room="pc_room", text="x", coins=5, key="m6") == (
        "forbidden"
    )
    assert (await v.ok("wallet"))["coins"] == 895

    # a new viewer's join shows the pinned one only
    w = await _viewer(server, "pc_w", "pc_room", 0)
    joined = await w.ok("join", room="pc_room")
    assert [p["pin"] for p in joined["pins"]] == [r["pin"]]
    assert joined["pins"][0] == {
        "from": "pc_v",
        "text": "hello!",
        "coins": 100,
        "pin": r["pin"],
        "until": r["until"],
    }

    # the creator earns half through settlement, like a gift
    checks = await _audit_ok(server)
    assert (await creator.ok("wallet"))["diamonds"] == 105 // 2
    assert checks["coins_conserved"]["by_kind"]["spend:paid_chat"] == 105
    assert checks["boxes_conserved"]["paid_chat_spent"] == 105


async def test_pins_survive_a_reconnect_and_unpin(server: Running) -> None:
    creator = await _room(server, "pu_cr", "pu_room")
    v = await _viewer(server, "pu_v", "pu_room", 10_000)
    big = await v.ok("paid_chat", room="pu_room", text="big", coins=5000, key="b1")
    mid = await v.ok("paid_chat", room="pu_room", text="mid", coins=100, key="b2")
    assert big["until"] - mid["until"] > 3_000_000

    # a reconnect: the join reply carries the pins, the most paid first; the replay too
    seq = big["seq"] - 1
    await v.close()
    v = await server.connect("pu_v")
    joined = await v.ok("join", room="pu_room", since=seq)
    assert [p["pin"] for p in joined["pins"]] == [big["pin"], mid["pin"]]
    await v.wait(lambda: len([e for e in v.events if e["ev"] == "paid_chat"]) == 2)

    # only the creator (or a moderator, or an admin) unpins; no refund
    assert await v.error("unpin", room="pu_room", pin=big["pin"]) == "forbidden"
    u = await creator.ok("unpin", room="pu_room", pin=big["pin"])
    ev = await v.event("unpinned")
    assert ev == {**ev, "pin": big["pin"], "by": "pu_cr", "seq": u["seq"]}
    assert await creator.error("unpin", room="pu_room", pin=big["pin"]) == "not_found"
    assert await creator.error("unpin", room="pu_room", pin="nosuch") == "not_found"
    admin = await server.connect("pu_admin", "admin")
    await admin.ok("unpin", room="pu_room", pin=mid["pin"])
    assert (await v.ok("join", room="pu_room"))["pins"] == []
    assert (await v.ok("wallet"))["coins"] == 10_000 - 5100
    await _audit_ok(server)


async def test_short_tier_pin_expires(make_server: ServerFactory, tmp_path: Path) -> None:
    cat = json.loads(resources.files("livesrv").joinpath("catalog.json").read_text())
    cat["paid_chat_tiers"] = [[5, 0], [10, 1], [100, 120]]
    path = tmp_path / "short.json"
    path.write_text(json.dumps(cat))
    server = await make_server(catalog=path)
    await _room(server, "px_cr", "px_room")
    v = await _viewer(server, "px_v", "px_room", 100)
    r = await v.ok("paid_chat", room="px_room", text="brief", coins=10, key="k")
    first = await v.ok("join", room="px_room")
    assert [p["pin"] for p in first["pins"]] == [r["pin"]] or r["until"] <= time.time() * 1000

    async with asyncio.timeout(scaled(10)):
        while (await v.ok("join", room="px_room"))["pins"]:
            await asyncio.sleep(0.1)
    assert time.time() * 1000 >= r["until"] - 50


async def test_paid_messages_count_against_the_day_limit(make_server: ServerFactory) -> None:
    server = await make_server(day_limit=150)
    await _room(server, "pl_cr", "pl_room")
    v = await _viewer(server, "pl_v", "pl_room", 1000)
    await v.ok("gift", room="pl_room", gift="rainbow_puke", count=1, key="g")
    assert await v.error("paid_chat", room="pl_room", text="x", coins=100, key="p") == (
        "limit_exceeded"
    )
    await v.ok("paid_chat", room="pl_room", text="x", coins=50, key="p2")
    assert (await v.ok("wallet"))["coins"] == 850
    await _audit_ok(server)


async def test_admin_api_pins_and_boxes(make_server: ServerFactory) -> None:
    server = await make_server(box_min_seconds=1)
    await _room(server, "pa_cr", "pa_room")
    v = await _viewer(server, "pa_v", "pa_room", 1000)
    r = await v.ok("paid_chat", room="pa_room", text="pin me", coins=100, key="k")
    d = await v.ok("box_drop", room="pa_room", coins=50, seconds=60, key="b")
    auth = {"Authorization": f"Bearer {server.token('pa_admin', 'admin')}"}
    viewer = {"Authorization": f"Bearer {server.token('pa_v')}"}
    base = f"{server.http_url}/api/rooms/pa_room"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/pins", headers=auth) as resp:
            assert resp.status == 200
            assert [p["pin"] for p in (await resp.json())["pins"]] == [r["pin"]]
        async with http.get(f"{base}/boxes", headers=auth) as resp:
            assert resp.status == 200
            boxes = (await resp.json())["boxes"]
            assert [(b["box"], b["coins"], b["from"]) for b in boxes] == [(d["box"], 50, "pa_v")]
        async with http.get(f"{base}/boxes", headers=viewer) as resp:
            assert resp.status == 403
        async with http.post(f"{base}/pins/{r['pin']}/unpin", headers=auth) as resp:
            assert resp.status == 200 and isinstance((await resp.json())["seq"], int)
        async with http.post(f"{base}/pins/{r['pin']}/unpin", headers=auth) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "not_found"
        async with http.post(
            f"{server.http_url}/api/rooms/nosuch/pins/x/unpin", headers=auth
        ) as r2:
            assert r2.status == 404
    await v.event("unpinned", lambda e: e["pin"] == r["pin"] and e["by"] == "pa_admin")
    assert (await v.ok("join", room="pa_room"))["pins"] == []


async def test_a_paid_message_cut_after_the_debit_is_logged_and_pinned(server: Running) -> None:
    """A crash between the debit and the log: the settlement worker logs the message and
    its pin together, from the outbox entry; the client's retry answers the first result."""
    creator = await _room(server, "pk_cr", "pk_room")
    await server.grant("pk_v", 500)
    b = server.backend
    exp = wallet.generation_expiry(b)
    pid = paid_chat.pin_id("pk_v", "cut", exp)
    until = int(time.time() * 1000) + 120_000
    ev, meta = paid_chat.message_event("pk_room", "pk_v", "late", 100, pid, until)
    await wallet.spend(  # only the first step of paid_chat, as a killed process leaves it
        b,
        "pk_v",
        kind="paid_chat",
        amount=100,
        key="cut",
        digest=paid_chat.paid_digest("pk_room", "late", 100),
        payload={
            "room": "pk_room",
            "e": [["pk_cr", "paid_chat:5000", 5000]],
            "ev": ev,
            "evid": "pc:" + pid,
            "meta": list(meta),
            "x": exp,
        },
        extra_key=b.user("pk_v").wallet,
        exp=exp,
        reply={"pin": pid, "until": until},
    )
    logged = await creator.event("paid_chat", lambda e: e["pin"] == pid)
    v = await _viewer(server, "pk_v", "pk_room", 0)
    assert [p["pin"] for p in (await v.ok("join", room="pk_room"))["pins"]] == [pid]
    r = await v.ok("paid_chat", room="pk_room", text="late", coins=100, key="cut")
    assert (r["pin"], r["until"], r["seq"], r["coins"]) == (pid, until, logged["seq"], 400)
    await _audit_ok(server)
    assert (await creator.ok("wallet"))["diamonds"] == 50

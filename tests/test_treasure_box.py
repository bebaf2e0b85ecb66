"""Treasure boxes (issue 13, item 4): the split rule without sockets, then over the wire:
drop, concurrent claimers on two nodes, the server-timed opening, exact sums, the refund
when nobody claimed, retries and concurrent openers paying exactly once, a drop finished by
the settlement worker after a crash between its steps, the per-room bound, and the audit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from livesrv.errors import BadRequest
from livesrv.services import treasure, wallet
from livesrv.settings import Settings
from tests.client import Client
from tests.conftest import Running, ServerFactory
from tests.timing import scaled

FAST = {"box_min_seconds": 1}


# -- rules (no socket) ----------------------------------------------------------------


def test_split_equal_with_remainder_to_the_earliest() -> None:
    assert treasure.split_box(100, ["a", "b", "c"], "d") == [("a", 34), ("b", 33), ("c", 33)]
    assert treasure.split_box(1003, [f"u{i}" for i in range(20)], "d")[:4] == [
        ("u0", 51),
        ("u1", 51),
        ("u2", 51),
        ("u3", 50),
    ]
    assert treasure.split_box(3, ["a", "b", "c", "d", "e"], "x") == [
        ("a", 1),
        ("b", 1),
        ("c", 1),
        ("d", 0),
        ("e", 0),
    ]
    assert treasure.split_box(500, [], "dropper") == [("dropper", 500)]


@pytest.mark.parametrize("coins", [1, 2, 7, 99, 100, 1001, 999_999])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 50, 1000])
def test_split_never_loses_a_coin(coins: int, n: int) -> None:
    split = treasure.split_box(coins, [f"u{i}" for i in range(n)], "d")
    assert sum(c for _, c in split) == coins
    amounts = [c for _, c in split]
    assert amounts == sorted(amounts, reverse=True) and max(amounts) - min(amounts) <= 1


def test_countdown_range() -> None:
    s = Settings()
    treasure.check_seconds(s, 10)
    treasure.check_seconds(s, 300)
    for bad in (9, 301):
        with pytest.raises(BadRequest, match="between 10 and 300"):
            treasure.check_seconds(s, bad)


# -- over the wire ----------------------------------------------------------------------


async def _room(server: Running, creator: str, room: str) -> Client:
    c = await server.connect(creator, "creator")
    await c.ok("room_open", room=room, title="live")
    await c.ok("join", room=room)
    return c


async def _member(server: Running, user: str, room: str, coins: int = 0) -> Client:
    if coins:
        await server.grant(user, coins)
    v = await server.connect(user)
    await v.ok("join", room=room)
    return v


def _body(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k != "id"}


async def _audit_ok(server: Running) -> dict[str, dict[str, Any]]:
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    return {c["name"]: c for c in report["checks"]}


async def test_twenty_claimers_on_two_nodes_split_exactly(make_server: ServerFactory) -> None:
    one = await make_server(**FAST)
    two = await make_server(**FAST)
    creator = await _room(one, "tb_cr", "tb_room")
    dropper = await _member(one, "tb_drop", "tb_room", 2000)
    names = [f"tb_c{i:02d}" for i in range(20)]
    claimers = [await _member(one if i % 2 else two, n, "tb_room") for i, n in enumerate(names)]
    d = await dropper.ok("box_drop", room="tb_room", coins=1003, seconds=2, key="box1")
    box = d["box"]
    assert d["coins"] == 997 and d["opens_at"] > 0
    ev = await creator.event("box_drop", lambda e: e["box"] == box)
    assert ev["from"] == "tb_drop" and ev["coins"] == 1003 and ev["opens_at"] == d["opens_at"]
    seen = await claimers[3].ok("join", room="tb_room")
    assert seen["boxes"] == [
        {"box": box, "from": "tb_drop", "coins": 1003, "opens_at": d["opens_at"], "claimers": 0}
    ]

    # a retried drop is the same box, paid once
    again = await dropper.ok("box_drop", room="tb_room", coins=1003, seconds=2, key="box1")
    assert _body(again) == _body(d)
    assert await dropper.error("box_drop", room="tb_room", coins=5, seconds=2, key="box1") == (
        "idempotency_conflict"
    )

    # 20 concurrent claims, on two nodes: each a distinct place; repeats answer the first
    orders = await asyncio.gather(*(c.ok("box_claim", room="tb_room", box=box) for c in claimers))
    assert sorted(o["order"] for o in orders) == list(range(1, 21))
    assert _body(await claimers[0].ok("box_claim", room="tb_room", box=box)) == _body(orders[0])
    assert await dropper.error("box_claim", room="tb_room", box=box) == "forbidden"
    assert await claimers[0].error("box_claim", room="tb_room", box="bnosuch") == "not_found"

    opened = await creator.event("box_opened", lambda e: e["box"] == box, timeout=15)
    by_order = sorted(zip(orders, names, strict=True), key=lambda on: on[0]["order"])
    expect = treasure.split_box(1003, [n for _, n in by_order], "tb_drop")
    assert opened["split"] == [list(p) for p in expect] and not opened["refunded"]
    assert sum(c for _, c in expect) == 1003
    for user, coins in expect:
        assert (await wallet.read(one.backend, user))["coins"] == coins
    assert await creator.error("box_claim", room="tb_room", box=box) == "box_closed"
    assert _body(await claimers[5].ok("box_claim", room="tb_room", box=box)) == _body(orders[5])

    # opening again (any node, any number of times, at once) pays nothing more
    assert all(
        await asyncio.gather(*(treasure.open_box(s.backend, "tb_room", box) for s in (one, two)))
    )
    for user, coins in expect:
        assert (await wallet.read(one.backend, user))["coins"] == coins
    assert (await dropper.ok("wallet"))["coins"] == 997
    assert (await claimers[1].ok("join", room="tb_room"))["boxes"] == []
    checks = await _audit_ok(one)
    boxes = checks["boxes_conserved"]
    assert (boxes["coins_into_boxes"], boxes["coins_out_of_boxes"]) == (1003, 1003)
    assert boxes["coins_in_open_boxes"] == 0
    assert checks["coins_conserved"]["by_kind"]["spend:box"] == 1003
    assert checks["coins_conserved"]["by_kind"]["credit:box"] == 1003


async def test_nobody_claimed_goes_back_to_the_dropper(make_server: ServerFactory) -> None:
    server = await make_server(**FAST)
    creator = await _room(server, "tr_cr", "tr_room")
    await server.grant("tr_cr", 500)
    d = await creator.ok("box_drop", room="tr_room", coins=500, seconds=1, key="k")
    assert d["coins"] == 0  # the creator may drop a box in its own room
    opened = await creator.event("box_opened", lambda e: e["box"] == d["box"], timeout=15)
    assert opened["refunded"] and opened["split"] == [["tr_cr", 500]] and opened["coins"] == 500
    assert (await creator.ok("wallet"))["coins"] == 500
    await _audit_ok(server)


async def test_refund_restores_the_dropper(make_server: ServerFactory) -> None:
    server = await make_server(**FAST)
    await _room(server, "tn_cr", "tn_room")
    v = await _member(server, "tn_v", "tn_room", 800)
    d = await v.ok("box_drop", room="tn_room", coins=800, seconds=1, key="k")
    assert d["coins"] == 0
    await v.event("box_opened", lambda e: e["box"] == d["box"], timeout=15)
    await v.wait(lambda: any(e["ev"] == "wallet" and e["coins"] == 800 for e in v.events))
    assert (await v.ok("wallet"))["coins"] == 800
    checks = await _audit_ok(server)
    assert checks["boxes_conserved"]["coins_out_of_boxes"] == 800
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as resp:
        lines = (await resp.text()).splitlines()
    assert 'livesrv_coins_spent_total{kind="box"} 800.0' in lines
    assert "livesrv_boxes_opened_total 1.0" in lines
    assert 'livesrv_ops_total{op="box_drop",result="ok"} 1.0' in lines


async def test_drop_refusals_move_nothing(make_server: ServerFactory) -> None:
    server = await make_server(box_min_seconds=5, box_max_open=2)
    creator = await _room(server, "tl_cr", "tl_room")
    v = await _member(server, "tl_v", "tl_room", 1000)
    assert await v.error("box_drop", room="tl_room", coins=10, seconds=4, key="a") == (
        "bad_request"
    )
    assert await v.error("box_drop", room="tl_room", coins=10_000, seconds=5, key="a") == (
        "insufficient_funds"
    )
    outsider = await server.connect("tl_out")
    await server.grant("tl_out", 100)
    assert await outsider.error("box_drop", room="tl_room", coins=10, seconds=5, key="a") == (
        "forbidden"
    )
    await v.ok("box_drop", room="tl_room", coins=10, seconds=60, key="b1")
    await v.ok("box_drop", room="tl_room", coins=10, seconds=60, key="b2")
    assert await v.error("box_drop", room="tl_room", coins=10, seconds=60, key="b3") == (
        "limit_exceeded"
    )
    assert (await v.ok("wallet"))["coins"] == 980
    await creator.ok("room_close", room="tl_room")
    assert await v.error("box_drop", room="tl_room", coins=10, seconds=60, key="b4") == ("not_live")
    checks = await _audit_ok(server)
    assert checks["boxes_conserved"]["coins_in_open_boxes"] == 20


async def test_a_drop_cut_after_the_debit_is_finished_by_the_worker(
    make_server: ServerFactory,
) -> None:
    """A crash between the debit and the box: the settlement worker places the box from
    the outbox entry, opens it when due and refunds it (nobody could claim it)."""
    server = await make_server(**FAST)
    creator = await _room(server, "tc_cr", "tc_room")
    await server.grant("tc_v", 300)
    b = server.backend
    exp = wallet.generation_expiry(b)
    box = treasure.box_id("tc_v", "cut", exp)
    # only the first step of box_drop, as a process killed right after it would leave it
    await wallet.spend(
        b,
        "tc_v",
        kind="box",
        amount=300,
        key="cut",
        digest=treasure.drop_digest("tc_room", 300, 1),
        payload={"room": "tc_room", "box": box, "seconds": 1, "e": [], "x": exp},
        extra_key=b.user("tc_v").wallet,
        exp=exp,
        reply={"box": box},
    )
    await creator.event("box_drop", lambda e: e["box"] == box)
    opened = await creator.event("box_opened", lambda e: e["box"] == box, timeout=15)
    assert opened["split"] == [["tc_v", 300]]
    async with asyncio.timeout(scaled(10)):
        while (await wallet.read(b, "tc_v"))["coins"] != 300:
            await asyncio.sleep(0.05)
    # the client's retry of that drop answers the first result
    v = await _member(server, "tc_v", "tc_room")
    r = await v.ok("box_drop", room="tc_room", coins=300, seconds=1, key="cut")
    assert r["box"] == box and r["coins"] == 0
    assert (await v.ok("wallet"))["coins"] == 300
    await _audit_ok(server)

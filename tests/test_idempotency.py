"""Idempotency (docs/protocol.md, Money rules): a replayed key moves nothing and returns the
first result, a conflicting one fails and moves nothing, concurrent sends of one key debit
once, and a receipt credits once, for anyone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.client import JSON, MSGPACK, Client
from tests.conftest import Running, ServerFactory
from tests.timing import scaled


def body(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k not in ("id", "ok")}


@pytest.fixture(params=[JSON, MSGPACK], ids=["json", "msgpack"])
def codec(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def open_room(server: Running, room: str = "r1", codec: str = JSON) -> Client:
    creator = await server.connect("alice", "creator", codec)
    await creator.ok("room_open", room=room, title="live")
    await creator.ok("join", room=room)
    return creator


async def joined(server: Running, user: str, room: str = "r1", codec: str = JSON) -> Client:
    c = await server.connect(user, codec=codec)
    await c.ok("join", room=room)
    return c


def gifts(c: Client) -> list[dict[str, Any]]:
    return [e for e in c.events if e["ev"] == "gift"]


async def quiet() -> None:
    """Long enough for any duplicate event to have been fanned out (20 ms ticks)."""
    await asyncio.sleep(scaled(0.2))


async def audit_ok(server: Running) -> dict[str, Any]:
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    return {c["name"]: c for c in report["checks"]}


# -- replay ------------------------------------------------------------------------------


async def test_replayed_gift_returns_the_first_result(server: Running, codec: str) -> None:
    creator = await open_room(server, codec=codec)
    await server.grant("bob", 100)
    bob = await joined(server, "bob", codec=codec)
    first = body(await bob.ok("gift", room="r1", gift="panda", count=2, key="k1"))
    assert first == {"coins": 90, "combo": 2}
    again = body(await bob.ok("gift", room="r1", gift="panda", count=2, key="k1"))
    assert again == first
    # from another connection of the same user, too
    bob2 = await joined(server, "bob", codec=codec)
    assert body(await bob2.ok("gift", room="r1", gift="panda", count=2, key="k1")) == first
    assert (await bob.ok("wallet"))["coins"] == 90
    await creator.event("gift")
    await quiet()
    assert len(gifts(creator)) == 1 and gifts(creator)[0]["seq"] == 2
    await server.settle()
    assert (await creator.ok("wallet"))["diamonds"] == 5
    checks = await audit_ok(server)
    assert checks["coins_conserved"]["spent"] == 10


async def test_replay_returns_the_first_result_not_the_current_state(server: Running) -> None:
    await open_room(server)
    await server.grant("bob", 100)
    bob = await joined(server, "bob")
    first = body(await bob.ok("gift", room="r1", gift="rose", count=1, key="a"))
    await bob.ok("gift", room="r1", gift="rose", count=1, key="b")
    await bob.ok("gift", room="r1", gift="rose", count=1, key="c")
    # the streak went on and coins went down, but a replay of "a" is the first answer
    assert first == {"coins": 99, "combo": 1}
    assert body(await bob.ok("gift", room="r1", gift="rose", count=1, key="a")) == first
    assert (await bob.ok("wallet"))["coins"] == 97


async def test_keys_are_per_user(server: Running) -> None:
    creator = await open_room(server)
    for user in ("bob", "carol"):
        await server.grant(user, 10)
    bob, carol = await joined(server, "bob"), await joined(server, "carol")
    assert (await bob.ok("gift", room="r1", gift="rose", count=3, key="same"))["coins"] == 7
    assert (await carol.ok("gift", room="r1", gift="rose", count=3, key="same"))["coins"] == 7
    await creator.wait(lambda: len(gifts(creator)) == 2)
    await audit_ok(server)


async def test_replay_after_reconnect(server: Running) -> None:
    creator = await open_room(server)
    await server.grant("bob", 50)
    bob = await joined(server, "bob")
    first = body(await bob.ok("gift", room="r1", gift="rose", count=4, key="rc"))
    await bob.close()
    bob = await joined(server, "bob")
    assert body(await bob.ok("gift", room="r1", gift="rose", count=4, key="rc")) == first
    assert (await bob.ok("wallet"))["coins"] == 46
    await creator.event("gift")
    await quiet()
    assert len(gifts(creator)) == 1


async def test_replay_after_the_room_closed_returns_the_first_result(server: Running) -> None:
    """A client that lost the reply retries; the room closed meanwhile. The gift happened,
    so the retry must say so, not fail as if nothing moved."""
    creator = await open_room(server)
    await server.grant("bob", 50)
    bob = await joined(server, "bob")
    first = body(await bob.ok("gift", room="r1", gift="rose", count=4, key="late"))
    await creator.ok("room_close", room="r1")
    await bob.event("room_closed")
    assert body(await bob.ok("gift", room="r1", gift="rose", count=4, key="late")) == first
    # a new key in a closed room still fails, and moves nothing
    assert await bob.error("gift", room="r1", gift="rose", count=4, key="new") == "not_live"
    # conflicting arguments are still a conflict, or the room's state error: never a debit
    code = await bob.error("gift", room="r1", gift="rose", count=5, key="late")
    assert code in ("idempotency_conflict", "not_live")
    assert (await bob.ok("wallet"))["coins"] == 46
    await audit_ok(server)


async def test_replay_after_leaving_the_room_returns_the_first_result(server: Running) -> None:
    creator = await open_room(server)
    await server.grant("bob", 50)
    bob = await joined(server, "bob")
    first = body(await bob.ok("gift", room="r1", gift="rose", count=4, key="gone"))
    await bob.ok("leave", room="r1")
    assert body(await bob.ok("gift", room="r1", gift="rose", count=4, key="gone")) == first
    assert await bob.error("gift", room="r1", gift="rose", count=4, key="new") == "forbidden"
    assert (await bob.ok("wallet"))["coins"] == 46
    await creator.event("gift")
    await quiet()
    assert len(gifts(creator)) == 1


# -- conflicts ---------------------------------------------------------------------------


async def test_conflicting_arguments(server: Running, codec: str) -> None:
    creator = await open_room(server, codec=codec)
    await creator.ok("room_open", room="r2", title="other")
    await server.grant("bob", 100)
    bob = await joined(server, "bob", codec=codec)
    await bob.ok("join", room="r2")
    await bob.ok("gift", room="r1", gift="rose", count=2, key="k")
    for args in (
        {"room": "r1", "gift": "rose", "count": 3},
        {"room": "r1", "gift": "panda", "count": 2},
        {"room": "r2", "gift": "rose", "count": 2},
    ):
        reply = await bob.call("gift", key="k", **args)
        assert reply["ok"] is False
        assert reply["error"]["code"] == "idempotency_conflict", reply
    assert (await bob.ok("wallet"))["coins"] == 98
    await creator.event("gift")
    await quiet()
    assert len(gifts(creator)) == 1
    # the original arguments still replay fine
    assert body(await bob.ok("gift", room="r1", gift="rose", count=2, key="k")) == {
        "coins": 98,
        "combo": 2,
    }
    await audit_ok(server)


# -- concurrency on one key ---------------------------------------------------------------


async def test_fifty_concurrent_sends_of_one_key_debit_once(make_server: ServerFactory) -> None:
    server = await make_server(max_connections_per_user=64)
    creator = await open_room(server)
    observer = await joined(server, "obs")
    await server.grant("bob", 1000)
    conns = await asyncio.gather(*(joined(server, "bob") for _ in range(50)))
    replies = await asyncio.gather(
        *(c.call("gift", room="r1", gift="finger_heart", count=3, key="storm") for c in conns)
    )
    assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
    assert {tuple(sorted(body(r).items())) for r in replies} == {(("coins", 985), ("combo", 3))}
    assert (await conns[0].ok("wallet"))["coins"] == 985
    await observer.event("gift")
    await quiet()
    assert [(e["seq"], e["coins"], e["combo"]) for e in gifts(observer)] == [(2, 15, 3)]
    await server.settle()
    assert (await creator.ok("wallet"))["diamonds"] == 7
    checks = await audit_ok(server)
    assert checks["coins_conserved"]["spent"] == 15
    assert checks["idempotency"]["keyed_movements"] == 2  # the grant and the one gift


async def test_concurrent_conflicting_sends_one_wins(make_server: ServerFactory) -> None:
    server = await make_server(max_connections_per_user=64)
    observer = await open_room(server)
    await server.grant("bob", 1000)
    conns = await asyncio.gather(*(joined(server, "bob") for _ in range(40)))
    replies = await asyncio.gather(
        *(
            c.call("gift", room="r1", gift="rose", count=1 + i % 2, key="race")
            for i, c in enumerate(conns)
        )
    )
    won = {body(r)["coins"] for r in replies if r["ok"]}
    assert len(won) == 1  # every success is the same, first result
    coins = won.pop()
    count = 1000 - coins
    assert count in (1, 2)
    for i, r in enumerate(replies):
        if 1 + i % 2 == count:
            assert r["ok"] is True
        else:
            assert r["error"]["code"] == "idempotency_conflict"
    assert (await conns[0].ok("wallet"))["coins"] == coins
    await observer.event("gift")
    await quiet()
    assert [e["count"] for e in gifts(observer)] == [count]
    await audit_ok(server)


# -- buy_coins: the receipt is the key --------------------------------------------------------


async def test_receipt_replay_credits_once(server: Running, codec: str) -> None:
    await open_room(server, codec=codec)
    bob = await joined(server, "bob", codec=codec)
    receipt = server.receipt("bob", "p65", "R-1")
    assert body(await bob.ok("buy_coins", package="p65", receipt=receipt)) == {"coins": 65}
    await bob.ok("gift", room="r1", gift="rose", count=5, key="g")
    # the replay returns the first result and credits nothing
    assert body(await bob.ok("buy_coins", package="p65", receipt=receipt)) == {"coins": 65}
    assert (await bob.ok("wallet"))["coins"] == 60
    # the same receipt id for another package is a conflict
    other = server.receipt("bob", "p330", "R-1")
    assert await bob.error("buy_coins", package="p330", receipt=other) == "idempotency_conflict"
    assert (await bob.ok("wallet"))["coins"] == 60
    checks = await audit_ok(server)
    assert checks["idempotency"]["receipts"] == 1
    assert checks["coins_conserved"]["credited"] == 65


async def test_receipt_used_by_another_user(server: Running, codec: str) -> None:
    bob = await server.connect("bob", codec=codec)
    eve = await server.connect("eve", codec=codec)
    receipt = server.receipt("bob", "p660", "R-2")
    assert body(await bob.ok("buy_coins", package="p660", receipt=receipt)) == {"coins": 660}
    # bob's receipt is signed for bob: in eve's hands it proves nothing
    assert await eve.error("buy_coins", package="p660", receipt=receipt) == "invalid_receipt"
    for package in ("p660", "p65"):  # the same id signed for eve is already spent
        reply = await eve.call(
            "buy_coins", package=package, receipt=server.receipt("eve", package, "R-2")
        )
        assert reply["ok"] is False and reply["error"]["code"] == "idempotency_conflict"
    assert (await eve.ok("wallet"))["coins"] == 0
    assert (await bob.ok("wallet"))["coins"] == 660
    await quiet()
    assert [e for e in eve.events if e["ev"] == "wallet"] == []
    await audit_ok(server)


async def test_concurrent_receipt_claims_credit_once(server: Running) -> None:
    users = [f"u{i}" for i in range(10)]
    conns = [await server.connect(u) for u in users for _ in range(2)]
    replies = await asyncio.gather(
        *(
            c.call(
                "buy_coins",
                package="p1321",
                receipt=server.receipt(users[i // 2], "p1321", "R-shared"),
            )
            for i, c in enumerate(conns)
        )
    )
    winners = {users[i // 2] for i, r in enumerate(replies) if r["ok"]}
    assert len(winners) == 1  # one user got the credit (maybe on both its connections)
    winner = winners.pop()
    for i, r in enumerate(replies):
        if users[i // 2] == winner:
            assert body(r) == {"coins": 1321}
        else:
            assert r["error"]["code"] == "idempotency_conflict"
    got = {u: (await conns[2 * i].ok("wallet"))["coins"] for i, u in enumerate(users)}
    assert got == {u: (1321 if u == winner else 0) for u in users}
    checks = await audit_ok(server)
    assert checks["coins_conserved"]["credited"] == 1321


async def test_receipt_and_gift_keys_do_not_clash(server: Running) -> None:
    await open_room(server)
    bob = await joined(server, "bob")
    receipt = server.receipt("bob", "p65", "k1")
    assert (await bob.ok("buy_coins", package="p65", receipt=receipt))["coins"] == 65
    assert (await bob.ok("gift", room="r1", gift="rose", count=1, key="k1"))["coins"] == 64
    await audit_ok(server)


async def test_purchase_replay_after_the_room_closed_returns_the_first_result(
    server: Running,
) -> None:
    """A buyer who lost the reply retries after the LIVE ended: the order stands, once."""
    creator = await open_room(server)
    await creator.ok("product_create", product="mug1", title="Mug", price=30, stock=5)
    await server.grant("bob", 100)
    bob = await joined(server, "bob")
    first = body(await bob.ok("buy", room="r1", product="mug1", qty=2, key="order-1"))
    await creator.ok("room_close", room="r1")
    await bob.event("room_closed")
    assert body(await bob.ok("buy", room="r1", product="mug1", qty=2, key="order-1")) == first
    assert await bob.error("buy", room="r1", product="mug1", qty=2, key="order-2") == "not_live"
    assert (await bob.ok("wallet"))["coins"] == 40
    assert [o["order"] for o in (await bob.ok("orders"))["orders"]] == [first["order"]]
    await audit_ok(server)

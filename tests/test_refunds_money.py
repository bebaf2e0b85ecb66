"""Refunds, chargebacks and minors with money moving (issue 14, items 2 and 3):
docs/economy.md, "Refunds, chargebacks and minors".

Each test buys, gifts and withdraws over real WebSockets and refunds (or flags a minor)
through the admin API, against the real store, and ends with the full audit: refunds after
gifts and withdrawals, refunds racing gifts, minors, and a refund half done. The clawback
rules and the admin API's validation are in test_refunds.py.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
import pytest

from livesrv import audit
from livesrv.store.keys import shard_of
from tests.conftest import Running, ServerFactory
from tests.refund_helpers import admin, audited, balances, buy, joined, live, poll, refund


async def test_refund_of_an_unspent_receipt_is_idempotent(server: Running) -> None:
    bob = await server.connect("rf1_bob")
    assert await buy(server, bob, "rf1_bob", "p65", "rf1-pay") == 65
    first = await refund(server, "rf1-pay")
    assert first == {
        "receipt": "rf1-pay",
        "kind": "refund",
        "user": "rf1_bob",
        "coins": 65,
        "balance": 0,
        "shortfall": 0,
        "clawed": 0,
        "clawbacks": 0,
    }
    assert (await balances(bob))["coins"] == 0
    assert await refund(server, "rf1-pay") == first  # a repeat moves nothing
    assert await refund(server, "rf1-pay", "chargeback") == first  # reversed once: the first
    assert (await balances(bob))["coins"] == 0
    status, shown = await admin(server, "GET", "/api/receipts/rf1-pay")
    assert status == 200 and shown["user"] == "rf1_bob" and shown["package"] == "p65"
    assert shown["reversed"]["kind"] == "refund" and shown["reversed"]["refund"] == first
    # the same receipt presented again credits nothing
    receipt = server.receipt("rf1_bob", "p65", "rf1-pay")
    again = await bob.ok("buy_coins", package="p65", receipt=receipt)
    assert again["coins"] == 65  # the first result, as for any repeated purchase
    assert (await balances(bob))["coins"] == 0
    checks = await audited(server)
    assert checks["coins_conserved"]["refunded"] == 65
    assert checks["refunds_whole"]["receipts_reversed"] == 1


async def test_refund_after_gifts_and_a_withdrawal_claws_back_and_goes_negative(
    make_server: ServerFactory,
) -> None:
    """The held-out scenario: the receipt's coins were gifted, the creator's diamonds partly
    withdrawn and partly pending; every balance afterwards, and the audit."""
    server = await make_server(hold_seconds=1, min_withdrawal=1)
    cr = await live(server, "rf2_cr", "rf2_room")
    bob = await joined(server, "rf2_bob", "rf2_room")
    assert await buy(server, bob, "rf2_bob", "p330", "rf2-pay") == 330
    await bob.ok("gift", room="rf2_room", gift="rainbow_puke", count=1, key="g1")  # 50 diamonds
    await server.settle()

    async def available() -> bool:
        return (await balances(cr))["diamonds"] == 50

    await poll(available)  # the hold (1 s) matured
    w = await cr.ok("withdraw", diamonds=40, key="w1")
    assert w["diamonds"] == 10
    await bob.ok("gift", room="rf2_room", gift="rainbow_puke", count=2, key="g2")  # 100 pending
    await server.settle()
    assert await balances(cr) == {"coins": 0, "diamonds": 10, "pending": 100}
    assert (await balances(bob))["coins"] == 30

    r = await refund(server, "rf2-pay", "chargeback")
    assert (r["kind"], r["coins"], r["balance"]) == ("chargeback", 330, -300)
    assert (r["shortfall"], r["clawed"], r["clawbacks"]) == (300, 300, 2)
    await server.settle()
    # 150 diamonds clawed back: the 100 pending first, then 50 of the 10 available
    assert await balances(cr) == {"coins": 0, "diamonds": -40, "pending": 0}
    assert await balances(bob) == {"coins": -300, "diamonds": 0, "pending": 0}
    assert await cr.error("withdraw", diamonds=1, key="w2") == "insufficient_funds"
    # every kind of spend is refused, with a message that names the refund
    for op, args in (
        ("gift", {"room": "rf2_room", "gift": "rose", "count": 1}),
        ("subscribe", {"room": "rf2_room"}),
    ):
        refused = await bob.call(op, key=f"{op}-owed", **args)
        assert refused["error"]["code"] == "insufficient_funds", refused
        assert "a refund took back coins already spent" in refused["error"]["message"]
    # buying coins nets against the debt; then gifting works again
    assert await buy(server, bob, "rf2_bob", "p660", "rf2-pay2") == 360
    assert (await bob.ok("gift", room="rf2_room", gift="rose", count=2, key="g4"))["coins"] == 358
    checks = await audited(server)
    now = await balances(cr)
    assert now["diamonds"] + now["pending"] == -39  # 2 roses: 1 diamond

    async def matured() -> bool:
        return await balances(cr) == {"coins": 0, "diamonds": -39, "pending": 0}

    await poll(matured)
    assert checks["coins_conserved"]["refunded"] == 330
    assert checks["coins_conserved"]["credited"] == 990
    assert checks["coins_conserved"]["held"] == 358
    assert checks["coins_conserved"]["spent"] == 302
    assert checks["refunds_whole"]["coins_clawed"] == 300
    assert checks["refunds_whole"]["diamonds_clawed"] == 150
    assert checks["diamonds_accounted"]["diamonds_credited"] == 1
    assert checks["nothing_negative"]["negative"] == []
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as resp:
        lines = (await resp.text()).splitlines()
    assert 'livesrv_refunds_total{kind="chargeback"} 1.0' in lines
    assert "livesrv_diamonds_clawed_total 150.0" in lines
    # a repeat moves nothing
    assert await refund(server, "rf2-pay") == r
    await audited(server)
    assert (await balances(bob))["coins"] == 358


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_refund_racing_gifts_and_a_withdrawal(make_server: ServerFactory, seed: int) -> None:
    """A refund, the buyer's gifts and the creator's withdrawal at once, in an order the
    seed shuffles: whatever the interleaving, every balance is exact and the audit holds."""
    server = await make_server(min_withdrawal=1)
    rng = random.Random(seed)
    room, bob_id, cr_id = f"rf3_room{seed}", f"rf3_bob{seed}", f"rf3_cr{seed}"
    cr = await live(server, cr_id, room)
    carol = await joined(server, f"rf3_carol{seed}", room)
    await server.grant(f"rf3_carol{seed}", 200)
    await carol.ok("gift", room=room, gift="rainbow_puke", count=2, key="c1")  # 100 diamonds
    bob = await joined(server, bob_id, room)
    assert await buy(server, bob, bob_id, "p1321", f"rf3-pay{seed}") == 1321
    await server.settle()

    async def later(coro: Any) -> Any:
        await asyncio.sleep(rng.random() * 0.05)
        return await coro

    gifts = [
        later(bob.call("gift", room=room, gift="rainbow_puke", count=1, key=f"g{i}"))
        for i in range(6)
    ]
    moves = [
        *gifts,
        later(refund(server, f"rf3-pay{seed}")),
        later(cr.call("withdraw", diamonds=150, key="w")),
    ]
    order = list(range(len(moves)))
    rng.shuffle(order)
    results: list[Any] = [None] * len(moves)
    done = await asyncio.gather(*(moves[i] for i in order))
    for i, r in zip(order, done, strict=True):
        results[i] = r
    given = sum(1 for r in results[:6] if r.get("ok"))
    assert all(r.get("ok") or r["error"]["code"] == "insufficient_funds" for r in results[:6])
    r = results[6]
    withdrew = 150 if results[7].get("ok") else 0
    # the refund takes the whole receipt: every gift that went through went before it
    assert r["shortfall"] == r["clawed"] == 100 * given
    assert r["balance"] == -100 * given
    checks = await audited(server)
    assert await balances(bob) == {"coins": -100 * given, "diamonds": 0, "pending": 0}
    # bob's gifts are clawed back whole: the creator keeps carol's 100, less the withdrawal
    assert await balances(cr) == {"coins": 0, "diamonds": 100 - withdrew, "pending": 0}
    assert checks["diamonds_accounted"]["diamonds_credited"] == 100
    assert checks["coins_conserved"]["spent"] == 200 + 100 * given


async def test_flag_minor_reverses_recent_spends(server: Running) -> None:
    cr = await live(server, "rf4_cr", "rf4_room")
    kid = await joined(server, "rf4_kid", "rf4_room")
    await server.grant("rf4_kid", 1000)
    for key in ("g1", "g2", "g3"):
        await kid.ok("gift", room="rf4_room", gift="rainbow_puke", count=1, key=key)
    await kid.ok("paid_chat", room="rf4_room", text="hi", coins=10, key="p1")
    await server.settle()
    assert (await balances(cr))["diamonds"] == 155
    status, first = await admin(server, "POST", "/api/users/rf4_kid/minor")
    assert status == 200, first
    assert (first["minor"], first["reversed"], first["coins_returned"]) == (True, 4, 310)
    assert first["since"] - first["from"] == 30 * 86_400_000
    await server.settle()
    assert (await balances(kid))["coins"] == 1000
    assert (await balances(cr))["diamonds"] == 0
    # from now on every money op of the account is refused, whatever the token says
    assert await kid.error("gift", room="rf4_room", gift="rose", count=1, key="g4") == (
        "age_restricted"
    )
    receipt = server.receipt("rf4_kid", "p65", "rf4-pay")
    assert await kid.error("buy_coins", package="p65", receipt=receipt) == "age_restricted"
    assert await kid.error("paid_chat", room="rf4_room", text="x", coins=5, key="p2") == (
        "age_restricted"
    )
    status, again = await admin(server, "POST", "/api/users/rf4_kid/minor")
    assert status == 200 and again == first
    checks = await audited(server)
    assert checks["coins_conserved"]["reversed"] == 310
    assert checks["refunds_whole"]["spends_reversed"] == 4
    assert checks["refunds_whole"]["minors"] == 1
    assert (await balances(kid))["coins"] == 1000
    # the receipt bought nothing: its claim was never made
    status, _ = await admin(server, "GET", "/api/receipts/rf4-pay")
    assert status == 404


async def test_minor_after_a_refund_claws_back_each_spend_once(
    make_server: ServerFactory,
) -> None:
    """A spend clawed back by a refund, then reversed for a minor: the earner loses its
    diamonds once, and the minor's debt is paid back by the reversal."""
    server = await make_server(min_withdrawal=1)
    cr = await live(server, "rf5_cr", "rf5_room")
    kid = await joined(server, "rf5_kid", "rf5_room")
    assert await buy(server, kid, "rf5_kid", "p330", "rf5-pay") == 330
    await kid.ok("gift", room="rf5_room", gift="rainbow_puke", count=3, key="g1")
    await server.settle()
    r = await refund(server, "rf5-pay")
    assert (r["balance"], r["shortfall"], r["clawed"]) == (-300, 300, 300)
    await server.settle()
    assert (await balances(cr))["diamonds"] == 0
    status, m = await admin(server, "POST", "/api/users/rf5_kid/minor")
    assert status == 200 and (m["reversed"], m["coins_returned"]) == (1, 300)
    await audited(server)
    assert (await balances(kid))["coins"] == 0
    assert (await balances(cr))["diamonds"] == 0


async def test_minor_window_zero_reverses_nothing(make_server: ServerFactory) -> None:
    server = await make_server(minor_refund_days=0)
    await live(server, "rf6_cr", "rf6_room")
    kid = await joined(server, "rf6_kid", "rf6_room")
    await server.grant("rf6_kid", 100)
    await kid.ok("gift", room="rf6_room", gift="rose", count=3, key="g1")
    status, m = await admin(server, "POST", "/api/users/rf6_kid/minor")
    assert status == 200 and (m["reversed"], m["coins_returned"]) == (0, 0)
    assert await kid.error("gift", room="rf6_room", gift="rose", count=1, key="g2") == (
        "age_restricted"
    )
    await audited(server)
    assert (await balances(kid))["coins"] == 97


async def test_a_half_done_refund_is_named_and_finished_by_a_repeat(server: Running) -> None:
    """Each step of a refund lost in turn (a failover losing one master's last write): the
    audit names the half-done refund, and repeating the request finishes it."""
    b = server.backend
    bob = await server.connect("rf9_bob")
    await buy(server, bob, "rf9_bob", "p65", "rf9-a")
    await buy(server, bob, "rf9_bob", "p65", "rf9-b")
    # only the first step (the receipt's mark) of rf9-a happened
    rshard = b.shard(shard_of("rf9-a", b.settings.shards))
    marked = await b.run(
        "refund_mark",
        [rshard.receipt("rf9-a"), rshard.receipt_reversal("rf9-a")],
        ["refund", "", 1, 65, "rf9_bob|p65"],
    )
    assert marked[0] == "ok"
    report = await audit.run(b, attempts=1)
    check = next(c for c in report["checks"] if c["name"] == "refunds_whole")
    assert not report["ok"] and check["reversed_not_debited"] == [
        {"receipt": "rf9-a", "user": "rf9_bob", "kind": "refund", "coins": "65"}
    ]
    assert "receipt reversed, its coins never taken back" in audit.render(report)
    assert (await refund(server, "rf9-a", "chargeback"))["kind"] == "refund"  # the mark's
    # the second step of rf9-b happened, its mark was lost
    await refund(server, "rf9-b")
    await b.redis.delete(b.shard(shard_of("rf9-b", b.settings.shards)).receipt_reversal("rf9-b"))
    report = await audit.run(b, attempts=1)
    check = next(c for c in report["checks"] if c["name"] == "refunds_whole")
    assert not report["ok"] and check["debited_not_reversed"] == [
        {"receipt": "rf9-b", "user": "rf9_bob", "kind": "refund", "coins": 65}
    ]
    await refund(server, "rf9-b", "chargeback")  # writes the mark again, as it was
    status, shown = await admin(server, "GET", "/api/receipts/rf9-b")
    assert status == 200 and shown["reversed"]["kind"] == "refund"
    await audited(server)
    assert (await balances(bob))["coins"] == 0


async def test_credits_settled_together_are_one_hold_and_a_clawback_among_them_takes_it(
    make_server: ServerFactory,
) -> None:
    """settle_batch.lua: the credits one batch settles for an earner mature together and are
    one member of its holds; a clawback settled in the same batch finds that member (the
    latest-maturing hold) in pending, as when each was settled on its own."""
    server = await make_server(hold_seconds=3600, settle=False)
    worker, redis = server.node.worker, server.backend.redis
    holds = server.backend.user("rf7_cr").holds
    cr = await live(server, "rf7_cr", "rf7_room")
    ann = await joined(server, "rf7_ann", "rf7_room")
    bob = await joined(server, "rf7_bob", "rf7_room")
    await server.grant("rf7_ann", 300)
    for k in range(3):  # 3 x 100 coins: 3 x 50 diamonds
        await ann.ok("gift", room="rf7_room", gift="rainbow_puke", count=1, key=f"a{k}")
    assert await worker.drain() == 3
    [(member, due)] = await redis.zrange(holds, 0, -1, withscores=True)
    assert member.endswith("|150")  # one hold for the batch's three credits
    assert await balances(cr) == {"coins": 0, "diamonds": 0, "pending": 150}

    assert await buy(server, bob, "rf7_bob", "p330", "rf7-pay") == 330
    for k in range(2):  # 2 x 50 diamonds, then the refund of the coins they were bought with
        await bob.ok("gift", room="rf7_room", gift="rainbow_puke", count=1, key=f"b{k}")
    r = await refund(server, "rf7-pay", "chargeback")
    assert (r["clawed"], r["clawbacks"]) == (200, 2)
    assert await worker.drain() == 4  # the two credits and the two clawbacks, one batch
    assert await balances(cr) == {"coins": 0, "diamonds": 0, "pending": 150}
    # bob's diamonds left pending with his hold; ann's hold is untouched, maturing as before
    assert await redis.zrange(holds, 0, -1, withscores=True) == [(member, due)]
    await audited(server)

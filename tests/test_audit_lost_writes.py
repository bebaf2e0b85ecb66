"""The audit names every movement a lost store write left half done (issue 10, item 2).

A failover of an asynchronously replicated master can lose the last steps it applied while
the other masters keep theirs. Each test makes real movements over the wire, then removes
exactly what one lost step would have written on its slot (every write of that one Lua
script, as if it never ran), and checks that the audit fails and names the movement
(ref, user, key, receipt, product, order), in its report, in ``render`` and in
``livesrv audit [--json]``. Where docs/economy.md describes a repair with today's tools, the
test does that repair and the audit holds again.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import orjson

from livesrv import audit
from livesrv.store.keys import ProductKeys, ShardKeys, shard_of
from tests.client import Client
from tests.cluster_fixtures import clean_env
from tests.conftest import Running, livesrv_cmd
from tests.timing import scaled


async def live_room(server: Running, creator: str, room: str) -> Client:
    c = await server.connect(creator, "creator")
    await c.ok("room_open", room=room, title=f"{creator} live")
    await c.ok("join", room=room)
    return c


async def viewer_in(server: Running, user: str, room: str, coins: int) -> Client:
    await server.grant(user, coins)
    v = await server.connect(user)
    await v.ok("join", room=room)
    return v


async def clean_audit(server: Running) -> None:
    """Everything settled, the audit holds and names nothing."""
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    assert all(line[:4] in ("PASS", "audi") for line in audit.render(report).splitlines())


async def broken(server: Running) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The audit after a loss: not ok; its checks by name and its rendered lines."""
    report = await audit.run(server.backend, attempts=1)
    assert report["ok"] is False
    return {c["name"]: c for c in report["checks"]}, audit.render(report).splitlines()


def failing(checks: dict[str, dict[str, Any]]) -> set[str]:
    return {name for name, c in checks.items() if not c["ok"]}


async def entry(server: Running, stream: str, **match: str) -> tuple[str, dict[str, str]]:
    """The one stream entry whose fields include ``match``."""
    rows = await server.backend.redis.xrange(stream)
    found = [(i, f) for i, f in rows if all(f.get(k) == v for k, v in match.items())]
    assert len(found) == 1, found
    return found[0]


# -- what one lost step removes ----------------------------------------------------------------


async def lose_spend(server: Running, user: str, key: str) -> tuple[str, dict[str, str]]:
    """Undo every write of ``user``'s debit by ``key`` (spend.lua, in the payer's slot):
    wallet, spend window, idempotency record, outbox and ledger entries, order list.

    Returns:
        The outbox entry's id and fields, as they were.
    """
    b = server.backend
    k = b.user(user)
    led_id, led = await entry(server, k.shard.ledger, t="spend", user=user, key=key)
    box_id, box = await entry(server, k.shard.outbox, user=user, key=key)
    amount, x = int(led["coins"]), led["x"]
    payload = orjson.loads(box["p"])
    pipe = b.redis.pipeline(transaction=True)
    pipe.hincrby(k.wallet, "coins", amount)
    pipe.hincrby(k.wallet, "coins_out", -amount)
    pipe.hincrby(k.wallet, "day", -amount)
    pipe.zrem(k.spent, f"{key}|{x}|{amount}")
    pipe.delete(k.idem(key))
    pipe.xdel(k.shard.outbox, box_id)
    pipe.xdel(k.shard.ledger, led_id)
    if box["kind"] == "gift":  # the streak the debit counted (the entry names no gift)
        async for combo in b.redis.scan_iter(match=k.combo(payload["room"], "*")):
            pipe.delete(combo)
    if box["kind"] == "shop":
        for raw in await b.redis.lrange(k.orders, 0, -1):
            if orjson.loads(raw)["order"] == payload["order"]:
                pipe.lrem(k.orders, 1, raw)
    await pipe.execute()
    return box_id, box


async def lose_settle(server: Running, earner: str, ref: str) -> None:
    """Undo every write of one settlement credit (settle.lua, in the earner's slot; the
    nodes of these tests hold nothing, so the diamonds went straight to available)."""
    b = server.backend
    k = b.user(earner)
    led_id, led = await entry(server, k.shard.ledger, t="settle", ref=ref)
    coins, delta, kind = int(led["coins"]), int(led["diamonds"]), led["kind"]
    pipe = b.redis.pipeline(transaction=True)
    pipe.srem(k.shard.applied, ref)
    pipe.hincrby(k.wallet, f"e:{kind}", -coins)
    pipe.hincrby(k.wallet, f"c:{kind}", -delta)
    pipe.hincrby(k.wallet, "credited", -delta)
    pipe.hincrby(k.wallet, "diamonds", -delta)
    pipe.xdel(k.shard.ledger, led_id)
    await pipe.execute()


async def lose_purchase_credit(server: Running, user: str, rid: str) -> None:
    """Undo the coin credit of a receipt (credit.lua, in the buyer's slot)."""
    b = server.backend
    k = b.user(user)
    led_id, led = await entry(server, k.shard.ledger, t="credit", kind="purchase", ref=rid)
    pipe = b.redis.pipeline(transaction=True)
    pipe.hincrby(k.wallet, "coins", -int(led["coins"]))
    pipe.hincrby(k.wallet, "coins_in", -int(led["coins"]))
    pipe.delete(k.idem(f"rcpt:{rid}"))
    pipe.xdel(k.shard.ledger, led_id)
    await pipe.execute()


def claim_key(server: Running, rid: str) -> str:
    return ShardKeys(shard_of(rid, server.settings.shards)).receipt(rid)


async def lose_reservation(server: Running, product: str, ref: str) -> None:
    """Undo a purchase's reservation and its sale (reserve_stock.lua then
    finish_reservation.lua, both in the product's slot)."""
    b, pk = server.backend, ProductKeys(product)
    r = orjson.loads(await b.redis.hget(pk.reservations, ref))
    assert r["s"] == "sold", r
    pipe = b.redis.pipeline(transaction=True)
    pipe.hincrby(pk.meta, "stock", r["q"])
    pipe.hincrby(pk.meta, "sold", -r["q"])
    pipe.hdel(pk.reservations, ref)
    pipe.zrem(pk.reservation_queue, ref)
    pipe.zrem(pk.reservation_expiry, ref)
    await pipe.execute()


def run_audit_cli(url: str, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        livesrv_cmd("audit", "--redis-url", url, *more),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        env=clean_env(),
    )


# -- gifts, subscriptions, purchases: the debit and its settlement -----------------------------


async def test_a_lost_debit_names_the_credit_it_settled(server: Running) -> None:
    creator = await live_room(server, "lw_cr1", "lw_room1")
    fan = await viewer_in(server, "lw_fan1", "lw_room1", 100)
    await fan.ok("gift", room="lw_room1", gift="rose", count=4, key="lw_g1")
    await creator.event("wallet", lambda e: e["diamonds"] == 2)
    await clean_audit(server)

    # the payer's master loses the debit; the creator's keeps the credit
    box_id, _ = await lose_spend(server, "lw_fan1", "lw_g1")
    ref = f"{server.backend.user('lw_fan1').shard.shard}:{box_id}:0"
    assert (await fan.ok("wallet"))["coins"] == 100
    assert (await creator.ok("wallet"))["diamonds"] == 2

    checks, lines = await broken(server)
    assert failing(checks) == {"settled_exactly_once", "diamonds_accounted"}
    named = {"ref": ref, "earner": "lw_cr1", "kind": "gift:5000", "coins": 4, "diamonds": 2}
    settled = checks["settled_exactly_once"]
    assert settled["credits_without_debit"] == [named]
    assert (settled["unknown_applied"], settled["unsettled"], settled["backlog"]) == (1, 0, 0)
    assert checks["diamonds_accounted"]["mismatches"] == [
        {"user": "lw_cr1", "expected": 0, "credited": 2, "pending+available+withdrawn": 2}
    ]
    line = f"      credited, its debit is gone: ref={ref} earner=lw_cr1 kind=gift:5000 coins=4"
    assert f"{line} diamonds=2" in lines

    # and the command line says the same, as text (exit 1) and as JSON
    url = server.settings.redis_url
    text = await asyncio.to_thread(run_audit_cli, url)
    assert text.returncode == 1, text.stdout + text.stderr
    assert f"{line} diamonds=2" in text.stdout.splitlines()
    as_json = await asyncio.to_thread(run_audit_cli, url, "--json")
    assert as_json.returncode == 1, as_json.stderr
    report = {c["name"]: c for c in json.loads(as_json.stdout)["checks"]}
    assert report["settled_exactly_once"]["credits_without_debit"] == [named]


async def test_a_lost_settlement_credit_names_the_entry_and_a_redelivery_repairs_it(
    server: Running,
) -> None:
    creator = await live_room(server, "lw_cr2", "lw_room2")
    fan = await viewer_in(server, "lw_fan2", "lw_room2", 100)
    await fan.ok("gift", room="lw_room2", gift="rose", count=4, key="lw_g2")
    await creator.event("wallet", lambda e: e["diamonds"] == 2)
    await clean_audit(server)
    payer = server.backend.user("lw_fan2").shard
    box_id, _ = await entry(server, payer.outbox, user="lw_fan2", key="lw_g2")
    ref = f"{payer.shard}:{box_id}:0"

    # the creator's master loses the credit; the payer's keeps the debit and its ack
    await lose_settle(server, "lw_cr2", ref)
    assert (await creator.ok("wallet"))["diamonds"] == 0
    assert (await fan.ok("wallet"))["coins"] == 96

    checks, lines = await broken(server)
    assert failing(checks) == {"settled_exactly_once"}
    settled = checks["settled_exactly_once"]
    assert settled["unsettled_credits"] == [
        {
            "ref": ref,
            "payer": "lw_fan2",
            "key": "lw_g2",
            "kind": "gift",
            "earner": "lw_cr2",
            "coins": 4,
        }
    ]
    assert (settled["unsettled"], settled["backlog"]) == (1, 0)  # nothing will deliver it
    assert (
        f"      owed, never credited: ref={ref} payer=lw_fan2 key=lw_g2 kind=gift "
        "earner=lw_cr2 coins=4"
    ) in lines

    # the repair docs/economy.md gives: deliver the shard's outbox again; applied refs
    # make every other entry a no-op
    await server.backend.redis.xgroup_setid(payer.outbox, "settle", "0")
    await creator.event("wallet", lambda e: e["diamonds"] == 2)
    await clean_audit(server)
    assert (await creator.ok("wallet"))["diamonds"] == 2


async def test_a_lost_shop_debit_names_the_unpaid_order_and_its_credits(server: Running) -> None:
    host = await live_room(server, "lw_host6", "lw_room6")
    await host.ok("product_create", product="lw_cap6", title="Cap", price=30, stock=5)
    buyer = await viewer_in(server, "lw_b6", "lw_room6", 100)
    bought = await buyer.ok("buy", room="lw_room6", product="lw_cap6", qty=2, key="lw_o6")
    order = bought["order"]
    await host.event("wallet", lambda e: e["diamonds"] == 49 + 6)  # 8200 + 1000 bps of 60
    await clean_audit(server)

    # the buyer's master loses the debit; the product's keeps the sale, the host's the credits
    box_id, _ = await lose_spend(server, "lw_b6", "lw_o6")
    shard = server.backend.user("lw_b6").shard.shard
    assert (await buyer.ok("wallet"))["coins"] == 100
    assert (await buyer.ok("orders"))["orders"] == []
    assert [(p["product"], p["stock"]) for p in (await buyer.ok("products"))["products"]] == [
        ("lw_cap6", 3)
    ]

    checks, lines = await broken(server)
    assert failing(checks) == {"settled_exactly_once", "diamonds_accounted", "stock_conserved"}
    stock = checks["stock_conserved"]
    assert stock["sold_not_paid"] == [
        {"product": "lw_cap6", "order": order, "user": "lw_b6", "key": "lw_o6", "qty": 2}
    ]
    assert (stock["orders_sold_not_paid"], stock["paid_not_sold"]) == (1, [])
    assert [(m["product"], m["sold"], m["paid"]) for m in stock["mismatches"]] == [
        ("lw_cap6", 2, 0)
    ]
    assert checks["settled_exactly_once"]["credits_without_debit"] == [
        {
            "ref": f"{shard}:{box_id}:0",
            "earner": "lw_host6",
            "kind": "shop:8200",
            "coins": 60,
            "diamonds": 49,
        },
        {
            "ref": f"{shard}:{box_id}:1",
            "earner": "lw_host6",
            "kind": "commission:1000",
            "coins": 60,
            "diamonds": 6,
        },
    ]
    assert (
        f"      sold, not paid: product=lw_cap6 order={order} user=lw_b6 key=lw_o6 qty=2" in lines
    )


async def test_a_lost_reservation_names_the_paid_order(server: Running) -> None:
    host = await live_room(server, "lw_host5", "lw_room5")
    await host.ok("product_create", product="lw_mug5", title="Mug", price=30, stock=5)
    buyer = await viewer_in(server, "lw_b5", "lw_room5", 100)
    bought = await buyer.ok("buy", room="lw_room5", product="lw_mug5", qty=2, key="lw_o5")
    order = bought["order"]
    await clean_audit(server)

    # the product's master loses the reservation and the sale; the buyer's keeps the debit
    await lose_reservation(server, "lw_mug5", "lw_b5|lw_o5")
    assert [(p["product"], p["stock"]) for p in (await buyer.ok("products"))["products"]] == [
        ("lw_mug5", 5)
    ]
    assert [o["order"] for o in (await buyer.ok("orders"))["orders"]] == [order]

    checks, lines = await broken(server)
    assert failing(checks) == {"stock_conserved"}
    stock = checks["stock_conserved"]
    assert stock["paid_not_sold"] == [
        {
            "product": "lw_mug5",
            "order": order,
            "user": "lw_b5",
            "key": "lw_o5",
            "qty": 2,
            "coins": 60,
            "reservation": "gone",
        }
    ]
    assert [(m["product"], m["sold"], m["paid"]) for m in stock["mismatches"]] == [
        ("lw_mug5", 0, 2)
    ]
    assert (
        f"      paid, not sold: product=lw_mug5 order={order} user=lw_b5 key=lw_o5 qty=2 "
        "coins=60 reservation=gone"
    ) in lines


# -- coin purchases: the receipt claim and its credit ------------------------------------------


async def test_a_lost_purchase_credit_names_the_receipt_and_a_retry_repairs_it(
    server: Running,
) -> None:
    buyer = await server.connect("lw_b3")
    receipt = server.receipt("lw_b3", "p65", "lw-pay-3")
    assert (await buyer.ok("buy_coins", package="p65", receipt=receipt))["coins"] == 65
    await clean_audit(server)

    # the buyer's master loses the credit; the receipt's keeps the claim
    await lose_purchase_credit(server, "lw_b3", "lw-pay-3")
    assert (await buyer.ok("wallet"))["coins"] == 0

    checks, lines = await broken(server)
    assert failing(checks) == {"receipts_claimed"}
    receipts = checks["receipts_claimed"]
    assert receipts["claimed_not_credited"] == [
        {"receipt": "lw-pay-3", "user": "lw_b3", "package": "p65", "coins": 65}
    ]
    assert (receipts["claims_uncredited"], receipts["credited_not_claimed"]) == (1, [])
    assert (
        "      receipt claimed, its coins never credited: receipt=lw-pay-3 user=lw_b3 "
        "package=p65 coins=65"
    ) in lines

    # the repair: the buyer presents the same receipt again; it credits once
    assert (await buyer.ok("buy_coins", package="p65", receipt=receipt))["coins"] == 65
    assert (await buyer.ok("buy_coins", package="p65", receipt=receipt))["coins"] == 65
    await clean_audit(server)


async def test_a_lost_receipt_claim_names_the_credit_and_a_retry_repairs_it(
    server: Running,
) -> None:
    buyer = await server.connect("lw_b4")
    receipt = server.receipt("lw_b4", "p330", "lw-pay-4")
    assert (await buyer.ok("buy_coins", package="p330", receipt=receipt))["coins"] == 330
    await clean_audit(server)

    # the receipt's master loses the claim; the buyer's keeps the credit
    assert await server.backend.redis.delete(claim_key(server, "lw-pay-4")) == 1

    checks, lines = await broken(server)
    assert failing(checks) == {"receipts_claimed"}
    receipts = checks["receipts_claimed"]
    assert receipts["credited_not_claimed"] == [
        {"receipt": "lw-pay-4", "user": "lw_b4", "coins": 330, "claim": "gone"}
    ]
    assert (receipts["credits_unclaimed"], receipts["claimed_not_credited"]) == (1, [])
    assert (
        "      coins credited, the receipt's claim is gone: receipt=lw-pay-4 user=lw_b4 "
        "coins=330 claim=gone"
    ) in lines

    # the repair: the buyer presents the receipt again; the claim is made, nothing moves
    assert (await buyer.ok("buy_coins", package="p330", receipt=receipt))["coins"] == 330
    assert await server.backend.redis.get(claim_key(server, "lw-pay-4")) == "lw_b4|p330"
    assert (await buyer.ok("wallet"))["coins"] == 330
    await clean_audit(server)

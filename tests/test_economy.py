"""The money side beyond gifts (issue 3): subscriptions, live shopping, withdrawals with a
hold, and the rolling-day spend limit. Every scenario ends with the full audit.

All of it runs over real WebSockets against in-process nodes and the real store; the ops
that move value run in both codecs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.client import JSON, MSGPACK, Client
from tests.conftest import Running, ServerFactory

CODECS = [pytest.param(JSON, id="json"), pytest.param(MSGPACK, id="msgpack")]
DAY = 86400
MONTH = 30 * DAY
AUDIT_CHECKS = {
    "coins_conserved",
    "nothing_negative",
    "settled_exactly_once",
    "diamonds_accounted",
    "idempotency",
    "stock_conserved",
    "receipts_claimed",
    "boxes_conserved",
    "series_access_paid",
    "refunds_whole",
    "subs_paid",
}


async def audited(server: Running) -> dict[str, dict[str, Any]]:
    """Settle, run the audit, assert every check passes; return the checks by name."""
    report = await server.audit()
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == AUDIT_CHECKS
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    return checks


async def wallet(c: Client) -> dict[str, Any]:
    return await c.ok("wallet")


async def live_room(server: Running, creator: str, room: str, codec: str = JSON) -> Client:
    """A creator's connection, with the creator's room open and joined."""
    c = await server.connect(creator, "creator", codec)
    await c.ok("room_open", room=room, title=f"{creator} live")
    await c.ok("join", room=room)
    return c


async def viewer_in(server: Running, user: str, room: str, coins: int, codec: str = JSON) -> Client:
    await server.grant(user, coins)
    v = await server.connect(user, "viewer", codec)
    await v.ok("join", room=room)
    return v


# -- subscriptions -------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
async def test_subscribe_at_creator_price_and_extend(server: Running, codec: str) -> None:
    creator = await live_room(server, "cr", "subroom", codec)
    assert (await creator.ok("sub_price", price=700))["price"] == 700
    v = await viewer_in(server, "fan", "subroom", 5000, codec)

    before = int(time.time())
    r1 = await v.ok("subscribe", room="subroom", key="s1")
    after = int(time.time())
    assert before + MONTH <= r1["until"] <= after + MONTH
    assert r1["coins"] == 5000 - 700
    ev = await creator.event("sub", lambda e: e["from"] == "fan")
    assert ev["until"] == r1["until"] and ev["room"] == "subroom" and isinstance(ev["seq"], int)

    # an active subscription is extended by exactly 30 days
    r2 = await v.ok("subscribe", room="subroom", key="s2")
    assert r2["until"] == r1["until"] + MONTH
    assert r2["coins"] == 5000 - 1400
    await creator.event("sub", lambda e: e["until"] == r2["until"])

    # a replayed key moves nothing and answers the first result
    again = await v.ok("subscribe", room="subroom", key="s1")
    assert again["until"] == r1["until"] and again["coins"] == r1["coins"]
    assert (await wallet(v))["coins"] == 5000 - 1400
    assert len([e for e in creator.events if e["ev"] == "sub"]) == 2

    # the price is for future subscriptions; join shows price and expiry
    await creator.ok("sub_price", price=1750)
    j = await v.ok("join", room="subroom")
    assert j["sub_price"] == 1750 and j["subscribed_until"] == r2["until"]
    r3 = await v.ok("subscribe", room="subroom", key="s3")
    assert r3["coins"] == 5000 - 1400 - 1750 and r3["until"] == r2["until"] + MONTH

    checks = await audited(server)
    # the creator earns 5000 bps of 700 + 700 + 1750
    assert (await wallet(creator))["diamonds"] == (700 + 700 + 1750) * 5000 // 10000
    assert checks["coins_conserved"]["by_kind"]["spend:sub"] == 3150
    assert checks["diamonds_accounted"]["diamonds_credited"] == 1575


async def test_subscribe_errors_move_nothing(server: Running) -> None:
    creator = await live_room(server, "cr", "subroom")
    v = await viewer_in(server, "fan", "subroom", 400)
    other = await server.connect("otherroom_cr", "creator")
    await other.ok("room_open", room="elsewhere", title="x")

    assert await creator.error("subscribe", room="subroom", key="me") == "forbidden"
    assert await v.error("subscribe", room="nosuchroom", key="k0") == "not_found"
    await v.ok("subscribe", room="subroom", key="k1")
    # same key, other arguments
    assert await v.error("subscribe", room="elsewhere", key="k1") == "idempotency_conflict"
    # 50 coins left: not enough for another month
    assert await v.error("subscribe", room="subroom", key="k2") == "insufficient_funds"
    assert (await wallet(v))["coins"] == 50
    # prices are the catalogue's only; only creators set one
    assert await creator.error("sub_price", price=500) == "bad_request"
    assert await creator.error("sub_price", price=0) == "bad_request"
    assert await v.error("sub_price", price=700) == "forbidden"
    cat = await v.ok("catalog")
    assert cat["sub_prices"] == [350, 700, 1750]
    await audited(server)


async def test_sub_badge_and_subscribers_only_chat(server: Running) -> None:
    creator = await live_room(server, "cr", "chatroom")
    subbed = await viewer_in(server, "subbed", "chatroom", 1000, MSGPACK)
    plain = await viewer_in(server, "plain", "chatroom", 1000)
    await subbed.ok("subscribe", room="chatroom", key="k")

    await subbed.ok("chat", room="chatroom", text="hello from a fan")
    await plain.ok("chat", room="chatroom", text="hello from a viewer")
    ev1 = await creator.event("chat", lambda e: e["from"] == "subbed")
    ev2 = await creator.event("chat", lambda e: e["from"] == "plain")
    assert ev1["badge"] == "sub" and ev2["badge"] is None

    assert await plain.error("chat_mode", room="chatroom", subscribers_only=True) == "forbidden"
    r = await creator.ok("chat_mode", room="chatroom", subscribers_only=True)
    assert r["subscribers_only"] is True
    mode = await plain.event("chat_mode", lambda e: e["subscribers_only"] is True)
    assert "seq" not in mode
    await subbed.event("chat_mode")
    assert await plain.error("chat", room="chatroom", text="let me talk") == "forbidden"
    await subbed.ok("chat", room="chatroom", text="subscribers only now")
    await creator.ok("chat", room="chatroom", text="the creator always talks")
    assert (await plain.ok("join", room="chatroom"))["subscribers_only"] is True

    # a viewer that joins afterwards (another connection) sees the mode too
    late = await viewer_in(server, "late", "chatroom", 0)
    assert await late.error("chat", room="chatroom", text="hi") == "forbidden"

    await creator.ok("chat_mode", room="chatroom", subscribers_only=False)
    await plain.event("chat_mode", lambda e: e["subscribers_only"] is False)
    await plain.ok("chat", room="chatroom", text="back again")
    await audited(server)


async def test_subscribers_only_chat_across_two_nodes(make_server: ServerFactory) -> None:
    a = await make_server()
    b = await make_server()
    creator = await live_room(a, "cr", "tworoom")
    subbed = await viewer_in(b, "subbed", "tworoom", 1000, MSGPACK)
    plain = await viewer_in(b, "plain", "tworoom", 0)
    await subbed.ok("subscribe", room="tworoom", key="k")
    await creator.event("sub", lambda e: e["from"] == "subbed")

    await creator.ok("chat_mode", room="tworoom", subscribers_only=True)
    await plain.event("chat_mode", lambda e: e["subscribers_only"] is True)
    assert await plain.error("chat", room="tworoom", text="hi") == "forbidden"
    await subbed.ok("chat", room="tworoom", text="from node b")
    ev = await creator.event("chat", lambda e: e["text"] == "from node b")
    assert ev["badge"] == "sub"
    # a viewer joining on a third node reads the mode from the store
    c = await make_server()
    late = await viewer_in(c, "late", "tworoom", 0)
    assert (await late.ok("join", room="tworoom"))["subscribers_only"] is True
    assert await late.error("chat", room="tworoom", text="hi") == "forbidden"
    await audited(a)


async def test_subscription_expiry_exact_to_the_second(server: Running) -> None:
    creator = await live_room(server, "cr", "exproom")
    v = await viewer_in(server, "fan", "exproom", 1000)
    await v.ok("subscribe", room="exproom", key="k1")
    await creator.ok("chat_mode", room="exproom", subscribers_only=True)
    await v.event("chat_mode")

    # Bring the stored expiry close: it ends at the start of the next second but one.
    expires = int(time.time()) + 2
    await server.backend.redis.set(server.backend.user("fan").sub("cr"), expires)
    assert (await v.ok("join", room="exproom"))["subscribed_until"] == expires
    await v.ok("chat", room="exproom", text="still a subscriber")
    assert (await creator.event("chat", lambda e: e["text"] == "still a subscriber"))[
        "badge"
    ] == "sub"

    await asyncio.sleep(max(0.0, expires - time.time() - 0.3))
    assert time.time() < expires
    await v.ok("chat", room="exproom", text="last moment")
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.02)
    assert await v.error("chat", room="exproom", text="expired") == "forbidden"
    assert (await v.ok("join", room="exproom"))["subscribed_until"] == 0

    # renewing after expiry starts from now, not from the old end
    r = await v.ok("subscribe", room="exproom", key="k2")
    assert int(time.time()) + MONTH - 1 <= r["until"] <= int(time.time()) + MONTH
    await v.ok("chat", room="exproom", text="renewed")
    await audited(server)


# -- live shopping -------------------------------------------------------------------


async def test_products_create_restock_list(server: Running) -> None:
    brand = await server.connect("brand", "creator")
    rival = await server.connect("rival", "creator")
    viewer = await server.connect("viewer")

    p = await brand.ok("product_create", product="tee", title="T-shirt", price=300, stock=5)
    assert {k: p[k] for k in ("product", "title", "seller", "price", "stock", "commission")} == {
        "product": "tee",
        "title": "T-shirt",
        "seller": "brand",
        "price": 300,
        "stock": 5,
        "commission": 1000,
    }
    p2 = await brand.ok(
        "product_create", product="mug", title="Mug", price=150, stock=0, commission=2500
    )
    assert p2["commission"] == 2500 and p2["stock"] == 0
    await rival.ok("product_create", product="cap", title="Cap", price=200, stock=1, commission=0)

    assert (
        await brand.error("product_create", product="tee", title="again", price=1, stock=1)
        == "bad_request"
    )
    for bad in (
        {"price": 0, "stock": 1},
        {"price": 1_000_001, "stock": 1},
        {"price": 10, "stock": -1},
        {"price": 10, "stock": 1, "commission": 9201},
        {"price": 1.5, "stock": 1},
    ):
        code = await brand.error("product_create", product="bad", title="bad", **bad)
        assert code == "bad_request", bad
    assert (
        await viewer.error("product_create", product="v1", title="V", price=1, stock=1)
        == "forbidden"
    )

    assert (await brand.ok("product_restock", product="mug", qty=7))["stock"] == 7
    assert await rival.error("product_restock", product="mug", qty=1) == "forbidden"
    assert await brand.error("product_restock", product="nope", qty=1) == "not_found"
    assert await brand.error("product_restock", product="mug", qty=0) == "bad_request"

    everything = (await viewer.ok("products"))["products"]
    assert sorted(x["product"] for x in everything) == ["cap", "mug", "tee"]
    mine = (await viewer.ok("products", seller="brand"))["products"]
    assert sorted(x["product"] for x in mine) == ["mug", "tee"]
    assert next(x for x in mine if x["product"] == "mug")["stock"] == 7
    checks = await audited(server)
    assert checks["stock_conserved"]["products"] == 3


@pytest.mark.parametrize("codec", CODECS)
async def test_pin_buy_purchase_event_and_settlement(server: Running, codec: str) -> None:
    host = await live_room(server, "host", "shoproom", codec)
    brand = await server.connect("brand", "creator", codec)
    await brand.ok(
        "product_create", product="lamp", title="Lamp", price=100, stock=5, commission=1500
    )
    watcher = await viewer_in(server, "watcher", "shoproom", 0, codec)

    assert await brand.error("pin", room="shoproom", product="lamp") == "forbidden"
    assert await host.error("pin", room="shoproom", product="nope") == "not_found"
    pin = await host.ok("pin", room="shoproom", product="lamp")
    ev = await watcher.event("pinned", lambda e: e["product"] == "lamp")
    assert ev["seq"] == pin["seq"]
    assert (ev["title"], ev["price"], ev["stock"], ev["seller"]) == ("Lamp", 100, 5, "brand")

    buyer = await viewer_in(server, "buyer", "shoproom", 1000, codec)
    j = await buyer.ok("join", room="shoproom")
    assert j["pinned"] == "lamp"
    assert j["pinned_product"] == {
        "product": "lamp",
        "title": "Lamp",
        "seller": "brand",
        "price": 100,
        "stock": 5,
        "commission": 1500,
    }

    r = await buyer.ok("buy", room="shoproom", product="lamp", qty=2, key="o1")
    assert r["coins"] == 800 and isinstance(r["order"], str)
    pev = await watcher.event("purchase", lambda e: e["from"] == "buyer")
    assert (pev["product"], pev["qty"], pev["stock"]) == ("lamp", 2, 3)
    assert isinstance(pev["seq"], int) and pev["seq"] > pin["seq"]

    # replay: the same order, nothing moves, no second event
    again = await buyer.ok("buy", room="shoproom", product="lamp", qty=2, key="o1")
    assert again == {**r, "id": again["id"]}
    assert await buyer.error("buy", room="shoproom", product="lamp", qty=3, key="o1") == (
        "idempotency_conflict"
    )
    # out of stock moves nothing
    assert await buyer.error("buy", room="shoproom", product="lamp", qty=4, key="o2") == (
        "out_of_stock"
    )
    assert (await wallet(buyer))["coins"] == 800
    stock = {p["product"]: p["stock"] for p in (await buyer.ok("products"))["products"]}
    assert stock["lamp"] == 3

    orders = (await buyer.ok("orders"))["orders"]
    assert [(o["order"], o["product"], o["qty"], o["coins"]) for o in orders] == [
        (r["order"], "lamp", 2, 200)
    ]
    await asyncio.sleep(0.1)
    assert len([e for e in watcher.events if e["ev"] == "purchase"]) == 1

    # unpin
    await host.ok("pin", room="shoproom")
    unpinned = await watcher.event("pinned", lambda e: e["product"] is None)
    assert unpinned["seq"] > pev["seq"]
    assert (await buyer.ok("join", room="shoproom"))["pinned_product"] is None

    checks = await audited(server)
    # seller 10000 - 800 - 1500 = 7700 bps of 200; host 1500 bps; platform keeps 800
    assert (await wallet(brand))["diamonds"] == 200 * 7700 // 10000 == 154
    assert (await wallet(host))["diamonds"] == 200 * 1500 // 10000 == 30
    assert checks["stock_conserved"]["units_sold"] == 2
    assert checks["coins_conserved"]["by_kind"]["spend:shop"] == 200


async def test_buy_rules(server: Running) -> None:
    host = await live_room(server, "host", "shoproom")
    await host.ok("product_create", product="own", title="Own", price=10, stock=10)
    buyer = await server.connect("buyer")
    await server.grant("buyer", 5)
    assert (
        await buyer.error("buy", room="shoproom", product="own", qty=1, key="a") == "forbidden"
    )  # not in the room
    await buyer.ok("join", room="shoproom")
    assert await buyer.error("buy", room="shoproom", product="nope", qty=1, key="b") == (
        "not_found"
    )
    assert await buyer.error("buy", room="shoproom", product="own", qty=1, key="c") == (
        "insufficient_funds"
    )
    assert await buyer.error("buy", room="shoproom", product="own", qty=0, key="d") == (
        "bad_request"
    )
    assert await buyer.error("buy", room="shoproom", product="own", qty=100, key="e") == (
        "bad_request"
    )
    # the seller cannot buy their own product
    assert await host.error("buy", room="shoproom", product="own", qty=1, key="f") == "forbidden"
    # a failed purchase left the stock whole; a retry of the same key after a top-up works
    await server.grant("buyer", 100)
    r = await buyer.ok("buy", room="shoproom", product="own", qty=1, key="c")
    assert r["coins"] == 95
    await host.ok("room_close", room="shoproom")
    code = await buyer.error("buy", room="shoproom", product="own", qty=1, key="g")
    assert code == "not_live"
    checks = await audited(server)
    assert checks["stock_conserved"]["units_sold"] == 1
    assert checks["stock_conserved"]["units_reserved"] == 0


async def test_abandoned_purchases_are_finished_by_the_sweeper(server: Running) -> None:
    """A node that dies inside a purchase leaves a stock reservation open. The sweeper
    sells it when the buyer was debited and returns the stock when not (closing the key,
    so a late retry can never debit)."""
    from livesrv.services import shop, wallet
    from livesrv.store.facade import args_hash, now_ms
    from livesrv.store.keys import ProductKeys

    host = await live_room(server, "host", "sweep")
    await host.ok("product_create", product="bag", title="Bag", price=40, stock=5)
    buyer = await viewer_in(server, "buyer", "sweep", 1000)
    b = server.backend
    pk = ProductKeys("bag")
    digest = args_hash("buy", {"room": "sweep", "product": "bag", "qty": 2})

    async def reserve(key: str) -> int:
        status, _, exp = await b.run(
            "reserve_stock",
            [pk.meta, pk.reservations, pk.reservation_queue, pk.reservation_expiry],
            [f"buyer|{key}", 2, digest, now_ms() - 120_000, b.settings.idempotency_ttl * 1000],
        )
        assert status == "reserved"
        return int(exp)

    # died after reserving, before the debit
    await reserve("lost")
    # died after the debit, before marking the reservation sold
    exp = await reserve("paid")
    await wallet.spend(
        b,
        "buyer",
        kind="shop",
        amount=80,
        key="paid",
        digest=digest,
        payload={"room": "sweep", "product": "bag", "qty": 2, "order": "o-paid", "e": []},
        extra_key=b.user("buyer").orders,
        exp=exp,
        params=('{"order": "o-paid"}', 0),
        reply={"order": "o-paid"},
    )
    assert (await b.redis.hgetall(pk.meta))["stock"] == "1"

    # the lost one is finished by this sweep; the paid one by it, or already by the node's
    # own settlement worker, which marks a paid reservation sold when it settles the debit
    assert await shop.sweep(b) in (1, 2)
    meta = await b.redis.hgetall(pk.meta)
    assert (meta["stock"], meta["sold"], meta["reserved"]) == ("3", "2", "0")
    # the debited one answers its first result; the other key is closed for good
    r = await buyer.ok("buy", room="sweep", product="bag", qty=2, key="paid")
    assert (r["order"], r["coins"]) == ("o-paid", 920)
    code = await buyer.error("buy", room="sweep", product="bag", qty=2, key="lost")
    assert code == "idempotency_conflict"
    assert (await wallet.read(b, "buyer"))["coins"] == 920
    assert (await b.redis.hgetall(pk.meta))["stock"] == "3"
    checks = await audited(server)
    assert checks["stock_conserved"]["units_sold"] == 2


async def test_race_of_100_buyers_for_10_units(server: Running) -> None:
    host = await live_room(server, "host", "race")
    await host.ok("product_create", product="drop", title="Limited", price=250, stock=10)
    n = 100
    buyers = await asyncio.gather(*(viewer_in(server, f"b{i:03d}", "race", 1000) for i in range(n)))
    t0 = time.perf_counter()
    replies = await asyncio.gather(
        *(b.call("buy", room="race", product="drop", qty=1, key="k") for b in buyers)
    )
    elapsed = time.perf_counter() - t0
    ok = [r for r in replies if r["ok"]]
    codes = sorted(r["error"]["code"] for r in replies if not r["ok"])
    assert len(ok) == 10 and codes == ["out_of_stock"] * 90, codes[:5]
    assert len({r["order"] for r in ok}) == 10

    assert (await host.ok("products"))["products"][0]["stock"] == 0
    # the room saw ten purchases, each with the units it left: 9, 8, ... 0
    await host.wait(lambda: len([e for e in host.events if e["ev"] == "purchase"]) == 10)
    stocks = sorted(e["stock"] for e in host.events if e["ev"] == "purchase")
    assert stocks == list(range(10))
    coins = [(await wallet(b))["coins"] for b in buyers]
    assert sorted(coins) == [750] * 10 + [1000] * 90
    assert sum(1000 - c for c in coins) == 10 * 250  # no coin lost or made

    checks = await audited(server)
    assert checks["stock_conserved"]["units_sold"] == 10
    assert checks["stock_conserved"]["units_reserved"] == 0
    assert checks["coins_conserved"]["by_kind"]["spend:shop"] == 2500
    assert (await wallet(host))["diamonds"] == 2500 * 9200 // 10000
    print(f"race: 100 buyers for 10 units answered in {elapsed * 1000:.0f} ms")
    # sold out: a fresh key reads out_of_stock, a key used for something else a conflict
    loser = buyers[[i for i, c in enumerate(coins) if c == 1000][0]]
    await loser.ok("subscribe", room="race", key="used")
    assert await loser.error("buy", room="race", product="drop", qty=1, key="fresh") == (
        "out_of_stock"
    )
    assert await loser.error("buy", room="race", product="drop", qty=1, key="used") == (
        "idempotency_conflict"
    )


# -- withdrawals and the hold ----------------------------------------------------------


async def test_hold_then_withdraw_paid_and_rejected(make_server: ServerFactory) -> None:
    server = await make_server(hold_seconds=2)
    creator = await live_room(server, "cr", "wroom")
    hello = await creator.ok("hello", token=server.token("cr", "creator"))
    assert hello["pending"] == 0 and hello["diamonds"] == 0
    fan = await viewer_in(server, "fan", "wroom", 20_000)
    await fan.ok("gift", room="wroom", gift="drama_queen", count=2, key="g1")  # 10000 coins
    await server.settle()
    settled_at = time.monotonic()

    w = await wallet(creator)
    assert (w["diamonds"], w["pending"]) == (0, 5000)
    ev = await creator.event("wallet", lambda e: e["pending"] == 5000)
    assert ev["diamonds"] == 0
    # pending diamonds cannot be withdrawn
    assert await creator.error("withdraw", diamonds=2000, key="w0") == "insufficient_funds"

    await asyncio.sleep(max(0.0, 2.05 - (time.monotonic() - settled_at)))
    w = await wallet(creator)
    assert (w["diamonds"], w["pending"]) == (5000, 0)

    assert await creator.error("withdraw", diamonds=1999, key="w1") == "bad_request"
    assert await fan.error("withdraw", diamonds=2000, key="w1") == "forbidden"
    assert await creator.error("withdraw", diamonds=6000, key="w1") == "insufficient_funds"
    r1 = await creator.ok("withdraw", diamonds=2000, key="w1")
    assert (r1["diamonds"], r1["cents"]) == (3000, 1000)  # 200 diamonds = $1
    again = await creator.ok("withdraw", diamonds=2000, key="w1")
    assert (again["withdrawal"], again["diamonds"]) == (r1["withdrawal"], 3000)
    assert await creator.error("withdraw", diamonds=2001, key="w1") == "idempotency_conflict"
    r2 = await creator.ok("withdraw", diamonds=2001, key="w2")
    assert (r2["diamonds"], r2["cents"]) == (999, 1000)  # cents round down
    await creator.event("wallet", lambda e: e["diamonds"] == 999)

    mine = (await creator.ok("withdrawals"))["withdrawals"]
    assert [(x["withdrawal"], x["diamonds"], x["status"]) for x in mine] == [
        (r2["withdrawal"], 2001, "requested"),
        (r1["withdrawal"], 2000, "requested"),
    ]
    assert await fan.error("withdrawals") == "forbidden"

    from livesrv.services import withdrawals

    b = server.backend
    await withdrawals.set_status(b, r1["withdrawal"], "paid")
    await withdrawals.set_status(b, r2["withdrawal"], "rejected")
    w = await wallet(creator)
    assert w["diamonds"] == 999 + 2001
    statuses = {
        x["withdrawal"]: x["status"] for x in (await creator.ok("withdrawals"))["withdrawals"]
    }
    assert statuses == {r1["withdrawal"]: "paid", r2["withdrawal"]: "rejected"}
    checks = await audited(server)
    figures = checks["diamonds_accounted"]
    assert figures["diamonds_credited"] == 5000 and figures["mismatches"] == []


# -- the rolling-day spend limit ------------------------------------------------------


async def test_day_limit_across_gifts_subscriptions_and_purchases(
    make_server: ServerFactory,
) -> None:
    server = await make_server(day_limit=1000)
    host = await live_room(server, "host", "lim")
    await host.ok("product_create", product="pen", title="Pen", price=100, stock=10)
    v = await viewer_in(server, "spender", "lim", 5000)

    await v.ok("gift", room="lim", gift="concert", count=1, key="g1")  # 500
    await v.ok("subscribe", room="lim", key="s1")  # 350 -> 850 today
    assert await v.error("buy", room="lim", product="pen", qty=2, key="b1") == "limit_exceeded"
    assert (await wallet(v))["coins"] == 5000 - 850
    assert (await v.ok("products"))["products"][0]["stock"] == 10
    await v.ok("buy", room="lim", product="pen", qty=1, key="b2")  # 950
    await v.ok("gift", room="lim", gift="rose", count=50, key="g2")  # exactly 1000
    assert await v.error("gift", room="lim", gift="rose", count=1, key="g3") == "limit_exceeded"
    assert await v.error("subscribe", room="lim", key="s2") == "limit_exceeded"
    assert (await wallet(v))["coins"] == 4000
    # the limit is per viewer
    other = await viewer_in(server, "other", "lim", 2000)
    await other.ok("gift", room="lim", gift="concert", count=2, key="g1")

    # a day later the window has rolled: age every recorded spend by 24 h
    redis = server.backend.redis
    window = server.backend.user("spender").spent
    aged = {m: s - DAY * 1000 - 1 for m, s in await redis.zrange(window, 0, -1, withscores=True)}
    await redis.zadd(window, aged)
    await v.ok("gift", room="lim", gift="concert", count=1, key="g4")
    await v.ok("gift", room="lim", gift="concert", count=1, key="g5")
    assert await v.error("gift", room="lim", gift="rose", count=1, key="g6") == "limit_exceeded"
    assert (await wallet(v))["coins"] == 3000
    checks = await audited(server)
    assert checks["coins_conserved"]["spent"] == 2000 + 1000


async def test_day_limit_recovers_when_the_window_key_expires(make_server: ServerFactory) -> None:
    """The spend window carries a TTL; when it lapses (a quiet day), the limit resets."""
    server = await make_server(day_limit=1000)
    await live_room(server, "host", "lim")
    v = await viewer_in(server, "spender", "lim", 5000)
    await v.ok("gift", room="lim", gift="concert", count=2, key="g1")  # the whole limit
    assert await v.error("gift", room="lim", gift="rose", count=1, key="g2") == "limit_exceeded"
    # what the store does by itself once the window's TTL (a day and a minute) runs out
    await server.backend.redis.delete(server.backend.user("spender").spent)
    await v.ok("gift", room="lim", gift="rose", count=1, key="g2")
    await audited(server)


async def test_wallet_event_and_hello_carry_pending(make_server: ServerFactory) -> None:
    server = await make_server(hold_seconds=3600)
    creator = await live_room(server, "cr", "pend")
    fan = await viewer_in(server, "fan", "pend", 100)
    await fan.ok("gift", room="pend", gift="rose", count=3, key="a")
    await fan.ok("gift", room="pend", gift="rose", count=1, key="b")
    ev = await creator.event("wallet", lambda e: e["pending"] == 2)
    assert ev["diamonds"] == 0
    again = await server.connect("cr", "creator")
    hello = await again.ok("hello", token=server.token("cr", "creator"))
    assert (hello["pending"], hello["diamonds"]) == (2, 0)
    # remainders carry: 3 + 1 roses are 4 coins -> 2 diamonds, not 1 + 0
    checks = await audited(server)
    assert checks["diamonds_accounted"]["diamonds_credited"] == 2

"""One lifetime per idempotency key, and exact integers (issue 8, items 2 and 3).

Every record derived from a key (stock reservation, order id, withdrawal id, room event id)
lives exactly as long as the key's idempotency record; a key reused after that is a new
request in every record. Balances up to 2^53 - 1 come back as exact integers in every
reply and event, in both codecs, and nothing can push a balance past that bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from livesrv import audit
from livesrv.store.keys import RoomKeys
from tests.client import JSON, MSGPACK, Client
from tests.conftest import Running, ServerFactory
from tests.timing import scaled

MAX = (1 << 53) - 1
TTL = 1  # seconds: LIVESRV_IDEMPOTENCY_TTL of the servers here


@pytest.fixture
async def short(make_server: ServerFactory) -> Running:
    """A server whose idempotency records live one second."""
    return await make_server(idempotency_ttl=TTL, min_withdrawal=1)


@pytest.fixture(params=[JSON, MSGPACK], ids=["json", "msgpack"])
def codec(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def gone(server: Running, user: str, key: str, timeout: float = 10) -> None:
    """Poll until ``user``'s idempotency record for ``key`` has expired."""
    idem = server.backend.user(user).idem(key)
    async with asyncio.timeout(scaled(timeout)):
        while await server.backend.redis.exists(idem):
            await asyncio.sleep(0.02)


async def live_room(server: Running, creator: str, room: str) -> Client:
    c = await server.connect(creator, "creator")
    await c.ok("room_open", room=room, title="t")
    await c.ok("join", room=room)
    return c


async def viewer(server: Running, user: str, room: str, coins: int, codec: str = JSON) -> Client:
    await server.grant(user, coins)
    c = await server.connect(user, codec=codec)
    await c.ok("join", room=room)
    return c


async def audit_ok(server: Running) -> None:
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]


async def test_buy_key_reused_after_expiry_is_a_new_order_with_its_own_stock(
    short: Running,
) -> None:
    host = await live_room(short, "kl_host1", "kl_shop")
    await host.ok("product_create", product="kl_mug", title="Mug", price=30, stock=5)
    bob = await viewer(short, "kl_bob1", "kl_shop", 100)
    first = await bob.ok("buy", room="kl_shop", product="kl_mug", qty=2, key="k")
    again = await bob.ok("buy", room="kl_shop", product="kl_mug", qty=2, key="k")
    assert (again["order"], again["coins"]) == (first["order"], 40)
    await gone(short, "kl_bob1", "k")
    # the key's lifetime is over: a new purchase in every record (charge, stock, order)
    second = await bob.ok("buy", room="kl_shop", product="kl_mug", qty=1, key="k")
    assert second["coins"] == 10 and second["order"] != first["order"]
    products = (await bob.ok("products", seller="kl_host1"))["products"]
    assert [p["stock"] for p in products] == [2]
    orders = (await bob.ok("orders"))["orders"]
    assert [(o["order"], o["qty"]) for o in orders] == [(second["order"], 1), (first["order"], 2)]
    # a product without the stock for it refuses the reused key and moves nothing
    await gone(short, "kl_bob1", "k")
    assert await bob.error("buy", room="kl_shop", product="kl_mug", qty=3, key="k") == (
        "out_of_stock"
    )
    assert (await bob.ok("wallet"))["coins"] == 10
    await audit_ok(short)


async def test_withdraw_key_reused_after_expiry_never_overwrites_a_withdrawal(
    short: Running,
) -> None:
    creator = await live_room(short, "kl_cr2", "kl_wd")
    fan = await viewer(short, "kl_fan2", "kl_wd", 100)
    await fan.ok("gift", room="kl_wd", gift="rainbow_puke", count=1, key="g")  # 50 diamonds
    await short.settle()
    w1 = await creator.ok("withdraw", diamonds=20, key="w")
    from livesrv.services import withdrawals

    await withdrawals.set_status(short.backend, w1["withdrawal"], "paid")
    await gone(short, "kl_cr2", "w")
    w2 = await creator.ok("withdraw", diamonds=20, key="w")
    assert w2["withdrawal"] != w1["withdrawal"] and w2["diamonds"] == 10
    mine = (await creator.ok("withdrawals"))["withdrawals"]
    assert sorted((x["withdrawal"], x["diamonds"], x["status"]) for x in mine) == sorted(
        [(w1["withdrawal"], 20, "paid"), (w2["withdrawal"], 20, "requested")]
    )
    await audit_ok(short)


async def test_gift_event_id_lives_exactly_as_long_as_the_key(short: Running) -> None:
    """A retry within the key's lifetime is neither charged nor shown again; after it, the
    same key is a new gift: charged, shown and counted on the leaderboard once more."""
    creator = await live_room(short, "kl_cr3", "kl_gift")
    bob = await viewer(short, "kl_bob3", "kl_gift", 100)
    await bob.ok("gift", room="kl_gift", gift="rainbow_puke", count=1, key="g")
    redis = short.backend.redis
    idem = short.backend.user("kl_bob3").idem("g")
    evids = [k async for k in redis.scan_iter(f"{RoomKeys('kl_gift').tag}:ev:g:*")]
    assert len(evids) == 1
    # the room's event id record dies at the very millisecond the idempotency record does
    assert await redis.pexpiretime(evids[0]) == await redis.pexpiretime(idem) > 0
    retry = await bob.ok("gift", room="kl_gift", gift="rainbow_puke", count=1, key="g")
    assert retry["coins"] == 0
    await gone(short, "kl_bob3", "g")
    assert not await redis.exists(evids[0])
    await short.grant("kl_bob3", 100, key="more")
    again = await bob.ok("gift", room="kl_gift", gift="rainbow_puke", count=1, key="g")
    assert again["coins"] == 0
    await creator.wait(lambda: len([e for e in creator.events if e["ev"] == "gift"]) == 2)
    top = await creator.event("top", lambda e: e["top"] == [["kl_bob3", 200]])
    assert top["top"] == [["kl_bob3", 200]]
    await audit_ok(short)
    gifts = [e["seq"] for e in creator.events if e["ev"] == "gift"]
    assert len(gifts) == 2


async def test_an_event_whose_key_expired_is_never_logged_again(short: Running) -> None:
    """Settlement re-logs events of paid spends from the outbox; once the key's lifetime
    is over it cannot tell whether it was logged, so it logs nothing (no repeat)."""
    from livesrv.services import rooms

    creator = await live_room(short, "kl_cr4", "kl_relog")
    bob = await viewer(short, "kl_bob4", "kl_relog", 400)
    await bob.ok("subscribe", room="kl_relog", key="s")
    sub = await creator.event("sub")
    await gone(short, "kl_bob4", "s")
    entries = await short.backend.redis.xrange(short.backend.user("kl_bob4").shard.outbox)
    payload = next(orjson.loads(f["p"]) for _, f in entries if f["user"] == "kl_bob4")
    seq = await rooms.log_event(
        short.backend, "kl_relog", payload["ev"], evid=payload["evid"], exp=payload["x"]
    )
    assert seq == 0
    await creator.ok("chat", room="kl_relog", text="after")
    await creator.event("chat")
    assert [e["seq"] for e in creator.events if e["ev"] == "sub"] == [sub["seq"]]


# -- exact integers ----------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def grant(
    server: Running, http: aiohttp.ClientSession, user: str, coins: int, key: str
) -> tuple[int, Any]:
    async with http.post(
        f"{server.http_url}/api/users/{user}/grant",
        json={"coins": coins, "key": key, "reason": "big"},
        headers={"Authorization": "Bearer " + server.token("ops", "admin")},
    ) as resp:
        return resp.status, await resp.json()


async def test_balances_up_to_2_pow_53_minus_1_are_exact(
    server: Running, http: aiohttp.ClientSession, codec: str
) -> None:
    user = f"kl_whale_{codec[-4:]}"
    creator = await live_room(server, f"kl_star_{codec[-4:]}", f"kl_big_{codec[-4:]}")
    whale = await server.connect(user, codec=codec)
    await whale.ok("join", room=f"kl_big_{codec[-4:]}")
    status, body = await grant(server, http, user, MAX - 7, "big-1")
    assert (status, body) == (200, {"coins": MAX - 7})
    ev = await whale.event("wallet", lambda e: e["coins"] != 0)
    assert ev["coins"] == MAX - 7 and isinstance(ev["coins"], int)
    status, body = await grant(server, http, user, 7, "big-2")
    assert (status, body) == (200, {"coins": MAX})
    hello = await (await server.connect(user, codec=codec)).ok("hello", token=server.token(user))
    assert hello["coins"] == MAX
    assert (await whale.ok("wallet"))["coins"] == MAX
    # one more coin would pass the bound: refused, nothing moves
    status, body = await grant(server, http, user, 1, "big-3")
    assert (status, body["error"]["code"]) == (409, "limit_exceeded")
    assert (await whale.ok("wallet"))["coins"] == MAX
    gift = await whale.ok("gift", room=f"kl_big_{codec[-4:]}", gift="rose", count=3, key="g")
    assert gift["coins"] == MAX - 3 and isinstance(gift["coins"], int)
    replay = await whale.ok("gift", room=f"kl_big_{codec[-4:]}", gift="rose", count=3, key="g")
    assert replay["coins"] == MAX - 3
    ev = await whale.event("wallet", lambda e: e["coins"] == MAX - 3)
    assert type(ev["coins"]) is int
    assert (await whale.ok("wallet"))["coins"] == MAX - 3
    await creator.event("gift", lambda e: e["from"] == user)
    await audit_ok(server)


async def test_integers_past_2_pow_53_minus_1_are_refused(server: Running) -> None:
    creator = await server.connect("kl_cr6", "creator")
    assert await creator.error("withdraw", diamonds=MAX + 1, key="w") == "bad_request"
    assert await creator.error("withdraw", diamonds=MAX, key="w") == "insufficient_funds"
    await creator.send_raw(creator.encode({"id": MAX + 1, "op": "wallet"}))
    reply = await creator.wait(lambda: creator.replies.pop(None, None))
    assert reply["error"]["code"] == "bad_request"
    assert (await creator.request({"id": MAX, "op": "wallet"}))["id"] == MAX


async def test_a_settlement_past_2_pow_53_minus_1_is_refused(server: Running) -> None:
    """No real spend gets there, so the earner's totals are seeded near the bound; the
    settlement step then refuses and moves nothing, and the audit shows the entry unsettled
    instead of a rounded balance."""
    creator = await live_room(server, "kl_cr7", "kl_cap")
    b = server.backend
    wallet_key = b.user("kl_cr7").wallet
    await b.redis.hset(wallet_key, mapping={"diamonds": MAX - 10, "credited": MAX - 10})
    await b.redis.sadd(b.user("kl_cr7").shard.wallets, "kl_cr7")
    fan = await viewer(server, "kl_fan7", "kl_cap", 100)
    await fan.ok("gift", room="kl_cap", gift="rainbow_puke", count=1, key="g")  # 50 diamonds
    k = b.user("kl_cr7")
    refused = await b.run(
        "settle",
        [k.wallet, k.shard.applied, k.shard.ledger, k.holds, k.shard.holdq, k.shard.wallets],
        ["test:1-0:0", "gift:5000", 100, 5000, 0, 0, "kl_cr7", k.wallet_channel],
    )
    assert refused == [-1, 0]
    wallet = await creator.ok("wallet")
    assert (wallet["diamonds"], type(wallet["diamonds"])) == (MAX - 10, int)
    report = await audit.run(b, attempts=1)
    settled = next(c for c in report["checks"] if c["name"] == "settled_exactly_once")
    assert not settled["ok"]


async def test_purchases_cut_off_past_their_key_lifetime_are_finished(short: Running) -> None:
    """A node died inside two purchases and the keys' lifetime ran out before the sweeper
    came: the paid one is sold (settlement proves it from the outbox), the other returns
    its stock once settlement has caught up; reusing either key then is a new purchase."""
    from livesrv.services import shop, wallet
    from livesrv.store.facade import now_ms
    from livesrv.store.keys import ProductKeys

    host = await live_room(short, "kl_host8", "kl_late")
    await host.ok("product_create", product="kl_hat", title="Hat", price=10, stock=5)
    bob = await viewer(short, "kl_bob8", "kl_late", 100)
    b, pk = short.backend, ProductKeys("kl_hat")
    digest = shop.buy_digest("kl_late", "kl_hat", 2)

    async def reserve(key: str) -> int:
        status, _, exp = await b.run(
            "reserve_stock",
            [pk.meta, pk.reservations, pk.reservation_queue, pk.reservation_expiry],
            [f"kl_bob8|{key}", 2, digest, now_ms() - 120_000, 120_400],
        )
        assert status == "reserved"
        return int(exp)

    await reserve("lost")
    exp = await reserve("paid")
    await wallet.spend(
        b,
        "kl_bob8",
        kind="shop",
        amount=20,
        key="paid",
        digest=digest,
        payload={
            "room": "kl_late",
            "product": "kl_hat",
            "qty": 2,
            "order": "o-late",
            "e": [],
            "ref": "kl_bob8|paid",
            "x": exp,
        },
        extra_key=b.user("kl_bob8").orders,
        exp=exp,
        params=('{"order": "o-late"}', 0),
        reply={"order": "o-late"},
    )
    await gone(short, "kl_bob8", "paid")
    await short.settle()
    await shop.sweep(b)
    meta = await b.redis.hgetall(pk.meta)
    assert (meta["stock"], meta["sold"], meta["reserved"]) == ("3", "2", "0")
    for key in ("lost", "paid"):
        r = await bob.ok("buy", room="kl_late", product="kl_hat", qty=1, key=key)
        assert r["order"] != "o-late"
    assert (await bob.ok("wallet"))["coins"] == 60
    await audit_ok(short)

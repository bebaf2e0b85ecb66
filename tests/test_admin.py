"""The admin HTTP app over real HTTP: health, metrics, the admin API and its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Running

AUDIT_CHECKS = [
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
]


class Admin:
    """An HTTP client for one node, with an admin bearer token by default."""

    def __init__(self, server: Running, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http
        self.auth = {"Authorization": "Bearer " + server.token("ops", "admin")}

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        url = self.server.http_url + path
        h = self.auth if headers is None else headers
        async with self.http.request(method, url, json=body, headers=h) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        code, data = await self.call(method, path, body)
        assert code == status, (code, data)
        return data

    async def error(self, method: str, path: str, body: Any = None) -> tuple[int, str]:
        code, data = await self.call(method, path, body)
        assert code >= 400 and data["ok"] is False, (code, data)
        return code, data["error"]["code"]


@pytest.fixture
async def admin(server: Running) -> AsyncIterator[Admin]:
    async with aiohttp.ClientSession() as http:
        yield Admin(server, http)


async def test_healthz_and_metrics(server: Running, admin: Admin) -> None:
    status, body = await admin.call("GET", "/healthz", headers={})
    assert status == 200 and body["ok"] is True

    creator = await server.connect("cr", "creator")
    await creator.ok("room_open", room="m", title="metrics")
    await creator.ok("join", room="m")
    await server.grant("v", 100)
    viewer = await server.connect("v")
    await viewer.ok("join", room="m")
    await viewer.ok("gift", room="m", gift="panda", count=2, key="k1")
    assert await viewer.error("gift", room="m", gift="nope", count=1, key="k2") == "not_found"
    await server.settle()

    status, text = await admin.call("GET", "/metrics", headers={})  # no auth on loopback
    assert status == 200
    lines = text.splitlines()

    def value(prefix: str) -> float:
        found = [ln for ln in lines if ln.startswith(prefix + " ")]
        assert found, prefix
        return float(found[0].rsplit(" ", 1)[1])

    assert value("livesrv_connections") == 2
    # the serve process's garbage collections, full ones included (LIVESRV_GC_YOUNG)
    assert value('python_gc_collections_total{generation="0"}') > 0
    assert value('python_gc_collections_total{generation="2"}') >= 0
    assert value("livesrv_rooms") == 1
    assert value('livesrv_ops_total{op="gift",result="ok"}') == 1
    assert value('livesrv_ops_total{op="gift",result="not_found"}') == 1
    assert value('livesrv_coins_spent_total{kind="gift"}') == 10
    assert value("livesrv_settlement_backlog") == 0
    assert value("livesrv_settlement_lag_seconds_count") >= 1
    assert value("livesrv_settlement_entries_total") >= 1
    assert any(ln.startswith("livesrv_settlement_lag_seconds_bucket{") for ln in lines)


async def test_auth_errors(server: Running, admin: Admin) -> None:
    paths = [
        ("POST", "/api/tokens", {"user": "x", "role": "viewer"}),
        ("GET", "/api/users/x/wallet", None),
        ("POST", "/api/users/x/grant", {"coins": 1, "key": "k"}),
        ("GET", "/api/rooms", None),
        ("GET", "/api/audit", None),
        ("GET", "/api/products", None),
        ("GET", "/api/orders", None),
        ("GET", "/api/withdrawals", None),
        ("PUT", "/api/creators/x/sub_price", {"price": 700}),
    ]
    viewer = {"Authorization": "Bearer " + server.token("v", "viewer")}
    creator = {"Authorization": "Bearer " + server.token("c", "creator")}
    expired = {"Authorization": "Bearer " + server.token("ops", "admin", ttl=1)[:-4] + "abcd"}
    for method, path, body in paths:
        for headers, status, code in (
            ({}, 401, "unauthorized"),
            ({"Authorization": "Basic abc"}, 401, "unauthorized"),
            (expired, 401, "unauthorized"),
            (viewer, 403, "forbidden"),
            (creator, 403, "forbidden"),
        ):
            got, data = await admin.call(method, path, body, headers=headers)
            assert (got, data["error"]["code"]) == (status, code), (method, path, headers)
    # a store-free route stays public
    status, body = await admin.call("GET", "/client.json", headers={})
    assert status == 200 and body["ws_url"] == server.ws_url and body["demo"] is False
    # without --demo there is no demo login
    status, _ = await admin.call("POST", "/demo/login", {"user": "x"}, headers={})
    assert status in (404, 405)


async def test_tokens(server: Running, admin: Admin) -> None:
    token = (await admin.ok("POST", "/api/tokens", {"user": "zoe", "role": "creator", "ttl": 60}))[
        "token"
    ]
    c = await server.raw()
    hello = await c.ok("hello", token=token)
    assert (hello["user"], hello["role"], hello["coins"], hello["protocol"]) == (
        "zoe",
        "creator",
        0,
        1,
    )
    default_ttl = (await admin.ok("POST", "/api/tokens", {"user": "amy", "role": "viewer"}))[
        "token"
    ]
    assert (await (await server.raw()).ok("hello", token=default_ttl))["role"] == "viewer"
    for body in (
        {"user": "bad user", "role": "viewer"},
        {"user": "zoe", "role": "king"},
        {"role": "viewer"},
        {"user": "zoe", "role": "viewer", "ttl": 0},
        {"user": "zoe", "role": "viewer", "ttl": "60"},
    ):
        assert await admin.error("POST", "/api/tokens", body) == (400, "bad_request"), body
    status, data = await admin.call("POST", "/api/tokens", None)
    assert (status, data["error"]["code"]) == (400, "bad_request")


async def test_wallet_and_grant(server: Running, admin: Admin) -> None:
    assert await admin.ok("GET", "/api/users/ann/wallet") == {
        "coins": 0,
        "diamonds": 0,
        "pending": 0,
    }
    viewer = await server.connect("ann")
    grant = {"coins": 500, "key": "promo-1", "reason": "welcome"}
    assert (await admin.ok("POST", "/api/users/ann/grant", grant))["coins"] == 500
    ev = await viewer.event("wallet", lambda e: e["coins"] == 500)
    assert ev["diamonds"] == 0
    # the same key again: the first result, nothing moves
    assert (await admin.ok("POST", "/api/users/ann/grant", grant))["coins"] == 500
    assert (await admin.ok("GET", "/api/users/ann/wallet"))["coins"] == 500
    # the same key with other arguments
    conflict = {**grant, "coins": 501}
    assert await admin.error("POST", "/api/users/ann/grant", conflict) == (
        409,
        "idempotency_conflict",
    )
    assert await admin.error("POST", "/api/users/ann/grant", {**grant, "reason": "other"}) == (
        409,
        "idempotency_conflict",
    )
    # a grant key is per user
    assert (await admin.ok("POST", "/api/users/bob/grant", grant))["coins"] == 500
    assert (await admin.ok("POST", "/api/users/ann/grant", {"coins": 7, "key": "k2"}))[
        "coins"
    ] == 507
    for bad in (
        {"key": "x"},
        {"coins": 0, "key": "x"},
        {"coins": -5, "key": "x"},
        {"coins": 1.5, "key": "x"},
        {"coins": "5", "key": "x"},
        {"coins": 5},
        {"coins": 5, "key": ""},
        {"coins": 5, "key": "x" * 65},
    ):
        assert await admin.error("POST", "/api/users/ann/grant", bad) == (400, "bad_request"), bad
    status, data = await admin.call(
        "POST", "/api/users/ann/grant", headers={**admin.auth, "Content-Type": "application/json"}
    )
    assert (status, data["error"]["code"]) == (400, "bad_request")
    assert await admin.error("GET", "/api/users/bad%20user/wallet") == (400, "bad_request")
    assert await admin.error("POST", "/api/users/ann/grant", [1, 2]) == (400, "bad_request")
    report = await admin.ok("GET", "/api/audit")
    assert report["ok"] is True
    coins = next(c for c in report["checks"] if c["name"] == "coins_conserved")
    assert (coins["credited"], coins["held"], coins["spent"]) == (1007, 1007, 0)


async def test_rooms(server: Running, admin: Admin) -> None:
    assert await admin.ok("GET", "/api/rooms") == {"rooms": [], "next": None}
    a = await server.connect("alice", "creator")
    await a.ok("room_open", room="ra", title="Alice live")
    b = await server.connect("bea", "creator")
    await b.ok("room_open", room="rb", title="Bea live")
    for user in ("v1", "v2"):
        v = await server.connect(user)
        await v.ok("join", room="ra")
    rooms = (await admin.ok("GET", "/api/rooms"))["rooms"]
    assert rooms == [
        {"room": "ra", "title": "Alice live", "creator": "alice", "viewers": 2},
        {"room": "rb", "title": "Bea live", "creator": "bea", "viewers": 0},
    ]
    await b.ok("room_close", room="rb")
    assert [r["room"] for r in (await admin.ok("GET", "/api/rooms"))["rooms"]] == ["ra"]


async def test_audit_report_has_every_check_with_figures(server: Running, admin: Admin) -> None:
    creator = await server.connect("cr", "creator")
    await creator.ok("room_open", room="au", title="audit")
    await server.grant("v", 1000)
    v = await server.connect("v")
    await v.ok("join", room="au")
    await v.ok("gift", room="au", gift="rose", count=3, key="g")
    await server.settle()
    report = await admin.ok("GET", "/api/audit")
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == AUDIT_CHECKS
    by = {c["name"]: c for c in report["checks"]}
    assert all(c["ok"] is True for c in report["checks"])
    assert (by["coins_conserved"]["credited"], by["coins_conserved"]["spent"]) == (1000, 3)
    assert by["settled_exactly_once"]["outbox_entries"] == 1
    assert by["settled_exactly_once"]["backlog"] == 0
    assert by["diamonds_accounted"]["diamonds_credited"] == 1
    assert by["idempotency"]["duplicates"] == []
    assert by["nothing_negative"]["negative"] == []

    # a corrupted balance shows in the report, with the figures that disagree
    await server.backend.redis.hincrby(server.backend.user("v").wallet, "coins", 5)
    report = await admin.ok("GET", "/api/audit")
    assert report["ok"] is False
    coins = next(c for c in report["checks"] if c["name"] == "coins_conserved")
    assert coins["ok"] is False and coins["held"] == 1002 and coins["credited"] == 1000


async def test_products_orders_and_sub_price(server: Running, admin: Admin) -> None:
    body = {
        "product": "hoodie",
        "title": "Hoodie",
        "seller": "brand",
        "price": 120,
        "stock": 3,
        "commission": 2000,
    }
    created = await admin.ok("POST", "/api/products", body, status=201)
    assert created == body
    assert await admin.error("POST", "/api/products", body) == (400, "bad_request")
    default = {**body, "product": "socks", "commission": None}
    assert (await admin.ok("POST", "/api/products", default, status=201))["commission"] == 1000
    for bad in (
        {**body, "product": "x y"},
        {**body, "product": "p2", "price": 0},
        {**body, "product": "p2", "stock": -1},
        {**body, "product": "p2", "commission": 9201},
        {**body, "product": "p2", "seller": None},
        {**body, "product": "p2", "title": ""},
    ):
        assert await admin.error("POST", "/api/products", bad) == (400, "bad_request"), bad
    restocked = await admin.ok("POST", "/api/products/hoodie/restock", {"qty": 2})
    assert restocked == {"product": "hoodie", "stock": 5}
    assert await admin.error("POST", "/api/products/nope/restock", {"qty": 2}) == (
        404,
        "not_found",
    )
    assert await admin.error("POST", "/api/products/hoodie/restock", {"qty": 0}) == (
        400,
        "bad_request",
    )
    listed = (await admin.ok("GET", "/api/products"))["products"]
    assert [(p["product"], p["stock"]) for p in listed] == [("hoodie", 5), ("socks", 3)]

    # a purchase in a live room shows in the orders
    host = await server.connect("host", "creator")
    await host.ok("room_open", room="shop", title="shop")
    await server.grant("buyer", 3000)
    buyer = await server.connect("buyer")
    await buyer.ok("join", room="shop")
    order = (await buyer.ok("buy", room="shop", product="hoodie", qty=2, key="o1"))["order"]
    everyone = (await admin.ok("GET", "/api/orders"))["orders"]
    assert [(o["order"], o["user"], o["product"], o["qty"], o["coins"]) for o in everyone] == [
        (order, "buyer", "hoodie", 2, 240)
    ]
    mine = (await admin.ok("GET", "/api/orders?user=buyer"))["orders"]
    assert [(o["order"], o["qty"]) for o in mine] == [(order, 2)]
    assert (await admin.ok("GET", "/api/orders?user=nobody"))["orders"] == []

    # the creator's subscription price
    assert await admin.ok("PUT", "/api/creators/host/sub_price", {"price": 1750}) == {"price": 1750}
    assert await admin.error("PUT", "/api/creators/host/sub_price", {"price": 999}) == (
        400,
        "bad_request",
    )
    assert await admin.error("PUT", "/api/creators/host/sub_price", {}) == (400, "bad_request")
    assert (await buyer.ok("join", room="shop"))["sub_price"] == 1750
    assert (await buyer.ok("subscribe", room="shop", key="s1"))["coins"] == 3000 - 240 - 1750
    await server.settle()
    report = await admin.ok("GET", "/api/audit")
    assert report["ok"] is True, report


async def test_withdrawals_paid_and_rejected(server: Running, admin: Admin) -> None:
    creator = await server.connect("cr", "creator")
    await creator.ok("room_open", room="w", title="w")
    await creator.ok("join", room="w")
    await server.grant("whale", 20_000)
    whale = await server.connect("whale")
    await whale.ok("join", room="w")
    await whale.ok("gift", room="w", gift="interstellar", count=1, key="g")  # 5000 diamonds
    await server.settle()
    w1 = (await creator.ok("withdraw", diamonds=2000, key="w1"))["withdrawal"]
    w2 = (await creator.ok("withdraw", diamonds=2500, key="w2"))["withdrawal"]
    assert (await admin.ok("GET", "/api/users/cr/wallet"))["diamonds"] == 500

    listed = (await admin.ok("GET", "/api/withdrawals"))["withdrawals"]
    created = {x["withdrawal"]: x["created"] for x in listed}
    assert created[w2] >= created[w1]
    # newest first: by creation (ms) descending, two of the same millisecond by id descending
    newest_first = sorted([w1, w2], key=lambda w: (created[w], w), reverse=True)
    rows = {
        w1: (w1, "cr", 2000, 1000, "requested"),
        w2: (w2, "cr", 2500, 1250, "requested"),
    }
    assert [
        (x["withdrawal"], x["user"], x["diamonds"], x["cents"], x["status"]) for x in listed
    ] == [rows[w] for w in newest_first]
    assert (await admin.ok("POST", f"/api/withdrawals/{w1}/paid")) == {
        "withdrawal": w1,
        "status": "paid",
    }
    assert (await admin.ok("POST", f"/api/withdrawals/{w2}/reject")) == {
        "withdrawal": w2,
        "status": "rejected",
    }
    ev = await creator.event("wallet", lambda e: e["diamonds"] == 3000)
    assert ev["pending"] == 0
    # repeating the same decision is harmless; changing a final one is refused
    assert (await admin.ok("POST", f"/api/withdrawals/{w2}/reject"))["status"] == "rejected"
    assert (await admin.ok("POST", f"/api/withdrawals/{w1}/paid"))["status"] == "paid"
    assert await admin.error("POST", f"/api/withdrawals/{w1}/reject") == (400, "bad_request")
    assert await admin.error("POST", f"/api/withdrawals/{w2}/paid") == (400, "bad_request")
    assert (await admin.ok("GET", "/api/users/cr/wallet"))["diamonds"] == 3000

    by_status = {
        s: [
            x["withdrawal"]
            for x in (await admin.ok("GET", f"/api/withdrawals?status={s}"))["withdrawals"]
        ]
        for s in ("requested", "paid", "rejected")
    }
    assert by_status == {"requested": [], "paid": [w1], "rejected": [w2]}
    assert await admin.error("GET", "/api/withdrawals?status=lost") == (400, "bad_request")
    for path in ("/api/withdrawals/w0-0000000000000000/paid", "/api/withdrawals/nope/paid"):
        assert await admin.error("POST", path) == (404, "not_found")
    assert await admin.error("POST", f"/api/withdrawals/{w1}/cancel") == (404, "not_found")
    report = await admin.ok("GET", "/api/audit")
    assert report["ok"] is True
    diamonds = next(c for c in report["checks"] if c["name"] == "diamonds_accounted")
    assert diamonds["diamonds_credited"] == 5000

"""Series, paid premium content (issue 14, item 1): the rules without sockets, then over the
wire: publish, buy (a retry with the same key moves nothing), read as buyer, non-buyer and
creator, a price change, unpublish keeping access, the day limit, the creator's diamonds
after settlement, the admin routes, the metric, and the audit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest

from livesrv import audit
from livesrv.audit_checks import check_series
from livesrv.errors import BadRequest
from livesrv.services import series_rules as rules
from livesrv.wire.schema import parse
from tests.client import Client
from tests.conftest import Running, ServerFactory

EPISODES = [
    {"title": "Pilot", "url": "https://cdn.example.com/s1/e1.m3u8"},
    {"title": "Two", "url": "http://cdn.example.com/s1/e2.mp4?sig=abc"},
]
HIDDEN = [{"title": "Pilot"}, {"title": "Two"}]


# -- rules (no socket) ----------------------------------------------------------------


def test_episodes_are_checked() -> None:
    assert rules.check_episodes(EPISODES) == EPISODES
    bad: list[tuple[Any, str]] = [
        ([], "1-50 episodes"),
        ([{"title": "x", "url": "https://a.b/c"}] * 51, "1-50 episodes"),
        (["https://a.b/c"], r"episodes\[0\] must be a map"),
        ([{"title": "x"}], "exactly title and url"),
        ([{"title": "x", "url": "https://a.b", "extra": 1}], "exactly title and url"),
        ([{"title": "", "url": "https://a.b"}], r"episodes\[0\].title"),
        ([{"title": "t" * 101, "url": "https://a.b"}], "title must be 1-100"),
        ([EPISODES[0], {"title": "x", "url": "javascript:alert(1)"}], r"episodes\[1\].url"),
        ([{"title": "x", "url": "data:text/html,hi"}], "http"),
        ([{"title": "x", "url": "ftp://a.b/c"}], "http"),
        ([{"title": "x", "url": "/relative/path"}], "http"),
        ([{"title": "x", "url": "https:///nohost"}], "host"),
        ([{"title": "x", "url": "https://a.b/ c"}], "without spaces"),
        ([{"title": "x", "url": "https://a.b/\u00e9"}], "printable ASCII"),
        ([{"title": "x", "url": "https://a.b/" + "x" * 500}], "1-500"),
        ([{"title": "x", "url": 5}], "1-500"),
        ([{"title": "x", "url": "https://[::1/"}], "not a valid URL"),
    ]
    for episodes, message in bad:
        with pytest.raises(BadRequest, match=message):
            rules.check_episodes(episodes)


def test_price_and_schema_bounds() -> None:
    assert rules.check_price(1) == 1 and rules.check_price(1_000_000) == 1_000_000
    for price in (0, 1_000_001):
        with pytest.raises(BadRequest):
            rules.check_price(price)
    ok = {"id": 1, "op": "series_publish", "series": "s", "title": "t", "price": 5}
    assert parse({**ok, "episodes": EPISODES}).args["episodes"] == EPISODES
    for episodes, message in (("x", "must be a list"), ([{}] * 51, "1-50 items")):
        with pytest.raises(BadRequest, match=message):
            parse({**ok, "episodes": episodes})
    with pytest.raises(BadRequest, match="description must be 0-2000"):
        parse({**ok, "episodes": EPISODES, "description": "d" * 2001})


def test_who_reads_and_what_is_listed() -> None:
    raw = {
        "series": "s",
        "creator": "cr",
        "title": "T",
        "description": "",
        "price": "50",
        "published": "1",
        "created": "7",
        "episodes": '[{"title":"a","url":"https://x.y/a"}]',
    }
    assert rules.can_read(raw, "cr", False) and rules.can_read(raw, "v", True)
    assert rules.can_read(raw, "v", False, admin=True) and not rules.can_read(raw, "v", False)
    assert rules.view(raw, urls=False)["episodes"] == [{"title": "a"}]
    assert rules.view(raw, urls=True)["episodes"] == [{"title": "a", "url": "https://x.y/a"}]
    assert rules.summary(raw)["episodes"] == 1 and rules.summary(raw)["price"] == 50
    hidden = {**raw, "published": "0"}
    assert rules.listed(raw, "v") and not rules.listed(hidden, "v")
    assert rules.listed(hidden, "cr") and rules.listed(hidden, None)
    assert rules.earners("cr", 7000) == [["cr", "series:7000", 7000]]


def test_audit_check_pairs_sales_with_access() -> None:
    def entry(user: str, sid: str, coins: int) -> tuple[int, str, dict[str, str]]:
        p = orjson.dumps({"series": sid, "e": [["cr", "series:7000", 7000]]}).decode()
        return (0, "1-0", {"kind": "series", "user": user, "coins": str(coins), "p": p})

    d: dict[str, Any] = {
        "outbox": [entry("a", "s1", 300), entry("b", "s1", 450)],
        "series_access": {"a": {"s1": 300}, "b": {"s1": 450}},
    }
    ok = check_series(d)
    assert ok["ok"] and (ok["sales"], ok["coins"], ok["access_records"]) == (2, 750, 2)
    lost = check_series({**d, "series_access": {"a": {"s1": 300, "s2": 5}}})
    assert not lost["ok"]
    assert lost["paid_without_access"] == [
        {"user": "b", "series": "s1", "coins": 450, "access": None}
    ]
    assert lost["access_without_sale"] == [{"user": "a", "series": "s2", "coins": 5}]


# -- over the wire ----------------------------------------------------------------------


def _view(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k not in ("id", "ok", "created")}


async def _publish(c: Client, sid: str, price: int = 300, **kw: Any) -> dict[str, Any]:
    return await c.ok(
        "series_publish",
        series=sid,
        title="My series",
        description="behind the scenes",
        price=price,
        episodes=EPISODES,
        **kw,
    )


async def _audit_ok(server: Running) -> dict[str, dict[str, Any]]:
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    return {c["name"]: c for c in report["checks"]}


async def test_publish_buy_read_reprice_unpublish(server: Running) -> None:
    creator = await server.connect("sr_cr", "creator")
    pub = await _publish(creator, "sr_one")
    assert _view(pub) == {
        "series": "sr_one",
        "creator": "sr_cr",
        "title": "My series",
        "description": "behind the scenes",
        "price": 300,
        "published": True,
        "episodes": EPISODES,
        "purchased": False,
    }
    assert await creator.error(
        "series_publish", series="sr_one", title="x", price=1, episodes=EPISODES
    ) == ("bad_request")
    bad = [{"title": "x", "url": "javascript:alert(1)"}]
    assert await creator.error(
        "series_publish", series="sr_bad", title="x", price=1, episodes=bad
    ) == ("bad_request")
    assert await creator.error("series_get", series="sr_bad") == "not_found"
    viewer = await server.connect("sr_v")
    assert await viewer.error(
        "series_publish", series="sr_v1", title="x", price=1, episodes=EPISODES
    ) == ("forbidden")

    # a non-buyer sees titles, no URLs
    other = await server.connect("sr_other")
    seen = await other.ok("series_get", series="sr_one")
    assert seen["episodes"] == HIDDEN and seen["purchased"] is False and seen["price"] == 300

    # buy; a retry with the same key answers the first result and moves nothing
    await server.grant("sr_v", 1000)
    bought = await viewer.ok("series_buy", series="sr_one", key="b1")
    assert (bought["series"], bought["paid"], bought["coins"]) == ("sr_one", 300, 700)
    again = await viewer.ok("series_buy", series="sr_one", key="b1")
    assert (again["paid"], again["coins"]) == (300, 700)
    await _publish(creator, "sr_two", price=5)
    assert await viewer.error("series_buy", series="sr_two", key="b1") == "idempotency_conflict"
    assert await viewer.error("series_buy", series="sr_nope", key="b1") == "not_found"
    # another key: access is bought once, nothing moves
    twice = await viewer.ok("series_buy", series="sr_one", key="b2")
    assert (twice["paid"], twice["coins"]) == (0, 700)
    assert (await viewer.ok("wallet"))["coins"] == 700

    mine = await viewer.ok("series_get", series="sr_one")
    assert mine["episodes"] == EPISODES and mine["purchased"] is True
    own = await creator.ok("series_get", series="sr_one")
    assert own["episodes"] == EPISODES and own["purchased"] is False
    assert (await creator.ok("series_buy", series="sr_one", key="c1"))["paid"] == 0

    # a new price for future buyers; only the creator may set it
    assert await viewer.error("series_price", series="sr_one", price=10) == "forbidden"
    assert await creator.error("series_price", series="sr_one", price=0) == "bad_request"
    assert await creator.error("series_price", series="nope", price=5) == "not_found"
    price = await creator.ok("series_price", series="sr_one", price=450)
    assert (price["series"], price["price"]) == ("sr_one", 450)
    await server.grant("sr_other", 1000)
    late = await other.ok("series_buy", series="sr_one", key="o1")
    assert (late["paid"], late["coins"]) == (450, 550)
    assert (await viewer.ok("series_buy", series="sr_one", key="b1"))["paid"] == 300

    # unpublished: buyers keep access, nobody can buy, the retry still answers
    assert await viewer.error("series_unpublish", series="sr_one") == "forbidden"
    gone = await creator.ok("series_unpublish", series="sr_one")
    assert gone["published"] is False
    assert (await viewer.ok("series_get", series="sr_one"))["episodes"] == EPISODES
    third = await server.connect("sr_third")
    await server.grant("sr_third", 1000)
    assert await third.error("series_buy", series="sr_one", key="t1") == "forbidden"
    assert (await third.ok("wallet"))["coins"] == 1000
    assert (await third.ok("series_get", series="sr_one"))["episodes"] == HIDDEN
    assert (await other.ok("series_buy", series="sr_one", key="o1"))["paid"] == 450
    assert (await viewer.ok("series_buy", series="sr_one", key="b9"))["paid"] == 0

    # the creator earns its share of both sales; the audit holds
    checks = await _audit_ok(server)
    share = server.backend.catalog.series_share_bps
    w = await creator.ok("wallet")
    assert w["diamonds"] + w["pending"] == 300 * share // 10_000 + 450 * share // 10_000
    assert checks["coins_conserved"]["by_kind"]["spend:series"] == 750
    assert checks["diamonds_accounted"]["ok"]
    assert checks["series_access_paid"]["sales"] == 2
    assert checks["series_access_paid"]["coins"] == 750
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as resp:
        lines = (await resp.text()).splitlines()
    assert "livesrv_series_sales_total 2.0" in lines
    assert 'livesrv_coins_spent_total{kind="series"} 750.0' in lines


async def test_concurrent_buys_with_other_keys_pay_once(make_server: ServerFactory) -> None:
    one, two = await make_server(), await make_server()
    creator = await one.connect("sc_cr", "creator")
    await _publish(creator, "sc_one", price=250)
    await one.grant("sc_v", 1000)
    conns = [await (one if i % 2 else two).connect("sc_v") for i in range(6)]
    replies = await asyncio.gather(
        *(c.ok("series_buy", series="sc_one", key=f"k{i}") for i, c in enumerate(conns))
    )
    assert sorted(r["paid"] for r in replies) == [0, 0, 0, 0, 0, 250]
    assert (await conns[0].ok("wallet"))["coins"] == 750
    checks = await _audit_ok(one)
    assert checks["coins_conserved"]["by_kind"]["spend:series"] == 250
    w = await creator.ok("wallet")
    assert w["diamonds"] + w["pending"] == 250 * one.backend.catalog.series_share_bps // 10_000


async def test_day_limit_and_funds(make_server: ServerFactory) -> None:
    server = await make_server(day_limit=500)
    creator = await server.connect("sd_cr", "creator")
    await _publish(creator, "sd_a", price=300)
    await _publish(creator, "sd_b", price=300)
    v = await server.connect("sd_v")
    assert await v.error("series_buy", series="sd_a", key="k0") == "insufficient_funds"
    await server.grant("sd_v", 2000)
    assert (await v.ok("series_buy", series="sd_a", key="k1"))["paid"] == 300
    assert await v.error("series_buy", series="sd_b", key="k2") == "limit_exceeded"
    assert (await v.ok("wallet"))["coins"] == 1700
    assert (await v.ok("series_get", series="sd_b"))["purchased"] is False
    assert await v.error("series_buy", series="sd_nope", key="k3") == "not_found"
    await _audit_ok(server)

    # a lost access record (a write the store lost) is named by the audit
    await server.backend.redis.hdel(server.backend.user("sd_v").series_access, "sd_a")
    report = await audit.run(server.backend, attempts=1)
    check = next(c for c in report["checks"] if c["name"] == "series_access_paid")
    assert not report["ok"] and check["paid_without_access"] == [
        {"user": "sd_v", "series": "sd_a", "coins": 300, "access": None}
    ]


async def test_listing_and_admin_routes(server: Running) -> None:
    creator = await server.connect("sl_cr", "creator")
    for i in range(5):
        await _publish(creator, f"sl_{i}", price=10 + i)
    await creator.ok("series_unpublish", series="sl_2")
    v = await server.connect("sl_v")
    first = await v.ok("series_list", creator="sl_cr", limit=2)
    assert [s["series"] for s in first["series"]] == ["sl_0", "sl_1"]
    assert first["series"][0]["episodes"] == 2 and first["series"][0]["price"] == 10
    rest = await v.ok("series_list", creator="sl_cr", limit=2, cursor=first["next"])
    assert [s["series"] for s in rest["series"]] == ["sl_3"]  # sl_2 is hidden
    last = await v.ok("series_list", creator="sl_cr", limit=2, cursor=rest["next"])
    assert [s["series"] for s in last["series"]] == ["sl_4"] and last["next"] is None
    mine = await creator.ok("series_list", creator="sl_cr", limit=200)
    assert [s["series"] for s in mine["series"]] == [f"sl_{i}" for i in range(5)]
    assert await v.error("series_list", creator="sl_cr", cursor="junk") == "bad_request"
    assert await v.error("series_list", creator="sl_cr", limit=0) == "bad_request"
    assert (await v.ok("series_list", creator="sl_nobody"))["series"] == []

    auth = {"Authorization": "Bearer " + server.token("ops", "admin")}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(f"{server.http_url}/api/series/sl_2") as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["episodes"] == EPISODES and body["published"] is False
        async with http.get(f"{server.http_url}/api/series/sl_none") as resp:
            assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
        url = f"{server.http_url}/api/creators/sl_cr/series?limit=3"
        async with http.get(url) as resp:
            page = await resp.json()
        assert [s["series"] for s in page["series"]] == ["sl_0", "sl_1", "sl_2"]
        async with http.get(url + "&cursor=" + page["next"]) as resp:
            page = await resp.json()
        assert [s["series"] for s in page["series"]] == ["sl_3", "sl_4"]
        assert page["next"] is None
    viewer_auth = {"Authorization": "Bearer " + server.token("sl_v")}
    async with (
        aiohttp.ClientSession(headers=viewer_auth) as http,
        http.get(f"{server.http_url}/api/series/sl_1") as resp,
    ):
        assert resp.status == 403

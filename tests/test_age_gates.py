"""Age gates (issue 14, item 3): the rules without sockets (the calendar-year boundary, the
region override, a token without a birth year), the token claims, then over the wire:
every money op with an underage token is ``age_restricted`` and nothing moves, an adult
token works, a KR 18-year-old is refused under the default ``KR=19``.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import replace
from typing import Any

import aiohttp
import jwt
import pytest

from livesrv.client import BY_CODE as CLIENT_CODES
from livesrv.errors import AgeRestricted, BadRequest, Unauthorized
from livesrv.http.status import STATUS
from livesrv.services import age
from livesrv.settings import Settings, parse_region_ages
from livesrv.wire import tokens
from livesrv.wire.schema import MONEY_OPS, OPS
from tests.client import Client
from tests.conftest import SECRET, Running, ServerFactory

S = Settings()
THIS_YEAR = time.gmtime().tm_year


def at(year: int, month: int, day: int, hms: tuple[int, int, int] = (0, 0, 0)) -> float:
    return float(calendar.timegm((year, month, day, *hms, 0, 0, 0)))


# -- rules (no socket) ----------------------------------------------------------------


def test_the_age_is_the_one_reached_in_the_calendar_year_utc() -> None:
    last_second_of_2025 = at(2025, 12, 31, (23, 59, 59))
    first_second_of_2026 = at(2026, 1, 1)
    assert age.age_in_year(2008, last_second_of_2025) == 17
    assert age.age_in_year(2008, first_second_of_2026) == 18
    assert not age.allowed(2008, None, last_second_of_2025, S)
    assert age.allowed(2008, None, first_second_of_2026, S)
    assert age.allowed(2008, None, at(2026, 12, 31, (23, 59, 59)), S)
    assert not age.allowed(2009, None, at(2026, 12, 31, (23, 59, 59)), S)
    assert not age.allowed(2030, None, first_second_of_2026, S)  # born in the future
    assert age.allowed(1950, "US", first_second_of_2026, S)


def test_the_region_overrides_the_minimum() -> None:
    now = at(2026, 6, 1)
    assert S.min_age == 18 and S.region_min_ages == {"KR": 19}
    assert age.allowed(2008, None, now, S) and age.allowed(2008, "US", now, S)
    assert not age.allowed(2008, "KR", now, S)  # 18 this year, KR needs 19
    assert age.allowed(2007, "KR", now, S)
    custom = replace(S, min_age=21, min_age_by_region="KR=19, JP=20")
    assert age.minimum_age("KR", custom) == 19 and age.minimum_age("JP", custom) == 20
    assert age.minimum_age("US", custom) == 21 and age.minimum_age(None, custom) == 21
    assert age.allowed(2007, "KR", now, custom) and not age.allowed(2007, "US", now, custom)
    none = replace(S, min_age_by_region="")
    assert age.allowed(2008, "KR", now, none)


def test_no_birth_year_is_allowed_unless_the_server_requires_one() -> None:
    now = at(2026, 6, 1)
    assert age.allowed(None, None, now, S) and age.allowed(None, "KR", now, S)
    strict = replace(S, require_age=True)
    assert not age.allowed(None, None, now, strict)
    assert age.allowed(1990, None, now, strict)
    with pytest.raises(AgeRestricted, match="birth year"):
        age.require(tokens.Identity("u", "viewer"), now, strict)
    with pytest.raises(AgeRestricted, match="19 or older"):
        age.require(tokens.Identity("u", "viewer", 2008, "KR"), now, S)
    age.require(tokens.Identity("u", "viewer", 2008, "US"), now, S)


def test_region_ages_setting_is_checked() -> None:
    assert parse_region_ages("") == {} and parse_region_ages("KR=19,JP=20") == {
        "KR": 19,
        "JP": 20,
    }
    for bad in ("KR", "kr=19", "KOR=19", "KR=x", "KR=151", "KR=-1"):
        with pytest.raises(ValueError):
            parse_region_ages(bad)
    env = Settings.from_env(
        {"LIVESRV_MIN_AGE": "21", "LIVESRV_MIN_AGE_BY_REGION": "JP=20", "LIVESRV_REQUIRE_AGE": "1"}
    )
    assert (env.min_age, env.region_min_ages, env.require_age) == (21, {"JP": 20}, True)
    with pytest.raises(ValueError, match="LIVESRV_MIN_AGE_BY_REGION=KR:19 is not allowed"):
        Settings.from_env({"LIVESRV_MIN_AGE_BY_REGION": "KR:19"})
    with pytest.raises(ValueError, match="LIVESRV_MIN_AGE=200"):
        Settings.from_env({"LIVESRV_MIN_AGE": "200"})


def test_token_claims() -> None:
    token = tokens.issue(SECRET, "u1", "viewer", 60, 2001, "kr")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert (claims["by"], claims["rg"]) == (2001, "KR")
    assert tokens.verify(SECRET, token) == tokens.Identity("u1", "viewer", 2001, "KR")
    assert "by" not in jwt.decode(tokens.issue(SECRET, "u1", "viewer"), SECRET, ["HS256"])
    for by, rg in ((1899, None), (THIS_YEAR + 1, None), (True, None), (None, "K"), (None, "K1")):
        with pytest.raises(BadRequest):
            tokens.issue(SECRET, "u1", "viewer", 60, by, rg)
    exp = int(time.time()) + 60
    for extra in ({"by": "2001"}, {"by": 1.5}, {"rg": "kr"}, {"rg": 7}):
        forged = jwt.encode({"sub": "u1", "role": "viewer", "exp": exp, **extra}, SECRET)
        with pytest.raises(Unauthorized, match="claims"):
            tokens.verify(SECRET, forged)


def test_the_error_code_is_everywhere_it_must_be() -> None:
    assert MONEY_OPS.issubset(OPS)
    assert STATUS["age_restricted"] == 403
    assert CLIENT_CODES["age_restricted"].__name__ == "AgeRestricted"


# -- over the wire --------------------------------------------------------------------


async def _hello(server: Running, user: str, by: int | None, rg: str | None = None) -> Client:
    c = await server.raw()
    await c.ok("hello", token=tokens.issue(SECRET, user, "viewer", 3600, by, rg))
    return c


async def _stage(server: Running, p: str) -> Client:
    """A live room ``{p}room`` with a product ``{p}prod``, a series ``{p}ser`` and a
    viewer ``{p}fan`` in the room."""
    creator = await server.connect(f"{p}cr", "creator")
    await creator.ok("room_open", room=f"{p}room", title="live")
    await creator.ok("product_create", product=f"{p}prod", title="Cap", price=30, stock=5)
    await creator.ok("pin", room=f"{p}room", product=f"{p}prod")
    episodes = [{"title": "One", "url": "https://cdn.example.com/e1.m3u8"}]
    await creator.ok("series_publish", series=f"{p}ser", title="S", price=50, episodes=episodes)
    fan = await server.connect(f"{p}fan")  # present in the room: a gifted sub's recipient
    await fan.ok("join", room=f"{p}room")
    return creator


def _money_ops(server: Running, user: str, p: str, n: str) -> list[tuple[str, dict[str, Any]]]:
    room = f"{p}room"
    return [
        ("buy_coins", {"package": "p65", "receipt": server.receipt(user, "p65", f"{p}r{n}")}),
        ("gift", {"room": room, "gift": "rose", "count": 3, "key": f"g{n}"}),
        ("subscribe", {"room": room, "key": f"s{n}"}),
        ("buy", {"room": room, "product": f"{p}prod", "qty": 1, "key": f"b{n}"}),
        ("paid_chat", {"room": room, "text": "hi", "coins": 10, "key": f"m{n}"}),
        ("box_drop", {"room": room, "coins": 100, "seconds": 10, "key": f"x{n}"}),
        ("series_buy", {"series": f"{p}ser", "key": f"v{n}"}),
        ("sub_gift", {"room": room, "to": [f"{p}fan"], "key": f"t{n}"}),
    ]


async def _state(c: Client, creator: Client, p: str) -> dict[str, Any]:
    products = (await c.ok("products", seller=f"{p}cr"))["products"]
    series = await c.ok("series_get", series=f"{p}ser")
    return {
        "me": {k: (await c.ok("wallet"))[k] for k in ("coins", "diamonds")},
        "creator": {k: (await creator.ok("wallet"))[k] for k in ("coins", "diamonds")},
        "stock": [x["stock"] for x in products],
        "episodes": series["episodes"],
    }


async def test_every_money_op_is_refused_under_age_and_nothing_moves(server: Running) -> None:
    p = "ag1_"
    creator = await _stage(server, p)
    await server.grant(f"{p}kid", 2000)
    kid = await _hello(server, f"{p}kid", THIS_YEAR - 15)
    await kid.ok("join", room=f"{p}room")
    before = await _state(kid, creator, p)
    ops = _money_ops(server, f"{p}kid", p, "1")
    assert {name for name, _ in ops} == MONEY_OPS
    for name, args in ops:
        reply = await kid.call(name, **args)
        assert reply["ok"] is False and reply["error"]["code"] == "age_restricted", (name, reply)
        assert "18 or older" in reply["error"]["message"]
    await kid.ok("chat", room=f"{p}room", text="chat is free")  # not a money op
    await server.settle()
    assert await _state(kid, creator, p) == before
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]

    # the same connection signs in again with a corrected birth year: the same keys and
    # receipt were never used, so each op now runs once
    token = tokens.issue(SECRET, f"{p}kid", "viewer", 3600, THIS_YEAR - 30)
    await kid.ok("hello", token=token)
    for name, args in ops:
        await kid.ok(name, **args)
    after = await _state(kid, creator, p)
    assert after["me"]["coins"] < before["me"]["coins"] + 65 and after["stock"] == [4]
    assert after["episodes"][0]["url"].startswith("https://")


async def test_an_adult_token_spends_and_a_kr_18_year_old_is_refused(server: Running) -> None:
    p = "ag2_"
    creator = await _stage(server, p)
    await server.grant(f"{p}adult", 2000)
    await server.grant(f"{p}kr18", 2000)
    adult = await _hello(server, f"{p}adult", THIS_YEAR - 18, "US")
    kr18 = await _hello(server, f"{p}kr18", THIS_YEAR - 18, "KR")
    for c in (adult, kr18):
        await c.ok("join", room=f"{p}room")
    for name, args in _money_ops(server, f"{p}adult", p, "a"):
        await adult.ok(name, **args)
    await server.settle()  # the adult's spends credited: the creator's diamonds stand still
    before = await _state(kr18, creator, p)
    for name, args in _money_ops(server, f"{p}kr18", p, "k"):
        reply = await kr18.call(name, **args)
        assert reply["error"]["code"] == "age_restricted", (name, reply)
        assert "19 or older" in reply["error"]["message"]
    assert await _state(kr18, creator, p) == before
    kr19 = await _hello(server, f"{p}kr19", THIS_YEAR - 19, "KR")
    await server.grant(f"{p}kr19", 100)
    await kr19.ok("join", room=f"{p}room")
    assert (await kr19.ok("gift", room=f"{p}room", gift="rose", count=1, key="g"))["coins"] == 99


async def test_require_age_refuses_a_token_without_a_birth_year(
    make_server: ServerFactory,
) -> None:
    server = await make_server(require_age=True)
    p = "ag3_"
    await _stage(server, p)
    await server.grant(f"{p}anon", 100)
    anon = await _hello(server, f"{p}anon", None)
    await anon.ok("join", room=f"{p}room")
    assert await anon.error("gift", room=f"{p}room", gift="rose", count=1, key="g") == (
        "age_restricted"
    )
    assert (await anon.ok("wallet"))["coins"] == 100
    aged = await _hello(server, f"{p}aged", 1990)
    await server.grant(f"{p}aged", 100)
    await aged.ok("join", room=f"{p}room")
    assert (await aged.ok("gift", room=f"{p}room", gift="rose", count=1, key="g"))["coins"] == 99


async def test_admin_tokens_carry_the_age_claims(server: Running) -> None:
    admin = server.token("ag4_admin", "admin")
    headers = {"Authorization": f"Bearer {admin}"}
    async with aiohttp.ClientSession() as http:
        body = {"user": "ag4_u", "role": "viewer", "birth_year": 2001, "region": "kr"}
        async with http.post(f"{server.http_url}/api/tokens", json=body, headers=headers) as r:
            assert r.status == 200
            token = (await r.json())["token"]
        assert tokens.verify(SECRET, token) == tokens.Identity("ag4_u", "viewer", 2001, "KR")
        for bad in ({"birth_year": THIS_YEAR + 1}, {"birth_year": "2001"}, {"region": "KOR"}):
            body = {"user": "ag4_u", "role": "viewer", **bad}
            async with http.post(f"{server.http_url}/api/tokens", json=body, headers=headers) as r:
                assert r.status == 400, bad
                assert (await r.json())["error"]["code"] == "bad_request"

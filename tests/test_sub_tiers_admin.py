"""The admin API of subscription tiers over real HTTP against the real store:
``GET``/``PUT /api/creators/{user}/sub_tiers``. The body is checked like the creator's
``sub_tiers`` op (the one schema, the same service check): bad prices are 400
``bad_request`` and change nothing; what an admin sets is what a viewer's ``join`` shows and
what ``subscribe`` charges.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Running
from tests.test_admin import Admin


@pytest.fixture
async def admin(server: Running) -> AsyncIterator[Admin]:
    async with aiohttp.ClientSession() as http:
        yield Admin(server, http)


def path(user: str) -> str:
    return f"/api/creators/{user}/sub_tiers"


async def test_admin_reads_and_sets_tiers_and_a_viewer_pays_them(
    server: Running, admin: Admin
) -> None:
    # Never set: tier 1 at the default price, then the catalogue's next prices.
    assert await admin.ok("GET", path("sta_cr")) == {
        "creator": "sta_cr",
        "prices": [350, 700, 1750],
    }
    assert await admin.ok("PUT", path("sta_cr"), {"prices": [700, 1750]}) == {
        "creator": "sta_cr",
        "prices": [700, 1750],
    }
    assert (await admin.ok("GET", path("sta_cr")))["prices"] == [700, 1750]

    # A viewer sees the tiers in join and pays tier 2's price.
    creator = await server.connect("sta_cr", "creator")
    await creator.ok("room_open", room="sta_room", title="tiers by admin")
    await server.grant("sta_v", 5_000)
    viewer = await server.connect("sta_v")
    joined = await viewer.ok("join", room="sta_room")
    assert (joined["sub_tiers"], joined["sub_price"], joined["sub_tier"]) == ([700, 1750], 700, 0)
    assert await viewer.error("subscribe", room="sta_room", key="k3", tier=3) == "bad_request"
    paid = await viewer.ok("subscribe", room="sta_room", key="k2", tier=2)
    assert (paid["tier"], paid["paid"], paid["mode"], paid["coins"]) == (2, 1750, "new", 3250)

    # sub_price sets tier 1: a tier that no longer costs more is dropped, as for the op.
    assert await admin.ok("PUT", "/api/creators/sta_cr/sub_price", {"price": 1750}) == {
        "price": 1750
    }
    assert (await admin.ok("GET", path("sta_cr")))["prices"] == [1750]
    # The creator's own op and the admin route write the same record.
    assert (await creator.ok("sub_tiers", prices=[350, 1750]))["prices"] == [350, 1750]
    assert (await admin.ok("GET", path("sta_cr")))["prices"] == [350, 1750]


@pytest.mark.parametrize(
    "body",
    [
        {"prices": [1750, 700]},  # not ascending
        {"prices": [350, 350]},  # not strictly ascending
        {"prices": [500]},  # not a catalogue price
        {"prices": []},  # none
        {"prices": [350, 700, 1750, 3500]},  # more than three
        {"prices": [350, "700"]},  # not an integer
        {"prices": [350, True]},  # a boolean is not a price
        {"prices": 350},  # not a list
        {},  # missing
    ],
)
async def test_bad_prices_are_400_and_change_nothing(
    server: Running, admin: Admin, body: dict[str, Any]
) -> None:
    user = f"stb_{uuid.uuid4().hex[:10]}"
    before = await admin.ok("PUT", path(user), {"prices": [350, 700]})
    assert await admin.error("PUT", path(user), body) == (400, "bad_request")
    assert await admin.ok("GET", path(user)) == before


async def test_auth_and_path_checks(server: Running, admin: Admin) -> None:
    assert await admin.error("PUT", path("stc_bad%0A"), {"prices": [350]}) == (400, "bad_request")
    assert await admin.error("GET", path("st%D0%B0c")) == (400, "bad_request")  # Cyrillic a
    for method in ("GET", "PUT"):
        status, body = await admin.call(method, path("stc_cr"), {"prices": [350]}, headers={})
        assert (status, body["error"]["code"]) == (401, "unauthorized")
        viewer = {"Authorization": "Bearer " + server.token("stc_cr", "creator")}
        status, body = await admin.call(method, path("stc_cr"), {"prices": [350]}, viewer)
        assert (status, body["error"]["code"]) == (403, "forbidden")
    status, _ = await admin.call("PUT", path("stc_cr"), None, {**admin.auth})
    assert status == 400
    # nothing was written by the refused calls: the defaults still answer
    assert (await admin.ok("GET", path("stc_cr")))["prices"] == [350, 700, 1750]


async def test_a_minors_sub_spends_are_reversed_and_the_periods_stay(
    server: Running, admin: Admin
) -> None:
    """docs/economy.md, "Refunds, chargebacks and minors": reversing a subscription spend
    returns the coins and takes the creator's diamonds back, and leaves the period already
    granted (and its loyalty month) to the subscriber and to a gift's recipient."""
    creator = await server.connect("stm_cr", "creator")
    await creator.ok("room_open", room="stm_room", title="minor subs")
    await creator.ok("join", room="stm_room")
    await server.grant("stm_kid", 3_000)
    kid = await server.connect("stm_kid")
    await kid.ok("join", room="stm_room")
    friend = await server.connect("stm_friend")
    await friend.ok("join", room="stm_room")
    sub = await kid.ok("subscribe", room="stm_room", key="s1", tier=1)
    up = await kid.ok("subscribe", room="stm_room", key="s2", tier=2)
    gift = await kid.ok("sub_gift", room="stm_room", count=1, key="g1")
    assert gift["recipients"] == ["stm_friend"]
    spent = sub["paid"] + up["paid"] + gift["paid"]
    assert (await kid.ok("wallet"))["coins"] == 3_000 - spent
    await server.settle()
    assert (await creator.ok("wallet"))["diamonds"] > 0

    flagged = await admin.ok("POST", "/api/users/stm_kid/minor")
    assert (flagged["reversed"], flagged["coins_returned"]) == (3, spent)
    await server.settle()
    assert (await kid.ok("wallet"))["coins"] == 3_000
    assert (await creator.ok("wallet"))["diamonds"] == 0
    # the periods stay: the kid's tier 2 until the same end, the friend's gifted tier 1
    mine = await kid.ok("join", room="stm_room")
    assert (mine["sub_tier"], mine["sub_months"], mine["subscribed_until"]) == (
        2,
        1,
        up["until"],
    )
    theirs = await friend.ok("join", room="stm_room")
    assert (theirs["sub_tier"], theirs["sub_months"]) == (1, 1)
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]

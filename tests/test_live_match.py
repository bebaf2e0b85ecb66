"""LIVE matches, goals and hype trains over the wire, across two nodes on one store
(issue 13 items 1 and 2): every count is compared with a hand count."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.client import Client
from tests.conftest import Running, ServerFactory

FAST = {
    "match_duration": 3.0,
    "match_final_seconds": 1.0,
    "match_booster_gift": "panda",
    "match_boost_seconds": 60.0,
}


async def live(server: Running, creator: str, room: str) -> Client:
    c = await server.connect(creator, "creator")
    await c.ok("room_open", room=room, title=f"{creator} live")
    await c.ok("join", room=room)
    return c


async def viewer(server: Running, user: str, room: str, coins: int = 10_000) -> Client:
    await server.grant(user, coins)
    v = await server.connect(user)
    await v.ok("join", room=room)
    return v


async def gift(v: Client, room: str, name: str, count: int, key: str, tries: int = 1) -> None:
    first = await v.ok("gift", room=room, gift=name, count=count, key=key)
    for _ in range(tries - 1):  # a retry with the same key moves and counts nothing again
        again = await v.ok("gift", room=room, gift=name, count=count, key=key)
        assert again["coins"] == first["coins"]


async def test_a_match_across_two_nodes_counts_retried_gifts_once_with_a_booster(
    make_server: ServerFactory,
) -> None:
    n1, n2 = await make_server(**FAST), await make_server(**FAST)
    ca, cb = await live(n1, "mc_a", "mroom_a"), await live(n2, "mc_b", "mroom_b")
    v1 = await viewer(n1, "mv_1", "mroom_a")
    v3 = await viewer(n2, "mv_3", "mroom_a")  # room a's viewer on the other node
    v2 = await viewer(n2, "mv_2", "mroom_b")

    invited = await ca.ok("match_invite", room="mroom_a", opponent="mroom_b")
    mid = invited["match"]
    ev = await cb.event("match_invite")
    assert (ev["match"], ev["from_room"], ev["from"]) == (mid, "mroom_a", "mc_a")
    assert await v1.error("match_accept", match=mid) == "forbidden"
    started = await cb.ok("match_accept", match=mid)
    assert started["rooms"] == ["mroom_a", "mroom_b"]
    assert (await cb.ok("match_accept", match=mid))["ends"] == started["ends"]  # a retry
    for c in (ca, cb, v1, v2, v3):
        await c.event("match_start", lambda e: e["match"] == mid)

    await gift(v1, "mroom_a", "rose", 10, "k1", tries=3)  # 10
    await gift(v2, "mroom_b", "rose", 7, "k2", tries=2)  # 7
    await gift(v3, "mroom_a", "panda", 1, "k3", tries=2)  # the booster: 5 x2 = 10
    await gift(v3, "mroom_a", "rose", 3, "k4", tries=2)  # inside the window: 3 x2 = 6
    await gift(v1, "mroom_a", "finger_heart", 2, "k5")  # 10 x2 = 20
    hand = {"mroom_a": 10 + 10 + 6 + 20, "mroom_b": 7}

    # a viewer joining mid-match gets the score and the time left
    late = await n2.connect("mv_late")
    joined = await late.ok("join", room="mroom_b")
    assert joined["match"]["match"] == mid
    assert joined["match"]["scores"] == hand
    assert 0 < joined["match"]["left_ms"] <= 3000
    assert joined["match"]["boost"]["mroom_a"] > 0 and joined["match"]["boost"]["mroom_b"] == 0

    await cb.event("match_score", lambda e: e["scores"] == hand)
    await ca.event("match_final", lambda e: e["match"] == mid)
    ends: list[dict[str, Any]] = [
        await c.event("match_end", lambda e: e["match"] == mid) for c in (ca, cb, v3, late)
    ]
    for end in ends:
        assert end["scores"] == hand
        assert (end["winner"], end["draw"], end["reason"]) == ("mroom_a", False, "time")
        assert end["top"] == {"mroom_a": [["mv_1", 30], ["mv_3", 16]], "mroom_b": [["mv_2", 7]]}
    # logged once per room, whatever node ended it
    assert [e["ev"] for e in ca.events].count("match_end") == 1
    assert [e["ev"] for e in v3.events].count("match_end") == 1
    # after the end nothing counts, and the room may start another match
    await gift(v1, "mroom_a", "rose", 1, "k6")
    again = await ca.ok("match_invite", room="mroom_a", opponent="mroom_b")
    assert again["match"] != mid
    assert (await n1.audit())["ok"]


async def test_closing_the_room_ends_the_match_and_the_other_side_wins(
    make_server: ServerFactory,
) -> None:
    n1, n2 = await make_server(match_duration=60.0), await make_server(match_duration=60.0)
    ca, cb = await live(n1, "fc_a", "froom_a"), await live(n2, "fc_b", "froom_b")
    v = await viewer(n1, "fv_1", "froom_a")
    mid = (await ca.ok("match_invite", room="froom_a", opponent="froom_b"))["match"]
    assert await ca.error("match_accept", match=mid) == "forbidden"  # the inviter cannot
    await cb.ok("match_accept", match=mid)
    await gift(v, "froom_a", "rose", 50, "f1")
    await cb.event("match_score", lambda e: e["scores"]["froom_a"] == 50)
    await ca.ok("room_close", room="froom_a")
    end = await cb.event("match_end")
    assert (end["winner"], end["reason"], end["scores"]) == (
        "froom_b",
        "closed",
        {"froom_a": 50, "froom_b": 0},
    )


async def test_an_invitation_expires_and_can_be_declined(make_server: ServerFactory) -> None:
    n1 = await make_server(match_invite_ttl=0.3)
    ca, cb = await live(n1, "ec_a", "eroom_a"), await live(n1, "ec_b", "eroom_b")
    assert await ca.error("match_invite", room="eroom_a", opponent="eroom_a") == "forbidden"
    assert await cb.error("match_invite", room="eroom_a", opponent="eroom_b") == "forbidden"
    assert await ca.error("match_invite", room="eroom_a", opponent="nope") == "not_found"
    mid = (await ca.ok("match_invite", room="eroom_a", opponent="eroom_b"))["match"]
    declined = await cb.ok("match_decline", match=mid)
    assert declined["state"] == "declined"
    assert await cb.error("match_accept", match=mid) == "not_found"
    await ca.event("match_declined", lambda e: e["match"] == mid)
    invited = await ca.ok("match_invite", room="eroom_a", opponent="eroom_b")
    mid2 = invited["match"]
    await cb.event("match_invite", lambda e: e["match"] == mid2 and e["expires"])
    async with asyncio.timeout(5):  # the invitation's end on the (shared) clock
        while time.time() * 1000 < invited["expires"] + 5:
            await asyncio.sleep(0.02)
    assert await cb.error("match_accept", match=mid2) == "not_found"
    assert await cb.error("match_accept", match=mid2) == "not_found"
    assert await cb.error("match_accept", match="unknown") == "not_found"


async def test_a_goal_fills_once_across_nodes(make_server: ServerFactory) -> None:
    n1, n2 = await make_server(), await make_server()
    c = await live(n1, "gc", "groom")
    v1, v2 = await viewer(n1, "gv_1", "groom"), await viewer(n2, "gv_2", "groom")
    assert await v1.error("goal_set", room="groom", kind="coins", target=5) == "forbidden"
    assert await c.error("goal_set", room="groom", kind="gift", target=5) == "bad_request"
    assert await c.error("goal_set", room="groom", kind="hugs", target=5) == "bad_request"
    goal = await c.ok("goal_set", room="groom", kind="gift", gift="rose", target=10)
    await gift(v1, "groom", "rose", 4, "g1", tries=3)
    await gift(v2, "groom", "panda", 5, "g2")  # not a rose: no progress
    await c.event("goal", lambda e: e["progress"] == 4)
    await gift(v2, "groom", "rose", 7, "g3", tries=2)  # 11 >= 10
    reached = await c.event("goal_reached")
    assert (reached["goal"], reached["progress"], reached["target"]) == (goal["goal"], 11, 10)
    await gift(v1, "groom", "rose", 5, "g4")
    await c.event("gift", lambda e: e["from"] == "gv_1" and e["count"] == 5)
    assert [e["ev"] for e in c.events].count("goal_reached") == 1
    view = await (await n2.connect("gv_late")).ok("join", room="groom")
    assert view["goal"] == {
        "goal": goal["goal"],
        "kind": "gift",
        "gift": "rose",
        "target": 10,
        "progress": 11,
        "reached": True,
    }
    # a subscribers goal counts subscriptions
    await c.ok("goal_set", room="groom", kind="subs", target=1)
    await v2.ok("subscribe", room="groom", key="s1")
    await c.event("goal_reached", lambda e: e["kind"] == "subs")


async def test_a_hype_train_starts_levels_and_ends_with_its_top_contributors(
    make_server: ServerFactory,
) -> None:
    cfg = {"hype_viewers": 3, "hype_countdown": 1.0, "hype_level_coins": 10}
    n1, n2 = await make_server(**cfg), await make_server(**cfg)
    c = await live(n1, "hc", "hroom")
    vs = [await viewer(n, f"hv_{i}", "hroom") for i, n in enumerate((n1, n2, n1))]
    await gift(vs[0], "hroom", "finger_heart", 1, "h0")
    await gift(vs[1], "hroom", "finger_heart", 1, "h1", tries=2)  # still two gifters
    assert not [e for e in c.events if e["ev"] == "hype_start"]
    await gift(vs[2], "hroom", "finger_heart", 1, "h2")  # the third: the train starts
    start = await c.event("hype_start")
    joined = await (await n2.connect("hv_late")).ok("join", room="hroom")
    assert joined["hype"]["train"] == start["train"]
    await gift(vs[0], "hroom", "panda", 2, "h3", tries=3)  # 5 + 10 = 15: level 1 (10)
    level = await c.event("hype_level")
    assert (level["level"], level["total"]) == (1, 15)
    end = await c.event("hype_end", timeout=10)
    assert (end["level"], end["total"]) == (1, 15)
    assert end["top"] == [["hv_0", 10], ["hv_2", 5]]
    assert [e["ev"] for e in c.events].count("hype_end") == 1

"""The admin API and metrics of LIVE matches, goals and hype trains over real HTTP, on two
nodes sharing one store: each route, an admin ending a match exactly once when two calls
race (one on each node), and each milestone counted once in the metrics of both nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.client import Client
from tests.conftest import Running, ServerFactory


class Http:
    """Admin calls (and metric scrapes) to any of several nodes."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    async def call(
        self, node: Running, method: str, path: str, role: str = "admin"
    ) -> tuple[int, Any]:
        auth = {"Authorization": "Bearer " + node.token("la_ops", role)}
        async with self.http.request(method, node.http_url + path, headers=auth) as resp:
            return resp.status, await resp.json()

    async def ok(self, node: Running, method: str, path: str) -> Any:
        status, body = await self.call(node, method, path)
        assert status == 200, (status, body)
        return body

    async def error(self, node: Running, method: str, path: str, role: str = "admin") -> Any:
        status, body = await self.call(node, method, path, role)
        assert status >= 400 and body["ok"] is False, (status, body)
        return status, body["error"]["code"]

    async def metric(self, nodes: list[Running], line: str) -> float:
        """The sum over ``nodes`` of the sample ``line`` (0 when a node has none)."""
        total = 0.0
        for node in nodes:
            async with self.http.get(node.http_url + "/metrics") as resp:  # loopback
                text = await resp.text()
            for ln in text.splitlines():
                if ln.startswith(line + " "):
                    total += float(ln.rsplit(" ", 1)[1])
        return total


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(session)


async def until(probe: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool]) -> Any:
    """Poll ``probe`` until ``ok`` holds of its answer (5 s deadline); the answer."""
    async with asyncio.timeout(5):
        while True:
            got = await probe()
            if ok(got):
                return got
            await asyncio.sleep(0.02)


async def live(server: Running, creator: str, room: str) -> Client:
    c = await server.connect(creator, "creator")
    await c.ok("room_open", room=room, title=f"{creator} live")
    await c.ok("join", room=room)
    return c


async def viewer(server: Running, user: str, room: str) -> Client:
    await server.grant(user, 10_000)
    v = await server.connect(user)
    await v.ok("join", room=room)
    return v


async def gift(v: Client, room: str, name: str, count: int, key: str, tries: int) -> None:
    for _ in range(tries):  # a retry with the same key counts nothing again
        await v.ok("gift", room=room, gift=name, count=count, key=key)


async def test_match_routes_and_an_admin_end_raced_on_two_nodes_happens_once(
    make_server: ServerFactory, http: Http
) -> None:
    n1, n2 = await make_server(match_duration=60.0), await make_server(match_duration=60.0)
    ca, cb = await live(n1, "lac_a", "laroom_a"), await live(n2, "lac_b", "laroom_b")
    v = await viewer(n1, "lav_1", "laroom_a")
    path = "/api/rooms/laroom_a/match"
    assert await http.ok(n1, "GET", path) == {"room": "laroom_a", "match": None}
    assert await http.error(n1, "POST", path + "/end") == (404, "not_found")
    assert await http.error(n1, "GET", path, role="viewer") == (403, "forbidden")
    assert await http.error(n1, "GET", "/api/rooms/bad%20room/match") == (400, "bad_request")

    mid = (await ca.ok("match_invite", room="laroom_a", opponent="laroom_b"))["match"]
    await cb.ok("match_accept", match=mid)
    await cb.ok("match_accept", match=mid)  # a retry starts nothing again
    await gift(v, "laroom_a", "rose", 7, "la1", tries=3)
    hand = {"laroom_a": 7, "laroom_b": 0}
    view = await until(lambda: http.ok(n2, "GET", path), lambda r: r["match"]["scores"] == hand)
    assert view["match"]["match"] == mid and 0 < view["match"]["left_ms"] <= 60_000
    assert (await http.ok(n1, "GET", "/api/rooms/laroom_b/match"))["match"]["scores"] == hand

    # two admins end it at once, on different nodes: one result, one 404
    raced = await asyncio.gather(
        http.call(n1, "POST", path + "/end"), http.call(n2, "POST", "/api/rooms/laroom_b/match/end")
    )
    assert sorted(status for status, _ in raced) == [200, 404]
    result = next(body for status, body in raced if status == 200)
    lost = next(body for status, body in raced if status == 404)
    assert lost["error"]["code"] == "not_found"
    assert result == {
        "match": mid,
        "scores": hand,
        "winner": "laroom_a",
        "draw": False,
        "reason": "admin",
        "top": {"laroom_a": [["lav_1", 7]], "laroom_b": []},
    }
    for c in (ca, cb, v):
        end = await c.event("match_end", lambda e: e["match"] == mid)
        assert {k: end[k] for k in result} == result
    assert await http.ok(n1, "GET", path) == {"room": "laroom_a", "match": None}
    assert await http.error(n2, "POST", path + "/end") == (404, "not_found")
    # nothing counts after the end; a later event shows match_end was logged once per room
    await gift(v, "laroom_a", "rose", 1, "la2", tries=1)
    await ca.event("gift", lambda e: e["from"] == "lav_1" and e["count"] == 1)
    assert [e["ev"] for e in ca.events].count("match_end") == 1
    assert [e["ev"] for e in v.events].count("match_end") == 1
    nodes = [n1, n2]
    assert await http.metric(nodes, "livesrv_matches_started_total") == 1
    assert await http.metric(nodes, 'livesrv_matches_ended_total{reason="admin"}') == 1
    assert await http.metric(nodes, 'livesrv_matches_ended_total{reason="time"}') == 0


async def test_goal_and_hype_routes_and_each_counted_once(
    make_server: ServerFactory, http: Http
) -> None:
    cfg = {"hype_viewers": 2, "hype_countdown": 1.0, "hype_level_coins": 10}
    n1, n2 = await make_server(**cfg), await make_server(**cfg)
    c = await live(n1, "lgc", "lgroom")
    v1, v2 = await viewer(n1, "lgv_1", "lgroom"), await viewer(n2, "lgv_2", "lgroom")
    assert await http.ok(n2, "GET", "/api/rooms/lgroom/goal") == {"room": "lgroom", "goal": None}
    assert await http.ok(n2, "GET", "/api/rooms/lgroom/hype") == {"room": "lgroom", "hype": None}
    assert await http.error(n1, "GET", "/api/rooms/lgroom/goal", role="creator") == (
        403,
        "forbidden",
    )

    goal = await c.ok("goal_set", room="lgroom", kind="coins", target=20)
    await gift(v1, "lgroom", "finger_heart", 1, "lg1", tries=2)  # 5
    assert (await http.ok(n2, "GET", "/api/rooms/lgroom/goal"))["goal"] == {
        "goal": goal["goal"],
        "kind": "coins",
        "gift": None,
        "target": 20,
        "progress": 5,
        "reached": False,
    }
    await gift(v2, "lgroom", "finger_heart", 1, "lg2", tries=2)  # 10; the second gifter
    start = await c.event("hype_start")
    hype = (await http.ok(n1, "GET", "/api/rooms/lgroom/hype"))["hype"]
    assert (hype["train"], hype["level"], hype["total"], hype["next"]) == (start["train"], 0, 5, 10)
    await gift(v1, "lgroom", "panda", 2, "lg3", tries=3)  # 20: the goal; the train 15: level 1
    await c.event("goal_reached")
    got = (await http.ok(n1, "GET", "/api/rooms/lgroom/goal"))["goal"]
    assert (got["progress"], got["reached"]) == (20, True)
    hype = (await http.ok(n2, "GET", "/api/rooms/lgroom/hype"))["hype"]
    assert (hype["level"], hype["total"], hype["next"]) == (1, 15, 30)

    end = await c.event("hype_end")  # each node with members ticks the end
    assert (end["level"], end["total"]) == (1, 15)
    assert await http.ok(n2, "GET", "/api/rooms/lgroom/hype") == {"room": "lgroom", "hype": None}
    await gift(v2, "lgroom", "rose", 1, "lg4", tries=1)  # after the goal: nothing more
    await c.event("gift", lambda e: e["from"] == "lgv_2" and e["count"] == 1)
    nodes = [n1, n2]
    assert await http.metric(nodes, 'livesrv_goals_reached_total{kind="coins"}') == 1
    assert await http.metric(nodes, 'livesrv_hype_trains_ended_total{level="1"}') == 1
    assert [e["ev"] for e in c.events].count("hype_end") == 1

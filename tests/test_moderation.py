"""Moderation over the wire (docs/protocol.md, "Moderation"): every action as every role
(creator, moderator, viewer, admin on the WebSocket and through the admin API), and a ban
across two nodes of one store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.client import Client
from tests.cluster_fixtures import ClusterNodes
from tests.conftest import Running, ServerFactory


async def open_room(server: Running, room: str, creator: str) -> Client:
    c = await server.connect(creator, "creator")
    await c.ok("room_open", room=room, title="moderated")
    await c.ok("join", room=room)
    return c


async def member(server: Running, user: str, room: str, role: str = "viewer") -> Client:
    c = await server.connect(user, role)
    await c.ok("join", room=room)
    return c


def error_of(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["ok"] is False, reply
    return reply["error"]  # type: ignore[no-any-return]


@pytest.fixture
async def admin_http(server: Running) -> AsyncIterator[aiohttp.ClientSession]:
    auth = {"Authorization": "Bearer " + server.token("mod_root", "admin")}
    async with aiohttp.ClientSession(headers=auth) as session:
        yield session


async def post(
    server: Running, http: aiohttp.ClientSession, room: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{server.http_url}/api/rooms/{room}/moderation", json=body) as resp:
        return resp.status, await resp.json()


async def test_the_creator_appoints_and_removes_moderators(server: Running) -> None:
    room = "mod_r1"
    creator = await open_room(server, room, "mod_c1")
    viewer = await member(server, "mod_v1", room)
    r = await creator.ok("mod_add", room=room, user="mod_m1")
    assert r["mods"] == ["mod_m1"] and r["user"] == "mod_m1" and r["seq"] > 0
    ev = await viewer.event("moderator")
    assert (ev["user"], ev["added"], ev["by"], ev["seq"]) == ("mod_m1", True, "mod_c1", r["seq"])
    again = await creator.ok("mod_add", room=room, user="mod_m1")
    assert again["seq"] is None and again["mods"] == ["mod_m1"]  # nothing changed
    mod = await member(server, "mod_m1", room)
    assert await viewer.error("mod_add", room=room, user="mod_v1") == "forbidden"
    assert await mod.error("mod_add", room=room, user="mod_v1") == "forbidden"
    assert await mod.error("mod_remove", room=room, user="mod_m1") == "forbidden"
    assert await creator.error("mod_add", room=room, user="mod_c1") == "bad_request"
    assert (await viewer.ok("mods", room=room))["mods"] == ["mod_m1"]
    joined = await (await server.connect("mod_v2")).ok("join", room=room)
    assert (joined["mods"], joined["slow_mode"], joined["muted_until"]) == (["mod_m1"], 0, 0)
    state = await mod.ok("moderation", room=room)
    assert state["mods"] == ["mod_m1"] and state["creator"] == "mod_c1"
    assert await viewer.error("moderation", room=room) == "forbidden"
    r = await creator.ok("mod_remove", room=room, user="mod_m1")
    assert r["mods"] == []
    assert (await viewer.event("moderator", lambda e: not e["added"]))["user"] == "mod_m1"
    assert await mod.error("slow_mode", room=room, seconds=5) == "forbidden"  # no longer
    assert await creator.error("mod_add", room="mod_never", user="x") == "not_found"
    assert await creator.error("mods", room="mod_never") == "not_found"


async def test_mute_as_each_role(server: Running, admin_http: aiohttp.ClientSession) -> None:
    room = "mod_r2"
    creator = await open_room(server, room, "mod_c2")
    await creator.ok("mod_add", room=room, user="mod_m2")
    await creator.ok("mod_add", room=room, user="mod_m2b")
    mod = await member(server, "mod_m2", room)
    v1, v2, v3 = [await member(server, f"mod_v2{i}", room) for i in (1, 2, 3)]
    seq0 = (await creator.ok("join", room=room))["seq"]

    r = await creator.ok("mute", room=room, user="mod_v21", seconds=60)
    now = time.time() * 1000
    assert 55_000 < r["until"] - now <= 61_000 and r["seq"] == seq0 + 1
    ev = await v1.event("muted")
    assert (ev["user"], ev["until"], ev["by"]) == ("mod_v21", r["until"], "mod_c2")
    err = error_of(await v1.call("chat", room=room, text="hi"))
    assert err["code"] == "muted" and err["until"] == r["until"]
    assert str(r["until"]) in err["message"]
    assert (await v1.ok("join", room=room))["muted_until"] == r["until"]

    r2 = await mod.ok("mute", room=room, user="mod_v22", seconds=60)  # a moderator mutes
    assert await v2.error("chat", room=room, text="hi") == "muted"
    assert await v3.error("mute", room=room, user="mod_v21", seconds=5) == "forbidden"
    assert await mod.error("mute", room=room, user="mod_c2", seconds=5) == "forbidden"
    assert await mod.error("mute", room=room, user="mod_m2b", seconds=5) == "forbidden"
    assert await mod.error("mute", room=room, user="mod_m2", seconds=5) == "bad_request"
    assert await mod.error("mute", room=room, user="mod_v23", seconds=-1) == "bad_request"

    status, body = await post(
        server, admin_http, room, {"action": "mute", "user": "mod_v23", "seconds": 60}
    )
    assert status == 200 and body["user"] == "mod_v23" and body["until"] > 0
    assert await v3.error("chat", room=room, text="hi") == "muted"
    # nothing was logged for the refused lines: the seq moved by the three mutes only
    assert (await creator.ok("join", room=room))["seq"] == r2["seq"] + 1

    unmuted = await creator.ok("mute", room=room, user="mod_v21", seconds=0)
    assert unmuted["until"] == 0
    await v1.ok("chat", room=room, text="back")
    # a mute ends by itself
    await mod.ok("mute", room=room, user="mod_v22", seconds=1)

    async def spoke() -> bool:
        reply = await v2.call("chat", room=room, text="again")
        assert reply["ok"] or reply["error"]["code"] == "muted"
        return bool(reply["ok"])

    deadline = time.monotonic() + 10
    while not await spoke():
        assert time.monotonic() < deadline, "the mute did not end"
        await asyncio.sleep(0.1)  # poll (under the request rate) until the mute ends
    assert (await creator.event("chat", lambda e: e["text"] == "again"))["from"] == "mod_v22"


async def test_ban_removes_the_user_on_every_node(make_server: ServerFactory) -> None:
    a = await make_server()
    b = await make_server()  # a second node on the same store
    room = "mod_r3"
    creator = await open_room(a, room, "mod_c3")
    await creator.ok("mod_add", room=room, user="mod_m3")
    mod = await member(b, "mod_m3", room)
    await a.grant("mod_v3", 100)
    on_a = await member(a, "mod_v3", room)
    on_b = await member(b, "mod_v3", room)
    other = await member(b, "mod_v3x", room)
    await on_b.ok("chat", room=room, text="before")

    r = await mod.ok("ban", room=room, user="mod_v3")  # a moderator on node b
    for c in (on_a, on_b, other, creator):
        ev = await c.event("banned")
        assert (ev["user"], ev["by"], ev["seq"]) == ("mod_v3", "mod_m3", r["seq"])
    # removed from the room on both nodes: no more events, and every op in it is refused
    assert await on_a.error("chat", room=room, text="x") == "banned"
    assert await on_b.error("chat", room=room, text="x") == "banned"
    assert await on_a.error("gift", room=room, gift="rose", count=1, key="mod-g1") == "banned"
    assert await on_b.error("subscribe", room=room, key="mod-s1") == "banned"
    assert await on_a.error("buy", room=room, product="demo_tee", qty=1, key="mod-b1") == "banned"
    assert await on_a.error("join", room=room) == "banned"
    assert await on_b.error("join", room=room) == "banned"
    assert await on_b.error("leave", room=room) == "forbidden"
    assert (await on_a.ok("wallet"))["coins"] == 100  # nothing moved
    await other.ok("chat", room=room, text="after")
    await creator.event("chat", lambda e: e["text"] == "after")
    assert not [e for e in on_a.events + on_b.events if e.get("seq", 0) > r["seq"]]
    assert "mod_v3" in (await creator.ok("moderation", room=room))["banned"]

    assert await other.error("ban", room=room, user="mod_v3x") == "forbidden"  # a viewer
    assert await mod.error("ban", room=room, user="mod_c3") == "forbidden"  # the creator
    r2 = await creator.ok("unban", room=room, user="mod_v3")
    assert (await other.event("unbanned"))["seq"] == r2["seq"]
    assert (await creator.ok("unban", room=room, user="mod_v3"))["seq"] is None
    await on_b.ok("join", room=room)
    await on_b.ok("chat", room=room, text="welcome back")
    await on_a.ok("join", room=room)
    gift = await on_a.ok("gift", room=room, gift="rose", count=1, key="mod-g2")
    assert gift["coins"] == 99
    # banning a moderator (the creator may) ends the appointment
    await creator.ok("ban", room=room, user="mod_m3")
    assert (await creator.ok("mods", room=room))["mods"] == []
    assert await mod.error("join", room=room) == "banned"


async def test_delete_a_chat_line(server: Running) -> None:
    room = "mod_r4"
    creator = await open_room(server, room, "mod_c4")
    await creator.ok("mod_add", room=room, user="mod_m4")
    mod = await member(server, "mod_m4", room)
    viewer = await member(server, "mod_v4", room)
    since = (await viewer.ok("join", room=room))["seq"]
    await viewer.ok("chat", room=room, text="rude words")
    line = await mod.event("chat", lambda e: e["text"] == "rude words")
    await viewer.ok("chat", room=room, text="kind words")
    kind = await mod.event("chat", lambda e: e["text"] == "kind words")

    assert await viewer.error("chat_delete", room=room, seq=line["seq"]) == "forbidden"
    r = await mod.ok("chat_delete", room=room, seq=line["seq"])
    assert r["chat_seq"] == line["seq"]
    for c in (creator, viewer, mod):
        ev = await c.event("chat_deleted")
        assert (ev["chat_seq"], ev["by"], ev["seq"]) == (line["seq"], "mod_m4", r["seq"])
    assert (await mod.ok("chat_delete", room=room, seq=line["seq"]))["seq"] is None
    assert await mod.error("chat_delete", room=room, seq=r["seq"]) == "not_found"  # no chat
    assert await creator.error("chat_delete", room=room, seq=10**6) == "not_found"

    late = await server.connect("mod_v4b")
    reply = await late.ok("join", room=room, since=since)
    await late.wait(lambda: max(late.seqs(room), default=0) >= r["seq"])
    replay = [e for e in late.events if e.get("seq", 0) > since]
    assert [e["seq"] for e in replay] == list(range(since + 1, r["seq"] + 1))
    assert reply["gap"] is False
    hidden = next(e for e in replay if e["seq"] == line["seq"])
    assert hidden["ev"] == "deleted" and "text" not in hidden and "from" not in hidden
    assert "rude words" not in str(late.frames)
    assert next(e for e in replay if e["seq"] == kind["seq"])["text"] == "kind words"
    page = await late.ok("history", room=room, before=r["seq"] + 1)
    assert not [e for e in page["events"] if e.get("text") == "rude words"]
    assert [e["ev"] for e in page["events"] if e["seq"] == line["seq"]] == ["deleted"]
    # the creator deletes too
    await viewer.ok("chat", room=room, text="more")
    more = await creator.event("chat", lambda e: e["text"] == "more")
    await creator.ok("chat_delete", room=room, seq=more["seq"])


async def test_slow_mode(server: Running) -> None:
    room = "mod_r5"
    creator = await open_room(server, room, "mod_c5")
    await creator.ok("mod_add", room=room, user="mod_m5")
    mod = await member(server, "mod_m5", room)
    v1 = await member(server, "mod_v5", room)
    v2 = await member(server, "mod_v5b", room)
    assert await v1.error("slow_mode", room=room, seconds=5) == "forbidden"
    assert await mod.error("slow_mode", room=room, seconds=3601) == "bad_request"
    r = await mod.ok("slow_mode", room=room, seconds=60)
    assert r["seconds"] == 60 and (await v1.event("slow_mode"))["seconds"] == 60
    assert (await v2.ok("join", room=room))["slow_mode"] == 60
    await v1.ok("chat", room=room, text="one")
    seq = (await v1.ok("join", room=room))["seq"]
    err = error_of(await v1.call("chat", room=room, text="two"))
    assert err["code"] == "slow_mode" and 50_000 < err["retry_after_ms"] <= 60_000
    await v2.ok("chat", room=room, text="per viewer")  # another viewer has its own window
    for _ in range(2):  # the creator and the moderators are not slowed
        await mod.ok("chat", room=room, text="mod")
        await creator.ok("chat", room=room, text="creator")
    assert (await v1.ok("join", room=room))["seq"] == seq + 5  # the refused line: no seq
    await creator.ok("slow_mode", room=room, seconds=0)
    await v1.ok("chat", room=room, text="free again")
    assert (await creator.ok("slow_mode", room=room, seconds=0))["seq"] is None


async def test_admin_moderates_any_room(server: Running, admin_http: aiohttp.ClientSession) -> None:
    room = "mod_r6"
    creator = await open_room(server, room, "mod_c6")
    viewer = await member(server, "mod_v6", room)
    await viewer.ok("chat", room=room, text="spam")
    line = await creator.event("chat", lambda e: e["text"] == "spam")
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"action": "mod_add", "user": "mod_m6"}, {"mods": ["mod_m6"]}),
        ({"action": "slow_mode", "seconds": 10}, {"seconds": 10}),
        ({"action": "chat_delete", "seq": line["seq"]}, {"chat_seq": line["seq"]}),
        ({"action": "mute", "user": "mod_v6", "seconds": 30}, {"user": "mod_v6"}),
        ({"action": "mod_remove", "user": "mod_m6"}, {"mods": []}),
        ({"action": "ban", "user": "mod_v6"}, {"user": "mod_v6"}),
    ]
    for body, expect in calls:
        status, reply = await post(server, admin_http, room, body)
        assert status == 200, (body, reply)
        assert {k: reply[k] for k in expect} == expect and reply["seq"] > 0
    for name in ("moderator", "slow_mode", "chat_deleted", "muted", "banned"):
        assert (await creator.event(name))["by"] == "mod_root"
    await viewer.event("banned")
    async with admin_http.get(f"{server.http_url}/api/rooms/{room}/moderation") as resp:
        state = await resp.json()
    assert resp.status == 200
    assert (state["banned"], state["slow_mode"], state["mods"]) == (["mod_v6"], 10, [])
    status, reply = await post(server, admin_http, room, {"action": "unban", "user": "mod_v6"})
    assert status == 200 and reply["seq"] > 0
    await viewer.ok("join", room=room)
    status, reply = await post(server, admin_http, room, {"action": "ban"})
    assert status == 400 and reply["error"]["code"] == "bad_request"
    status, reply = await post(server, admin_http, room, {"action": "mute", "user": "mod_v6"})
    assert status == 400 and reply["error"]["code"] == "bad_request"
    status, reply = await post(server, admin_http, room, {"action": "kick", "user": "mod_v6"})
    assert status == 400
    status, reply = await post(server, admin_http, "mod_never", {"action": "ban", "user": "x"})
    assert status == 404 and reply["error"]["code"] == "not_found"
    async with admin_http.get(f"{server.http_url}/api/rooms/mod_never/moderation") as resp:
        assert resp.status == 404
    url = f"{server.http_url}/api/rooms/{room}/moderation"
    async with (
        aiohttp.ClientSession() as anon,  # no token
        anon.post(url, json={"action": "unban", "user": "x"}) as resp,
    ):
        assert resp.status == 401
    # an admin on the WebSocket moderates any room too
    root = await server.connect("mod_root2", "admin")
    assert (await root.ok("ban", room=room, user="mod_v6"))["seq"] > 0
    assert await viewer.error("chat", room=room, text="x") == "banned"


async def test_moderation_on_a_cluster(cluster_nodes: ClusterNodes) -> None:
    """The same on three nodes of a 3-master cluster: the state's reads and scripts go to
    the room's slot, wherever it is; the ban reaches the node the viewer is on."""
    n0, n1, _ = await cluster_nodes(3)
    room = "mod_cl1"
    creator = await open_room(n0, room, "mod_ccl")
    await creator.ok("mod_add", room=room, user="mod_mcl")
    mod = await member(n1, "mod_mcl", room)
    viewer = await member(n1, "mod_vcl", room)
    await viewer.ok("chat", room=room, text="oops")
    line = await creator.event("chat", lambda e: e["text"] == "oops")
    await mod.ok("chat_delete", room=room, seq=line["seq"])
    await mod.ok("slow_mode", room=room, seconds=30)
    await mod.ok("mute", room=room, user="mod_vcl", seconds=30)
    assert await viewer.error("chat", room=room, text="x") == "muted"
    r = await creator.ok("ban", room=room, user="mod_vcl")
    assert (await viewer.event("banned"))["seq"] == r["seq"]
    assert await viewer.error("join", room=room) == "banned"
    state = await mod.ok("moderation", room=room)
    assert (state["banned"], state["muted"], state["slow_mode"]) == (["mod_vcl"], [], 30)
    late = await n1.connect("mod_vcl2")
    await late.ok("join", room=room, since=line["seq"] - 1)
    await late.wait(lambda: max(late.seqs(room), default=0) >= r["seq"])
    assert next(e for e in late.events if e.get("seq") == line["seq"])["ev"] == "deleted"


async def test_join_reads_moderation_with_the_room(server: Running) -> None:
    """One read gives a join the ban, the moderators, slow mode and the joiner's mute with
    the room: a banned user is refused and not counted in; a connection that joins again
    gets the fields and is not counted twice."""
    room = "mod_r9"
    creator = await open_room(server, room, "mod_c9")
    await creator.ok("mod_add", room=room, user="mod_m9")
    await creator.ok("slow_mode", room=room, seconds=7)
    viewer = await member(server, "mod_v91", room)
    muted = await creator.ok("mute", room=room, user="mod_v91", seconds=60)
    again = await viewer.ok("join", room=room)
    assert (again["mods"], again["slow_mode"], again["muted_until"]) == (
        ["mod_m9"],
        7,
        muted["until"],
    )
    assert again["viewers"] == 2 and again["room"] == room and again["creator"] == "mod_c9"
    await creator.ok("ban", room=room, user="mod_v92")
    banned = await server.connect("mod_v92")
    assert await banned.error("join", room=room) == "banned"
    assert (await creator.ok("join", room=room))["viewers"] == 2
    assert await (await server.connect("mod_v93")).error("join", room="mod_r9x") == "not_found"

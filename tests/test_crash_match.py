"""Crash test of a LIVE match: SIGKILL a real ``livesrv serve`` while viewers in both rooms
of a running match send keyed gifts (boosters among them), start it again on the same data
dir, retry every unacknowledged gift with its key, and check that each side's score is the
hand count of the distinct keys applied in its room (x2 inside the booster window), that
no gift counted twice, that balances and diamonds are exact, that the match ends at its
timer with the right winner and top supporters, and that ``livesrv audit`` exits 0.

Booster windows are kept exact without reading any clock: room A's first gift, sent and
acknowledged right after the start, is the booster, and a window lasts longer than the
match, so every gift of room A counts x2 (the boosters sent during the storm only queue
their windows after it: x2, never x4); room B sends no booster and counts x1.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

from tests.conftest import ServeProcess
from tests.test_crash import (  # noqa: F401  (_no_livesrv_env: the autouse fixture)
    ENV,
    Op,
    Serve,
    Viewer,
    _no_livesrv_env,
    api,
    audit_passes,
    close_all,
    connect,
    room_log,
    sigkill,
    stop,
    storm_in_rooms,
)
from tests.timing import scaled, until

DURATION = scaled(15)  # seconds: the storm, the kill, the restart and the retries fit in it
MATCH_ENV = {
    **ENV,
    "LIVESRV_MATCH_DURATION": str(DURATION),
    "LIVESRV_MATCH_BOOST_SECONDS": str(DURATION + 60),  # one window covers the whole match
    "LIVESRV_MATCH_FINAL_SECONDS": "1",
    "LIVESRV_DAY_LIMIT": "100000000",  # boosters are rockets (20,000 coins each)
}
COINS = {"rose": 1, "panda": 5, "rainbow_puke": 100, "rocket": 20_000}
GRANT = 1_000_000
ROOM_A, ROOM_B = "duel_a", "duel_b"


def plan(i: int, boosted: bool) -> list[Op]:
    """60 gifts; room A's viewers send a rocket (the booster) every 15th. Each viewer's
    total differs from every other's, so the top supporters have one order."""
    ops = []
    for j in range(60):
        if boosted and j % 15 == 7:
            g, n = "rocket", 1
        else:
            g, n = ("rose", "panda", "rainbow_puke")[(i + j) % 3], 1 + (i + j) % 4
        ops.append(Op("gift", f"m{j}", {"gift": g, "count": n}, COINS[g] * n))
    ops.append(Op("gift", "last", {"gift": "rose", "count": i + 1}, i + 1))
    return ops


async def retry(p: ServeProcess, rooms: dict[str, list[Viewer]]) -> int:
    """Reconnect every viewer to the new serve and retry each unacknowledged key."""
    retried = 0

    async def again(v: Viewer, room: str) -> None:
        nonlocal retried
        if v.client is not None:
            await v.client.close()
        v.client = await connect(p, v.user)
        await v.client.ok("join", room=room)
        for o in v.plan:
            if o.key not in v.acked:
                v.acked[o.key] = await v.client.ok(o.op, room=room, key=o.key, **o.args)
                retried += 1

    await asyncio.gather(*(again(v, r) for r, vs in rooms.items() for v in vs))
    return retried


async def test_sigkill_serve_mid_match(serve_process: Serve, tmp_path: Path) -> None:
    d = tmp_path / "crash"
    p = serve_process("--hold-seconds", "0", data_dir=d, env=MATCH_ENV)
    ca = await connect(p, "duelist_a", "creator")
    cb = await connect(p, "duelist_b", "creator")
    await ca.ok("room_open", room=ROOM_A, title="crash a")
    await cb.ok("room_open", room=ROOM_B, title="crash b")
    rooms: dict[str, list[Viewer]] = {ROOM_A: [], ROOM_B: []}
    for room, prefix in ((ROOM_A, "afan"), (ROOM_B, "bfan")):
        for i in range(6):
            v = Viewer(f"{prefix}{i}", plan(i if room == ROOM_A else i + 6, room == ROOM_A))
            await api(
                p.http_url, "POST", f"/api/users/{v.user}/grant", {"coins": GRANT, "key": "g"}
            )
            v.client = await connect(p, v.user)
            await v.client.ok("join", room=room)
            rooms[room].append(v)

    mid = (await ca.ok("match_invite", room=ROOM_A, opponent=ROOM_B))["match"]
    started = await cb.ok("match_accept", match=mid)
    ends = started["ends"]
    # room A's booster opens its x2 window before any other gift of the match
    first = rooms[ROOM_A][0]
    assert first.client is not None
    first.plan.insert(0, Op("gift", "boost", {"gift": "rocket", "count": 1}, COINS["rocket"]))
    first.acked["boost"] = await first.client.ok(
        "gift", room=ROOM_A, gift="rocket", count=1, key="boost"
    )
    side = (await api(p.http_url, "GET", f"/api/rooms/{ROOM_A}/match"))["match"]
    assert side["boost"][ROOM_A] > ends  # the window outlasts the match
    keys = sum(len(v.plan) for vs in rooms.values() for v in vs)

    acked = await storm_in_rooms(rooms, lambda: sigkill(p), after=keys // 3)
    assert await asyncio.to_thread(p.wait) == -signal.SIGKILL
    await close_all([], ca, cb)
    assert 0 < acked < keys

    p2 = serve_process("--hold-seconds", "0", data_dir=d, env=MATCH_ENV)
    watch = await connect(p2, "duel_watch")
    for room in rooms:
        await watch.ok("join", room=room)
    assert await retry(p2, rooms) == keys - acked
    left_ms = ends - time.time() * 1000
    assert left_ms > 0, f"retries ended {-left_ms:.0f} ms after the match (raise the time scale)"

    # the hand count: every distinct key once, room A's x2
    spent = {v.user: v.spent for vs in rooms.values() for v in vs}
    points = {v.user: v.spent * (2 if r == ROOM_A else 1) for r, vs in rooms.items() for v in vs}
    hand = {r: sum(points[v.user] for v in vs) for r, vs in rooms.items()}
    live = (await api(p2.http_url, "GET", f"/api/rooms/{ROOM_B}/match"))["match"]
    assert live["match"] == mid and live["scores"] == hand

    # the timer ends it (no creator is connected: the node's tick or the upkeep does it)
    end = await watch.event("match_end", lambda e: e["match"] == mid, timeout=DURATION + 30)
    assert time.time() * 1000 >= ends
    winner = max(hand, key=lambda r: hand[r])
    assert hand[ROOM_A] != hand[ROOM_B]
    assert (end["scores"], end["winner"], end["draw"], end["reason"]) == (
        hand,
        winner,
        False,
        "time",
    )
    for r, vs in rooms.items():
        top = sorted(([v.user, points[v.user]] for v in vs), key=lambda t: -int(t[1]))[:3]
        assert end["top"][r] == top, (r, end["top"][r], top)

    # balances: each key paid once; the creators' diamonds are half the coins of their room
    for vs in rooms.values():
        for v in vs:
            assert v.client is not None
            assert (await v.client.ok("wallet"))["coins"] == GRANT - v.spent
    expect = {
        c: sum(spent[v.user] for v in rooms[r]) * 5000 // 10000
        for c, r in (("duelist_a", ROOM_A), ("duelist_b", ROOM_B))
    }

    async def creators_paid() -> bool:
        got = {}
        for c in expect:
            got[c] = (await api(p2.http_url, "GET", f"/api/users/{c}/wallet"))["diamonds"]
        assert all(got[c] <= expect[c] for c in expect), (got, expect)
        return got == expect

    await until(creators_paid, 30)

    # the room logs: one gift per key, one start and one end per room
    for r, vs in rooms.items():
        events = await room_log(p2, r)
        gifts = [e for e in events if e["ev"] == "gift"]
        assert Counter(e["from"] for e in gifts) == {v.user: len(v.plan) for v in vs}
        assert sum(e["coins"] for e in gifts) == sum(spent[v.user] for v in vs)
        kinds = Counter(e["ev"] for e in events if e.get("match") == mid)
        assert (kinds["match_start"], kinds["match_end"]) == (1, 1), kinds
    assert (await api(p2.http_url, "GET", f"/api/rooms/{ROOM_A}/match"))["match"] is None

    report = await audit_passes(d)
    assert f"spent={sum(spent.values())}" in report
    await close_all([v for vs in rooms.values() for v in vs], watch)
    await stop(p2)
    await audit_passes(d)
    print(
        f"match crash: {keys} gift keys, {acked} acknowledged before SIGKILL, "
        f"{keys - acked} retried, {left_ms / 1000:.1f} s of the match left; scores {hand}"
    )

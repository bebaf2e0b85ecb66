"""A reconnect storm over the wire: many clients ``join since`` one room at once. Each gets
exactly the events it missed, in order, then the live ones with no gap and no duplicate,
and the node reads the room log far fewer times than there are joiners (one read per
batch: livesrv_room_replay_reads_total)."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from tests.client import Client
from tests.conftest import Running
from tests.timing import scaled

JOINERS = 200
MISSED = 50


async def replay_counts(server: Running) -> tuple[float, float]:
    """(reads, joiners) from /metrics."""
    async with aiohttp.ClientSession() as http, http.get(server.http_url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()

    def value(name: str) -> float:
        m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
        assert m, name
        return float(m.group(1))

    return value("livesrv_room_replay_reads_total"), value("livesrv_room_replay_joiners_total")


async def until_seq(c: Client, room: str, seq: int, timeout: float = 30) -> list[int]:
    await c.wait(lambda: max(c.seqs(room), default=0) >= seq, timeout)
    return c.seqs(room)


async def open_room(server: Running, host_name: str, room: str, chats: int) -> Client:
    host = await server.connect(host_name, "creator")
    await host.ok("room_open", room=room, title="storm")  # seq 1
    await host.ok("join", room=room)
    for i in range(chats):
        await host.ok("chat", room=room, text=f"c{i}")
    return host


async def test_reconnect_storm_gets_exactly_the_missed_events_from_few_reads(
    server: Running,
) -> None:
    room = "js_storm"
    host = await open_room(server, "js_host", room, MISSED + 20)
    last = MISSED + 21
    since = last - MISSED
    viewers = await asyncio.gather(*(server.connect(f"js_v{i}") for i in range(JOINERS)))
    reads0, joiners0 = await replay_counts(server)
    replies = await asyncio.gather(*(v.ok("join", room=room, since=since) for v in viewers))
    for r in replies:
        assert (r["seq"], r["gap"], r["replay_from"]) == (last, False, since + 1)
    want = list(range(since + 1, last + 1))
    for v in viewers:
        assert await until_seq(v, room, last) == want
    # and the live events after the replay
    await host.ok("chat", room=room, text="live")
    for v in viewers:
        assert await until_seq(v, room, last + 1) == [*want, last + 1]
    server.node.sync_metrics()
    reads, joiners = await replay_counts(server)
    assert joiners - joiners0 == JOINERS
    assert 1 <= reads - reads0 < JOINERS // 2  # shared reads, not one per joiner


async def test_joiners_mid_storm_see_no_gap_and_no_duplicate(server: Running) -> None:
    room = "js_mid"
    host = await open_room(server, "js_mid_host", room, MISSED)
    joiners = 60
    viewers = await asyncio.gather(*(server.connect(f"js_mid_v{i}") for i in range(joiners)))
    talking = True

    async def talk() -> int:
        n = 0
        while talking:
            await host.ok("chat", room=room, text=f"live {n}")
            n += 1
            await asyncio.sleep(0.025)  # under the per-connection op rate (60/s)
        return n

    talker = asyncio.create_task(talk())
    sinces = [1 + (i * 7) % MISSED for i in range(joiners)]  # different ranges, same room
    replies = await asyncio.gather(
        *(v.ok("join", room=room, since=s) for v, s in zip(viewers, sinces, strict=True))
    )
    # keep talking until every joiner has seen live events after its join
    async with asyncio.timeout(scaled(30)):
        while (
            min(
                max(v.seqs(room), default=0) - r["seq"]
                for v, r in zip(viewers, replies, strict=True)
            )
            < 3
        ):
            await asyncio.sleep(0.05)
    talking = False
    last = 1 + MISSED + await talker
    for v, s, r in zip(viewers, sinces, replies, strict=True):
        assert not r["gap"] and r["replay_from"] == s + 1
        assert await until_seq(v, room, last) == list(range(s + 1, last + 1))

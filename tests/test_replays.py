"""The ``join since`` replay coalescer's rules, with no socket and no store
(livesrv/realtime/replays.py): one read per room per batch, joiners that arrive during a
read wait for the next one, and each joiner's share of a read is what its own read would
have returned."""

from __future__ import annotations

import asyncio
from typing import Any

from livesrv.realtime.replays import ReplayBatches, Replays, share


def log(first: int, last: int) -> list[dict[str, Any]]:
    return [{"ev": "chat", "seq": s} for s in range(first, last + 1)]


def own_read(events: list[dict[str, Any]], since: int, limit: int) -> list[dict[str, Any]]:
    """What one joiner's own read returns: the newest ``limit`` events above ``since``."""
    above = [ev for ev in events if ev["seq"] > since]
    return above[-limit:]


def test_first_joiner_reads_at_once_and_later_ones_wait_for_the_next_read() -> None:
    rb = ReplayBatches()
    first = rb.want("r", 10)
    assert rb.next_read("r") is first and first.reading
    # a read of r is in flight: these wait, widened to the lowest since
    second = rb.want("r", 30)
    assert rb.want("r", 20) is second and rb.want("r", 25) is second
    assert (second.since, second.joiners, second.reading) == (20, 3, False)
    assert rb.next_read("r") is None
    rb.done(first)
    assert rb.next_read("r") is second and second.reading
    # a joiner now starts the batch after that one
    third = rb.want("r", 5)
    assert third is not second and rb.next_read("r") is None
    rb.done(second)
    assert rb.next_read("r") is third
    rb.done(third)
    assert rb.next_read("r") is None and not rb.busy("r")


def test_rooms_are_independent() -> None:
    rb = ReplayBatches()
    a, b = rb.want("a", 1), rb.want("b", 2)
    assert rb.next_read("a") is a and rb.next_read("b") is b
    assert rb.busy("a") and rb.busy("b")
    rb.done(a)
    assert not rb.busy("a") and rb.busy("b")


def test_done_of_a_stale_batch_does_not_free_the_room() -> None:
    rb = ReplayBatches()
    first = rb.want("r", 1)
    assert rb.next_read("r") is first
    rb.done(first)
    second = rb.want("r", 1)
    assert rb.next_read("r") is second
    rb.done(first)  # again: the room's read in flight is second's
    assert rb.next_read("r") is None and rb.busy("r")


def test_share_is_each_joiners_own_read() -> None:
    limit = 8
    for events in (log(1, 40), log(1, 5), [], log(3, 3) + log(7, 12)):  # with a hole too
        for low in (0, 2, 20, 38):
            shared = own_read(events, low, limit)
            for since in range(low, 45):
                mine, gap = share(shared, since)
                alone = own_read(events, since, limit)
                assert mine == alone
                assert gap == (bool(alone) and alone[0]["seq"] != since + 1)


async def test_one_read_per_batch_and_every_joiner_gets_its_events() -> None:
    events = log(1, 100)
    started: list[int] = []
    release = asyncio.Event()

    async def read(room: str, since: int) -> list[dict[str, Any]]:
        started.append(since)
        await release.wait()
        return own_read(events, since, 64)

    replays = Replays(read)
    first = asyncio.create_task(replays.replay("r", 90))
    await asyncio.sleep(0)
    joiners = [asyncio.create_task(replays.replay("r", s)) for s in range(50, 90)]
    await asyncio.sleep(0)
    assert started == [90]  # the others wait for the read in flight
    release.set()
    got = await asyncio.gather(first, *joiners)
    assert started == [90, 50] and replays.reads == 2 and replays.callers == 41
    for since, (mine, gap) in zip([90, *range(50, 90)], got, strict=True):
        assert [ev["seq"] for ev in mine] == list(range(since + 1, 101)) and not gap


async def test_a_failed_read_fails_its_joiners_and_the_next_batch_still_reads() -> None:
    calls = 0
    gate = asyncio.Event()

    async def read(room: str, since: int) -> list[dict[str, Any]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await gate.wait()
            raise ConnectionError("store away")
        return log(since + 1, since + 3)

    replays = Replays(read)
    failing = asyncio.create_task(replays.replay("r", 1))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(replays.replay("r", 4))
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(failing, waiting, return_exceptions=True)
    assert isinstance(results[0], ConnectionError)
    assert results[1] == (log(5, 7), False)
    assert replays.reads == 2

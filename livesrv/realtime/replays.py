"""Coalesced ``join since`` replays: one room-log read per room per batch of joiners.

When a node with thousands of viewers dies, or a big stream starts, every viewer of a room
reconnects at once with ``join since``. Reading the room log once per joiner would put one
store read per viewer on the same key; instead, per room, at most one replay read is in
flight, and the joiners that arrive meanwhile wait for the next one: ONE read of the widest
range they need (the lowest ``since``), shared by all of them.

Why a joiner never joins a read already in flight: a joiner is a member of the room (its
live events wait in its backlog, see :mod:`.feed`) before it asks for a replay, and a read
that starts after that covers every event the node delivered before it, so replay then
backlog is gap-free. A read that started earlier might not.

Sharing is exact: a read returns the newest ``limit`` events above the batch's ``since``;
the newest ``limit`` above a higher ``since`` are exactly those of them above it
(:func:`share`). :class:`ReplayBatches` holds the rules, sans I/O (tests/test_replays.py);
:class:`Coalescer` runs the reads for the hub: :class:`Replays` the log reads, and another
one the part of the join reply that is the same for every viewer of a room (its pins,
boxes, match, goal: ``services/joining.py``), read once per batch of joiners in the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Events = list[dict[str, Any]]


@dataclass(eq=False)
class Batch:
    """The joiners of one room that one read serves.

    Attributes:
        room: The room.
        since: The lowest ``since`` of its joiners: the read covers every one of them.
        joiners: How many joiners wait for it.
        reading: The read has started: no joiner is added any more.
    """

    room: str
    since: int
    joiners: int = 0
    reading: bool = False


class ReplayBatches:
    """Per room: the batch being read (at most one) and the batch waiting for the next read."""

    def __init__(self) -> None:
        self._waiting: dict[str, Batch] = {}
        self._reading: dict[str, Batch] = {}

    def want(self, room: str, since: int) -> Batch:
        """A joiner of ``room`` needs the events after ``since``: the batch it waits for
        (the room's waiting batch, widened to ``since`` when lower, or a new one)."""
        batch = self._waiting.get(room)
        if batch is None:
            batch = self._waiting[room] = Batch(room, since)
        elif since < batch.since:
            batch.since = since
        batch.joiners += 1
        return batch

    def next_read(self, room: str) -> Batch | None:
        """The batch to read now, or None: a read of ``room`` is in flight (its joiners
        wait for the next one), or nobody waits. The batch returned is reading."""
        if room in self._reading:
            return None
        batch = self._waiting.pop(room, None)
        if batch is None:
            return None
        batch.reading = True
        self._reading[room] = batch
        return batch

    def done(self, batch: Batch) -> None:
        """``batch``'s read ended (with events or an error): the room's next batch may go."""
        if self._reading.get(batch.room) is batch:
            del self._reading[batch.room]

    def busy(self, room: str) -> bool:
        """A read of ``room`` is in flight or joiners wait for one."""
        return room in self._reading or room in self._waiting


def share(events: Events, since: int) -> tuple[Events, bool]:
    """One joiner's part of a batch's read: the events above ``since``.

    Args:
        events: The batch's read: the newest ``limit`` logged events above the batch's
            ``since`` (at most that of this joiner), oldest first.
        since: This joiner's ``since``.

    Returns:
        (events, gap) as :func:`livesrv.services.roomlog.replay` would have returned for
        this joiner alone: gap is True when the events do not start right after ``since``.
    """
    start = 0
    while start < len(events) and events[start]["seq"] <= since:
        start += 1
    mine = events[start:] if start else events
    return mine, bool(mine) and mine[0]["seq"] != since + 1


T = TypeVar("T")


class Coalescer(Generic[T]):
    """``await get(key, since)``: the result of the key's next shared read (at most one in
    flight per key; callers that come meanwhile share the one after it); reads counted."""

    def __init__(self, read: Callable[[str, int], Awaitable[T]]) -> None:
        """Args:
        read: ``read(key, since)``: one store read covering every caller of a batch
            (``since`` is their lowest).
        """
        self._read = read
        self.batches = ReplayBatches()
        self.reads = 0  # store reads made
        self.callers = 0  # callers served by them
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters: dict[Batch, list[asyncio.Future[T]]] = {}

    async def get(self, key: str, since: int = 0) -> T:
        batch = self.batches.want(key, since)
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(batch, []).append(waiter)
        self.callers += 1
        self._start(key)
        return await asyncio.shield(waiter)  # a caller that goes away does not stop it

    def close(self) -> None:
        """Cancel the reads in flight (the node is stopping)."""
        for task in list(self._tasks):
            task.cancel()

    def _start(self, key: str) -> None:
        batch = self.batches.next_read(key)
        if batch is not None:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: Batch) -> None:
        waiters = self._waiters.pop(batch, [])
        try:
            self.reads += 1
            value = await self._read(batch.room, batch.since)
        except BaseException as exc:  # every caller of the batch gets the error
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
                    waiter.add_done_callback(_consume)
            if not isinstance(exc, Exception):
                raise
        else:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(value)
        finally:
            self.batches.done(batch)
            self._start(batch.room)


class Replays(Coalescer[Events]):
    """The ``join since`` replays of the rooms of a node: one log read per room per batch."""

    async def replay(self, room: str, since: int) -> tuple[Events, bool]:
        """The events after ``since`` for one joiner (see :func:`share`), from the room's
        next shared read."""
        return share(await self.get(room, since), since)


def _consume(fut: asyncio.Future[Any]) -> None:
    """Mark a failed waiter's error retrieved (its joiner may have gone away)."""
    if not fut.cancelled():
        fut.exception()

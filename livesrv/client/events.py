"""Event delivery state of the client: joined rooms with the last seq seen, and the bounded
event buffer that ``Client.events()`` reads (plain classes, no socket)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

Event = dict[str, Any]
Match = Callable[[Event], bool]

GAP = "gap"
"""Name of the special event the client adds when a ``join since`` reply says ``gap: true``:
``{"ev": "gap", "room", "since", "replay_from", "seq_now"}``. The events with seqs from
``since + 1`` to ``replay_from - 1`` (or to ``seq_now`` when ``replay_from`` is null) were not
replayed; page them with ``history`` (docs/protocol.md, Bounded replay)."""

REJOIN_FAILED = "rejoin_failed"
"""Name of the special event the client adds when re-joining a room after a reconnect
failed with an error other than ``unavailable``: ``{"ev", "room", "code", "message"}``. The
room is no longer followed."""


class Rooms:
    """The rooms this client joined and, for each, the last logged seq delivered.

    Args:
        dedupe: Drop a logged event whose seq is not above the last one delivered for its
            room (the server never sends one; this guards the user anyway).
    """

    def __init__(self, dedupe: bool = True) -> None:
        self.dedupe = dedupe
        self.last: dict[str, int] = {}

    def joined(self, args: dict[str, Any], reply: Event) -> Event | None:
        """Record a successful ``join``; returns the gap event to deliver, if any."""
        room = args.get("room")
        if not isinstance(room, str):
            return None
        since = args.get("since")
        if isinstance(since, int) and not isinstance(since, bool):
            # the replay (seqs above ``since``) follows the reply: start from ``since`` so
            # a connection lost before the replay arrives asks for it again
            self.last[room] = since
            if reply.get("gap"):
                return {
                    "ev": GAP,
                    "room": room,
                    "since": since,
                    "replay_from": reply.get("replay_from"),
                    "seq_now": reply.get("seq"),
                }
            return None
        seq = reply.get("seq")
        self.last[room] = seq if isinstance(seq, int) else 0
        return None

    def left(self, room: Any) -> None:
        """Forget a room after a successful ``leave`` (or a failed re-join)."""
        self.last.pop(room, None)

    def accept(self, ev: Event) -> bool:
        """Track a received event's seq; False when it must not be delivered (a repeat)."""
        seq = ev.get("seq")
        if seq is None:
            return True
        room = ev.get("room")
        last = self.last.get(room) if isinstance(room, str) else None
        if last is None or not isinstance(seq, int):
            return True
        if seq <= last:
            return not self.dedupe
        self.last[room] = seq  # type: ignore[index]
        return True

    def rejoins(self) -> list[tuple[str, int]]:
        """``(room, since)`` for every followed room, to join again after a reconnect."""
        return list(self.last.items())


def matcher(room: str | None, names: str | Iterable[str] | None) -> Match:
    """A predicate for events of ``room`` (any when None) named in ``names`` (any when None)."""
    wanted = None if names is None else ({names} if isinstance(names, str) else set(names))

    def match(ev: Event) -> bool:
        if room is not None and ev.get("room") != room:
            return False
        return wanted is None or ev.get("ev") in wanted

    return match


class EventBuffer:
    """A bounded buffer of received events, oldest first.

    Each event goes to one reader: :meth:`take` removes the oldest event its predicate
    matches and leaves the others for readers with other filters. When the buffer is full
    the oldest event is dropped and :attr:`dropped` counts it.

    Args:
        maxlen: The most events held.
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self.events: deque[Event] = deque(maxlen=maxlen)
        self.dropped = 0
        self.closed = False
        self._waiters: list[asyncio.Future[None]] = []

    def put(self, ev: Event) -> None:
        """Add an event and wake the readers."""
        if len(self.events) == self.events.maxlen:
            self.dropped += 1
        self.events.append(ev)
        self._wake()

    def take(self, match: Match | None = None) -> Event | None:
        """Remove and return the oldest event ``match`` accepts, or None."""
        events = self.events
        if match is None:
            return events.popleft() if events else None
        for i, ev in enumerate(events):
            if match(ev):
                del events[i]
                return ev
        return None

    async def wait(self) -> None:
        """Return when an event was added or the buffer was closed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)

    def close(self) -> None:
        """No more events will come; readers end once they took what is left."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

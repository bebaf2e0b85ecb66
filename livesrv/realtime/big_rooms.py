"""The big rooms' flush: a room with ``big_room`` members or more on this node is flushed
here, not at the hub's tick.

One slice of a big room's members gets its batch every :data:`SLICE_MS` (the sans-I/O part
is :func:`.feed.flush_slice`), so each member gets a batch every ``big_room_flush_ms`` and
the room's writes are spread over that time instead of all of them at one tick. A room that
is no longer big gets everything it waits for (:func:`.feed.drain`), and the ticks flush it
again. The hub holds one :class:`BigRoomFlush` and runs it as its ``hub-spread`` task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..services import modrules
from ..settings import Settings
from . import ticks
from .feed import RoomFeed, drain, flush_slice

log = logging.getLogger(__name__)

SLICE_MS = 10  # a big room's flush: one slice of its members this often


class BigRoomFlush:
    """The spread flush of a hub's big rooms.

    Args:
        settings: ``big_room`` (members on this node from which a room is spread) and
            ``big_room_flush_ms`` (how often each member gets its batch).
        rooms: The hub's room feeds, by name (the hub's own dict: rooms come and go).
        eject: Removes the connections of users banned from a room (the hub's).
    """

    def __init__(
        self,
        settings: Settings,
        rooms: dict[str, RoomFeed],
        eject: Callable[[RoomFeed, set[str]], None],
    ) -> None:
        self._settings = settings
        self._rooms = rooms
        self._eject = eject
        self.delivered = 0  # events delivered to sockets by this flush (for metrics)

    async def run(self, stopped: Callable[[], bool]) -> None:
        """Flush one slice of every big room's members every ``SLICE_MS`` (on a fixed
        schedule, :func:`.ticks.every`) until ``stopped()``: each member gets its batch
        every ``big_room_flush_ms``."""
        flush_ms = self._settings.big_room_flush_ms
        slices = max(1, round(flush_ms / SLICE_MS))
        turn = 0

        async def flush_next() -> None:
            nonlocal turn
            turn += 1
            try:
                self.flush_slices(turn, slices)
            except Exception:
                log.exception("hub flush failed; going on")

        await ticks.every(flush_ms / slices / 1000, flush_next, stopped)

    def flush_slices(self, turn: int, slices: int) -> None:
        """One slice of every big room's members gets what it waits for; a room that is
        no longer big gets everything it waits for, and the ticks flush it again."""
        big = self._settings.big_room
        for rc in list(self._rooms.values()):
            if len(rc.members) < big:
                if rc.queues is not None:
                    self.delivered += drain(rc)
                continue
            delivered, fresh = flush_slice(rc, turn, slices)
            self.delivered += delivered
            banned = modrules.banned_in(fresh) if fresh else None  # -- moderation --
            if banned:
                self.delivered += drain(rc)  # the banned get the ban before they go
                self._eject(rc, banned)

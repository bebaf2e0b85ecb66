"""A room's event log read back: the replay after a seq, history pages, tombstones.

The log is written by :func:`livesrv.services.rooms.log_event` (``room_event.lua``); a
``join since`` replays its newest events and ``history`` pages the older ones, both
showing a chat line a moderator deleted as a tombstone.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import BadRequest
from ..store.facade import Backend, store_errors
from ..store.keys import RoomKeys
from . import modrules


async def replay(
    b: Backend, room: str, since: int, limit: int, upto: int | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """The newest ``limit`` logged events with a seq above ``since`` (and below ``upto``),
    oldest first; one bounded read (XREVRANGE with COUNT).

    Returns:
        (events, gap): gap is True when the events do not start right after ``since``:
        there were more than ``limit``, or the log no longer holds the oldest ones.
    """
    top = "+" if upto is None else f"{upto - 1}-0"
    if upto is not None and upto - 1 <= since:
        return [], False
    async with store_errors():
        rows = await b.redis.xrevrange(
            RoomKeys(room).log, max=top, min=f"{since + 1}-0", count=limit
        )
    events = [orjson.loads(fields["e"]) for _, fields in reversed(rows)]
    gap = bool(events) and events[0]["seq"] != since + 1
    return await hide_deleted(b, room, events), gap


async def history(b: Backend, room: str, before: int, limit: int | None) -> dict[str, Any]:
    """One page of a room's logged events older than seq ``before``, oldest first; at most
    ``limit`` (1 to ``replay_limit``; None: ``replay_limit``).

    Raises:
        BadRequest: ``limit`` out of range.

    Returns:
        ``{"events": [...], "next": SEQ or None}``: ``next`` is the ``before`` of the page
        after this one (older events), None when the log holds nothing older.
    """
    most = b.settings.replay_limit
    limit = most if limit is None else limit
    if not 1 <= limit <= most:
        raise BadRequest(f"limit must be between 1 and {most}")
    if before <= 1:
        return {"events": [], "next": None}
    async with store_errors():
        rows = await b.redis.xrevrange(
            RoomKeys(room).log, max=f"{before - 1}-0", min="-", count=limit + 1
        )
    more = len(rows) > limit
    events = [orjson.loads(fields["e"]) for _, fields in reversed(rows[:limit])]
    first = events[0]["seq"] if events else None
    events = await hide_deleted(b, room, events)
    return {"events": events, "next": first if more and first and first > 1 else None}


# -- moderation --


async def hide_deleted(b: Backend, room: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Logged events as replay and history show them: a chat line a moderator deleted is a
    tombstone (``modrules.hide_deleted``). One read, only when the events hold chat lines."""
    seqs = modrules.chats_in(events)
    if not seqs:
        return events
    async with store_errors():
        scores = await b.redis.zmscore(RoomKeys(room).deleted, seqs)
    deleted = {seq for seq, score in zip(seqs, scores, strict=True) if score is not None}
    return modrules.hide_deleted(events, deleted)


# -- end moderation --

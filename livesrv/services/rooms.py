"""Rooms in the store: open and close, membership counts, the event log and the leaderboard.

The live fan-out of what is logged here is :mod:`livesrv.realtime.hub`; the log is read
back (replay, history) by :mod:`livesrv.services.roomlog`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import Forbidden, NotFound, NotLive
from ..store.facade import Backend, now_ms, store_errors
from ..store.keys import LIVE_INDEX, RoomKeys
from ..wire.tokens import Identity
from . import live_rules
from .limits import claim_live_room, release_live_room
from .paging import adopt_legacy, decode_cursor, encode_cursor, index_add, index_remove, names_after

TOP_N = 10


@dataclass
class RoomInfo:
    """What a node knows of a room: enough to check gifts and chat without a round trip."""

    room: str
    creator: str | None
    title: str
    live: bool
    seq: int
    session: int
    subscribers_only: bool
    pinned: str | None
    likes: int
    match: str | None = None  # the running LIVE match (services/match.py)
    hype: bool = False  # a hype train is running (services/goals.py)

    @classmethod
    def from_meta(cls, room: str, meta: dict[str, str]) -> RoomInfo:
        return cls(
            room=room,
            creator=meta.get("creator"),
            title=meta.get("title", ""),
            live=meta.get("live") == "1",
            seq=int(meta.get("seq", 0)),
            session=int(meta.get("session", 0)),
            subscribers_only=meta.get("subs_only") == "1",
            pinned=meta.get("pinned") or None,
            likes=int(meta.get("likes", 0)),
            match=meta.get("match") or None,
            hype=meta.get("hype") == "1",
        )

    def apply(self, ev: dict[str, Any]) -> None:
        """Follow a logged event of the room, as ``room_state.lua`` and ``room_event.lua``
        changed the stored room (the one room state machine; this is its cached view)."""
        name = ev["ev"]
        if name == "room_open":
            self.live, self.title, self.creator = True, ev["title"], ev["creator"]
            self.session += 1
            self.likes = 0
        elif name == "room_closed":
            self.live = False
        elif name == "pinned":
            self.pinned = ev.get("product")
        elif name in ("match_start", "match_end"):  # -- live match, hype train --
            self.match = ev["match"] if name == "match_start" else None
        elif name in ("hype_start", "hype_end"):
            self.hype = name == "hype_start"
        self.seq = max(self.seq, ev["seq"])

    def apply_unlogged(self, ev: dict[str, Any]) -> None:
        """Follow an unlogged event: the like total, the chat mode."""
        if ev["ev"] == "like":
            self.likes = max(self.likes, ev["total"])
        elif ev["ev"] == "chat_mode":
            self.subscribers_only = bool(ev["subscribers_only"])


def event(name: str, room: str, **fields: Any) -> dict[str, Any]:
    """A server event, stamped with the server time in ms (``ts``)."""
    return {"ev": name, "room": room, **fields, "ts": now_ms()}


async def open_room(b: Backend, who: Identity, room: str, title: str) -> dict[str, Any]:
    """Go live. Reopening a closed room starts a new live session (fresh leaderboard).

    Raises:
        Forbidden: Not a creator, or the room belongs to another creator.
        LimitExceeded: The creator has ``max_live_rooms_per_creator`` rooms live already.
    """
    if not who.is_creator:
        raise Forbidden("only creators can open rooms")
    await claim_live_room(b, who.user, room)
    ev = event("room_open", room, title=title, creator=who.user)
    status, seq, session, _ = await _room_state(b, "open", who, room, title, ev)
    if status == "forbidden":
        await release_live_room(b, who.user, room)
        raise Forbidden("this room belongs to another creator")
    await index_add(b, LIVE_INDEX, room)
    return {"room": room, "seq": seq, "session": session}


async def _room_state(
    b: Backend, action: str, who: Identity, room: str, title: str, ev: dict[str, Any]
) -> tuple[str, int, int, str]:
    """Run ``room_state.lua``: open or close the room and log its event, atomically.

    Returns:
        (status, seq, session, the room's creator or "").
    """
    k = RoomKeys(room)
    fence, generation = b.fence(room)
    status, seq, session, creator = await b.run(
        "room_state",
        [k.meta, k.log, k.top],
        [
            action,
            who.user,
            "1" if who.is_admin else "0",
            title,
            orjson.dumps(ev).decode(),
            b.settings.log_maxlen,
            k.channel,
            fence,
        ],
    )
    b.fenced(room, generation)
    return status, int(seq), int(session), creator


async def close_room(b: Backend, who: Identity, room: str) -> dict[str, Any]:
    """End the live session.

    Raises:
        NotFound: No such room. Forbidden: Not its creator or an admin. NotLive: Not live.
    """
    ev = event("room_closed", room)
    status, seq, _, creator = await _room_state(b, "close", who, room, "", ev)
    if status == "not_found":
        raise NotFound(f"no room {room!r}")
    if status == "forbidden":
        raise Forbidden("only the room's creator or an admin can close it")
    await release_live_room(b, creator, room)  # closed now, or already (a stale claim)
    if status == "not_live":
        raise NotLive()
    await index_remove(b, LIVE_INDEX, room)  # also from the keys of older versions
    return {"seq": seq}


def require_live(room: RoomInfo) -> RoomInfo:
    """The room, if it is live.

    Raises:
        NotLive: It is not.
    """
    if not room.live:
        raise NotLive()
    return room


async def info(b: Backend, room: str) -> RoomInfo | None:
    async with store_errors():
        meta = await b.redis.hgetall(RoomKeys(room).meta)
    return RoomInfo.from_meta(room, meta) if meta else None


async def exit_room(b: Backend, room: str, user: str) -> None:
    """Count a viewer out: call it when the user's last session in the room on this node
    leaves (another node that still has the user adds it back at its next refresh)."""
    async with store_errors():
        await b.redis.zrem(RoomKeys(room).presence, user)


def seen_since(b: Backend) -> str:
    """The ZCOUNT lower bound of the entries a viewer count counts (this node's clock)."""
    return f"({now_ms() - _ttl_ms(b)}"


def _ttl_ms(b: Backend) -> int:
    return int(b.settings.presence_ttl * 1000)


async def refresh_presence(b: Backend, present: dict[str, set[str]]) -> dict[str, int]:
    """Mark this node's viewers as still there, one ``room_presence.lua`` call per room
    (the calls go out pipelined), and trim the entries no node refreshed within the ttl.

    Args:
        b: The store.
        present: Room -> the users this node has in it.

    Returns:
        Room -> its viewer count on every node (rooms that no longer exist are left out).
    """
    names = list(present)
    ttl = _ttl_ms(b)
    counts = await asyncio.gather(
        *(
            b.run("room_presence", [RoomKeys(n).meta, RoomKeys(n).presence], [ttl, *present[n]])
            for n in names
        )
    )
    return {n: int(c) for n, c in zip(names, counts, strict=True) if int(c) >= 0}


async def publish_counters(
    b: Backend, likes: dict[str, int], viewers: list[str], tops: list[str]
) -> dict[str, list[list[Any]]]:
    """A node's counters of one tick, for rooms whose keys share a master (two pipelined
    round trips however many rooms): add its likes to each room's total and publish the
    totals (unlogged ``like``), publish the viewer counts (``viewers``), and read the
    leaderboards of ``tops``.

    Returns:
        The leaderboard of each room in ``tops``.
    """
    plan = [("like", r) for r in likes] + [("viewers", r) for r in viewers]
    plan += [("top", r) for r in tops]
    reads = b.redis.pipeline(transaction=False)
    for kind, room in plan:
        k = RoomKeys(room)
        if kind == "like":
            reads.hincrby(k.meta, "likes", likes[room])
        elif kind == "viewers":
            reads.zcount(k.presence, seen_since(b), "+inf")
        else:
            reads.zrevrange(k.top, 0, TOP_N - 1, withscores=True)
    values = await reads.execute() if plan else []
    out: dict[str, list[list[Any]]] = {}
    publish = b.redis.pipeline(transaction=False)
    for (kind, room), value in zip(plan, values, strict=True):
        if kind == "top":
            out[room] = top_list(value)
        else:
            field = "total" if kind == "like" else "count"
            ev = event(kind, room, **{field: int(value)})
            publish.spublish(RoomKeys(room).channel, orjson.dumps(ev))
    if len(publish):
        await publish.execute()
    return out


def top_list(rows: list[tuple[str, float]]) -> list[list[Any]]:
    return [[user, int(score)] for user, score in rows]


async def log_event(
    b: Backend,
    room: str,
    ev: dict[str, Any],
    *,
    evid: str = "",
    top_user: str = "",
    top_coins: int = 0,
    require_live: bool = False,
    meta: tuple[str, str] = ("", ""),
    exp: int = 0,
) -> int:
    """Append a logged event to the room (next seq) and publish it; idempotent by ``evid``.

    ``exp`` is the expiry (unix ms) of the key generation ``evid`` belongs to: the event id
    record lives exactly that long, and after it the event is never logged (0: 2 days).

    Returns:
        The event's seq (the first one when ``evid`` was logged before); 0 when the
        generation of ``evid`` is over and nothing was logged.

    Raises:
        NotLive: ``require_live`` and the room is not live.
    """
    keys, args, generation = event_step(
        b,
        room,
        ev,
        evid=evid,
        top_user=top_user,
        top_coins=top_coins,
        require_live=require_live,
        meta=meta,
        exp=exp,
    )
    seq, *rest = await b.run("room_event", keys, args)
    return event_outcome(b, room, evid, generation, seq, rest)


def event_step(
    b: Backend,
    room: str,
    ev: dict[str, Any],
    *,
    evid: str = "",
    top_user: str = "",
    top_coins: int = 0,
    require_live: bool = False,
    meta: tuple[str, str] = ("", ""),
    exp: int = 0,
) -> tuple[list[str], list[Any], int]:
    """The keys and arguments of ``room_event.lua`` for :func:`log_event` (also the second
    step of ``gift.lua``), and the fence generation to give :func:`event_outcome`."""
    k = RoomKeys(room)
    evid = evid or ""
    fence, generation = b.fence(room)
    # -- live match, goal, hype train: a gift or subscription is counted in the same step
    counts = live_rules.counted(ev) != ""
    mech = live_rules.event_args(b.settings, room, ev, b.settings.match_booster_gift)
    keys = [k.meta, k.log, k.event_id(evid), k.top, *(k.mechanics if counts else [])]
    args = [
        evid,
        orjson.dumps(ev).decode(),
        b.settings.log_maxlen,
        top_user,
        top_coins,
        "1" if require_live else "0",
        k.channel,
        meta[0],
        meta[1],
        exp,
        fence,
        *(mech if counts else []),
    ]
    return keys, args, generation


def event_outcome(
    b: Backend, room: str, evid: str, generation: int, seq: int, rest: list[Any]
) -> int:
    """What :func:`log_event` returns for ``room_event.lua``'s reply, or the error it raises."""
    b.fenced(room, generation)
    if seq == -2:
        return 0
    if seq < 0:
        raise NotLive()
    if evid:
        b.logged.add(evid)
    if len(rest) > 1 and rest[1]:  # -- live goal: this event reached it --
        b.live("goal_reached", str(rest[1]))
    return int(seq)


async def live_rooms(b: Backend, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of the live rooms, by name.

    Returns:
        ``{"rooms": [{room, title, creator, viewers}], "next": cursor or None}``.

    Raises:
        BadRequest: A cursor this listing did not give out.
    """
    pos = decode_cursor("rooms", cursor, str)
    await adopt_legacy(b, LIVE_INDEX)
    names, more = await names_after(b, LIVE_INDEX, pos[0] if pos else None, limit)
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        for name in names:
            pipe.hmget(RoomKeys(name).meta, "title", "creator", "live")
            pipe.zcount(RoomKeys(name).presence, seen_since(b), "+inf")
        rows = await pipe.execute() if names else []
    out = []
    for i, name in enumerate(names):
        (title, creator, live), viewers = rows[2 * i], rows[2 * i + 1]
        if live == "1":
            out.append({"room": name, "title": title, "creator": creator, "viewers": viewers})
    return {"rooms": out, "next": encode_cursor("rooms", names[-1]) if more else None}

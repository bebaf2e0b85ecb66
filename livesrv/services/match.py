"""LIVE matches (battles) between two creators' rooms (issue 13 item 1).

A match is a record in its own slot (``match.lua``: invited -> running -> ended, the end
decided once) and one side per room in the room's slot (``match_side.lua``), which
``room_event.lua`` counts each gift into in the same step that logs the gift, so a
retried or re-logged gift counts once. The clock is the store's: a gift counts when its
event is logged between the start and the end. Whichever node notices the end first (its
tick, a room closing, or the settlement upkeep) finishes the match; every other attempt
gets the same stored result, and the ``match_end`` events are logged once per room (by
event id). The rules are in :mod:`.live_rules`.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from ..errors import Forbidden, NotFound, NotLive
from ..store.facade import Backend, now_ms, store_errors
from ..store.keys import MATCHES_DUE, RoomKeys, match_key
from ..wire.tokens import Identity
from . import live_rules, rooms
from .rooms import event, log_event

TOP_SUPPORTERS = 3


async def _match(b: Backend, action: str, match: str, *args: Any) -> list[Any]:
    return list(await b.run("match", [match_key(match)], [action, *args]))


async def _side(b: Backend, room: str, action: str, match: str, *args: Any) -> Any:
    k = RoomKeys(room)
    return await b.run("match_side", [k.match, k.match_supporters, k.meta], [action, match, *args])


async def _record(b: Backend, match: str) -> dict[str, str]:
    async with store_errors():
        m: dict[str, str] = await b.redis.hgetall(match_key(match))
    if not m:
        raise NotFound(f"no match {match!r}")
    return m


async def _running_side(b: Backend, room: str) -> dict[str, str] | None:
    async with store_errors():
        side: dict[str, str] = await b.redis.hgetall(RoomKeys(room).match)
    if not side or side.get("ended") == "1" or now_ms() >= int(side.get("ends", 0)):
        return None
    return side


async def invite(b: Backend, who: Identity, room: str, opponent: str) -> dict[str, Any]:
    """The creator of live ``room`` invites the creator of live ``opponent`` to a match.

    Raises:
        Forbidden: Not the room's creator, the opponent is yourself, or a room is in a
            match already. NotFound: No such room. NotLive: A room is not live.
    """
    mine, theirs = await rooms.info(b, room), await rooms.info(b, opponent)
    if mine is None or theirs is None:
        raise NotFound(f"no room {room if mine is None else opponent!r}")
    if mine.creator != who.user:
        raise Forbidden("only the room's creator can invite to a match")
    if theirs.creator in (None, who.user) or room == opponent:
        raise Forbidden("a match is between two creators' rooms")
    if not mine.live or not theirs.live:
        raise NotLive()
    for r in (room, opponent):
        if await _running_side(b, r) is not None:
            raise Forbidden(f"room {r!r} is in a match already")
    mid = uuid.uuid4().hex[:16]
    s = b.settings
    ttl = live_rules.ms(s.match_invite_ttl)
    duration = live_rules.ms(s.match_duration)
    _, expires = await _match(
        b,
        "invite",
        mid,
        room,
        opponent,
        who.user,
        theirs.creator,
        ttl,
        duration,
        ttl + duration + 86_400_000,
    )
    ev = event("match_invite", opponent, match=mid, from_room=room, expires=int(expires))
    ev["from"] = who.user
    await log_event(b, opponent, ev, evid=f"m:{mid}:invite")
    return {"match": mid, "expires": int(expires)}


async def decline(b: Backend, who: Identity, mid: str) -> dict[str, Any]:
    """The invited creator declines (an expired invitation is declined already).

    Raises:
        NotFound: No such match. Forbidden: Not the invited creator.
    """
    m = await _record(b, mid)
    if who.user != m["cb"]:
        raise Forbidden("only the invited creator can decline")
    (state,) = (await _match(b, "decline", mid))[:1]
    if state == "declined":
        await log_event(b, m["a"], event("match_declined", m["a"], match=mid), evid=f"m:{mid}:no")
    return {"match": mid, "state": state}


async def accept(b: Backend, who: Identity, mid: str) -> dict[str, Any]:
    """The invited creator accepts: the match starts in both rooms (a retry answers the
    same start).

    Raises:
        NotFound: No such match, or the invitation expired or was declined.
        Forbidden: Not the invited creator, or a room is in another match now.
        NotLive: A room is not live any more.
    """
    m = await _record(b, mid)
    if who.user != m["cb"]:
        raise Forbidden("only the invited creator can accept")
    reply = await _match(b, "accept", mid)
    if reply[0] != "running":
        raise NotFound(f"the invitation is {reply[0]}")
    starts, ends = int(reply[1]), int(reply[2])
    a, bb = m["a"], m["b"]
    claimed: list[str] = []
    for room, other in ((a, bb), (bb, a)):
        status = await _side(b, room, "claim", mid, other, starts, ends)
        if status != "ok":
            for r in claimed:
                await _side(b, r, "release", mid)
            await _match(b, "cancel", mid)
            if status == "not_live":
                raise NotLive()
            raise Forbidden(f"room {room!r} is in another match")
        claimed.append(room)
    if reply[3:] == ["fresh"]:
        b.live("match_started")
    async with store_errors():
        await b.redis.zadd(MATCHES_DUE, {mid: ends})
    s = b.settings
    for room in (a, bb):
        ev = event(
            "match_start",
            room,
            match=mid,
            rooms=[a, bb],
            creators=[m["ca"], m["cb"]],
            starts=starts,
            ends=ends,
            booster=s.match_booster_gift,
            boost_ms=live_rules.ms(s.match_boost_seconds),
        )
        await log_event(b, room, ev, evid=f"m:{mid}:start", meta=("match", mid))
    return {"match": mid, "rooms": [a, bb], "starts": starts, "ends": ends}


async def finish(b: Backend, mid: str, forfeit: str | None = None) -> dict[str, Any] | None:
    """End a running match (``forfeit``: the room whose creator closed it loses), or
    repeat the end of an ended one: the result stored first wins, and each room logs
    ``match_end`` once. None when the match is not running or ended."""
    return (await _finish(b, mid, forfeit))[0]


async def end_now(b: Backend, room: str) -> dict[str, Any]:
    """An admin ends the room's running match now (reason ``admin``; the scores decide).

    Returns:
        The match's result, to the one call that ended it.

    Raises:
        NotFound: The room has no running match (none, or it ended, by this call's race
            with another end too).
    """
    side = await _running_side(b, room)
    if side is None:
        raise NotFound(f"room {room!r} has no running match")
    stored, fresh = await _finish(b, side["id"], None, "admin")
    if stored is None or not fresh:
        raise NotFound(f"room {room!r} has no running match (it ended)")
    return stored


async def _finish(
    b: Backend, mid: str, forfeit: str | None, reason: str | None = None
) -> tuple[dict[str, Any] | None, bool]:
    """:func:`finish`, and whether this call is the one whose result was stored."""
    fresh = False
    async with store_errors():
        m: dict[str, str] = await b.redis.hgetall(match_key(mid))
    state = m.get("state")
    if state == "running":
        scores: dict[str, int] = {}
        top: dict[str, list[list[Any]]] = {}
        for room in (m["a"], m["b"]):
            score, flat = await _side(b, room, "freeze", mid, TOP_SUPPORTERS)
            scores[room] = max(int(score), 0)
            top[room] = [[u, int(float(p))] for u, p in zip(flat[::2], flat[1::2], strict=True)]
        win = live_rules.winner(scores, forfeit)
        result = {
            "match": mid,
            "scores": scores,
            "winner": win,
            "draw": win is None,
            "reason": reason or ("closed" if forfeit in scores else "time"),
            "top": top,
        }
        reply = await _match(b, "finish", mid, orjson.dumps(result).decode())
        if reply[0] not in ("fresh", "dup"):
            return None, False
        stored: dict[str, Any] = orjson.loads(reply[1])
        if reply[0] == "fresh":
            fresh = True
            b.live("match_ended", str(stored["reason"]))
    elif state == "ended":
        stored = orjson.loads(m["result"])
    else:
        return None, False
    for room in (m["a"], m["b"]):
        ev = event("match_end", room, **stored)
        await log_event(b, room, ev, evid=f"m:{mid}:end", meta=("match", ""))
    async with store_errors():
        await b.redis.zrem(MATCHES_DUE, mid)
    return stored, fresh


async def room_closed(b: Backend, room: str) -> None:
    """A creator closed ``room``: its match (if any) ends and the other side wins."""
    async with store_errors():
        mid = await b.redis.hget(RoomKeys(room).match, "id")
    if mid:
        await finish(b, mid, forfeit=room)


async def finish_due(b: Backend) -> int:
    """End the matches whose timer ran out (the settlement upkeep: no node ticked them)."""
    async with store_errors():
        due = await b.redis.zrangebyscore(MATCHES_DUE, "-inf", now_ms(), start=0, num=100)
    for mid in due:
        await finish(b, mid)
    return len(due)


async def view(b: Backend, room: str) -> dict[str, Any] | None:
    """The room's running match as ``join`` returns it: scores, end, time left, boosts."""
    side = await _running_side(b, room)
    if side is None:
        return None
    other = side["other"]
    async with store_errors():
        theirs: dict[str, str] = await b.redis.hgetall(RoomKeys(other).match)
    return _score_fields(side["id"], room, side, other, theirs)


def _score_fields(
    mid: str, room: str, side: dict[str, str], other: str, theirs: dict[str, str]
) -> dict[str, Any]:
    ends = int(side.get("ends", 0))
    mine_ok = theirs.get("id") == mid
    other_score = int(theirs.get("score", 0)) if mine_ok else 0
    other_boost = int(theirs.get("boost", 0)) if mine_ok else 0
    return {
        "match": mid,
        "scores": {room: int(side.get("score", 0)), other: other_score},
        "boost": {room: int(side.get("boost", 0)), other: other_boost},
        "ends": ends,
        "left_ms": max(0, ends - now_ms()),
    }


class MatchTicker:
    """A node's side of running matches, at each hub tick: the coalesced ``match_score``
    of each room it has members in (sent when it changes), the ``match_final`` mark, and
    the end once the timer ran out or a room stopped being live."""

    def __init__(self, b: Backend) -> None:
        self.b = b
        self.last: dict[str, tuple[Any, ...]] = {}
        self.final: set[tuple[str, str]] = set()

    async def tick(self, rooms_in_match: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """``rooms_in_match``: (room, the list its next batch is taken from)."""
        names = [r for r, _ in rooms_in_match]
        for gone in set(self.last) - set(names):
            del self.last[gone]
        self.final = {f for f in self.final if f[0] in names}
        if not names:
            return
        async with store_errors():
            pipe = self.b.redis.pipeline(transaction=False)
            for r in names:
                pipe.hgetall(RoomKeys(r).match)
                pipe.hget(RoomKeys(r).meta, "live")
            first = await pipe.execute()
            sides = first[::2]
            pipe = self.b.redis.pipeline(transaction=False)
            for side in sides:
                other = side.get("other", names[0])
                pipe.hgetall(RoomKeys(other).match)
                pipe.hget(RoomKeys(other).meta, "live")
            second = await pipe.execute()
        now = now_ms()
        final_ms = live_rules.ms(self.b.settings.match_final_seconds)
        for i, (room, pending) in enumerate(rooms_in_match):
            side, live = sides[i], first[2 * i + 1]
            theirs, their_live = second[2 * i], second[2 * i + 1]
            mid = side.get("id")
            if not mid:
                continue
            ends = int(side.get("ends", 0))
            if live != "1" or (theirs.get("id") == mid and their_live != "1"):
                await finish(self.b, mid, forfeit=room if live != "1" else side["other"])
                continue
            if side.get("ended") == "1" or now >= ends:
                await finish(self.b, mid)
                continue
            if now >= ends - final_ms and (room, mid) not in self.final:
                ev = event("match_final", room, match=mid, ends=ends)
                await log_event(self.b, room, ev, evid=f"m:{mid}:final")
                self.final.add((room, mid))
            fields = _score_fields(mid, room, side, side["other"], theirs)
            mark = (mid, tuple(fields["scores"].values()), tuple(fields["boost"].values()))
            if self.last.get(room) != mark:
                self.last[room] = mark
                pending.append(event("match_score", room, **fields))

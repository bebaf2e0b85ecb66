"""Bounded per-user state in the store: how many rooms a creator has live at once.

A creator's live rooms are counted in a sorted set in the creator's shard slot
(``ls:{sNN}:onair:CREATOR``, room -> ms of its claim), by ``live_claim.lua``. A room is
claimed there before ``room_state.lua`` opens it in the room's slot, and released after it
closes (or when the open is refused): two single-slot steps, like every cross-slot move.
The claim is atomic, so concurrent opens never pass the cap. A claim left behind by a crash
between the two steps (or an open that failed) names a room that is not live; once it is
older than :data:`STALE_CLAIM_MS` it is pruned the next time the creator is at the cap.
"""

from __future__ import annotations

from ..errors import LimitExceeded
from ..store.facade import Backend, now_ms, store_errors
from ..store.keys import RoomKeys

STALE_CLAIM_MS = 30_000


async def _live_claim(b: Backend, action: str, creator: str, room: str, arg: int = 0) -> bool:
    key = b.user(creator).live_rooms
    return bool(await b.run("live_claim", [key], [action, room, arg, now_ms()]))


async def claim_live_room(b: Backend, creator: str, room: str) -> None:
    """Count ``room`` as one of ``creator``'s live rooms (again, if it already was).

    Raises:
        LimitExceeded: The creator already has ``max_live_rooms_per_creator`` live rooms.
    """
    cap = b.settings.max_live_rooms_per_creator
    if await _live_claim(b, "claim", creator, room, cap):
        return
    if await _prune(b, creator) and await _live_claim(b, "claim", creator, room, cap):
        return
    raise LimitExceeded(f"a creator can have at most {cap} live rooms; close one first")


async def release_live_room(b: Backend, creator: str, room: str) -> None:
    """Stop counting ``room`` (it closed, or it was never opened)."""
    await _live_claim(b, "release", creator, room)


async def _prune(b: Backend, creator: str) -> bool:
    """Release old claims of rooms that are not live (or not the creator's). Returns whether
    any was released. A claim renewed meanwhile (its ms changed) is kept."""
    key = b.user(creator).live_rooms
    async with store_errors():
        claims = await b.redis.zrangebyscore(
            key, "-inf", now_ms() - STALE_CLAIM_MS, withscores=True
        )
        pipe = b.redis.pipeline(transaction=False)
        for room, _ in claims:
            pipe.hmget(RoomKeys(room).meta, "live", "creator")
        states = await pipe.execute() if claims else []
    pruned = False
    for (room, at), (live, owner) in zip(claims, states, strict=True):
        if live != "1" or owner != creator:
            pruned = await _live_claim(b, "prune", creator, room, int(at)) or pruned
    return pruned

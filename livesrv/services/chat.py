"""Chat in a LIVE room: who may write, the subscriber badge, subscriber-only mode."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from ..errors import Forbidden, NotLive
from ..store.facade import Backend, store_errors
from ..store.keys import RoomKeys
from ..wire.tokens import Identity
from . import moderation, sub_tiers
from .rooms import RoomInfo, event, log_event


async def send(b: Backend, user: str, room: RoomInfo, text: str) -> int:
    """A member's chat line, logged in the room with the sender's badge.

    Returns:
        The event's seq.

    Raises:
        NotLive: The room is not live.
        Forbidden: Subscriber-only chat and ``user`` is not a subscriber (the creator is).
        Banned, Muted, SlowMode: Moderation (``moderation.check_chat``).
    """
    if not room.live:
        raise NotLive()
    badge = None
    tiered: dict[str, Any] = {}  # -- subscription tiers: the badge's tier and loyalty months
    if room.creator and room.creator != user:
        level = await sub_tiers.badge_of(b, user, room.creator)
        if level is not None:
            badge, tiered = "sub", {"sub_badge": level}
        elif room.subscribers_only:
            raise Forbidden("chat is for subscribers only in this room")
    if room.creator != user:  # -- moderation: banned, muted, slow mode (the creator is none)
        await moderation.check_chat(b, room.room, user)
    ev = event("chat", room.room, **{"from": user, "text": text, "badge": badge}, **tiered)
    return await log_event(b, room.room, ev, evid="c:" + uuid.uuid4().hex, require_live=True)


async def set_mode(
    b: Backend, who: Identity, room: RoomInfo, subscribers_only: bool
) -> dict[str, bool]:
    """Turn subscriber-only chat on or off and tell the room (unlogged ``chat_mode``).

    Raises:
        Forbidden: Neither the room's creator nor an admin.
    """
    if room.creator != who.user and not who.is_admin:
        raise Forbidden("only the room's creator can change the chat mode")
    k = RoomKeys(room.room)
    ev = event("chat_mode", room.room, subscribers_only=subscribers_only)
    async with store_errors():
        await b.redis.hset(k.meta, "subs_only", "1" if subscribers_only else "0")
        await b.redis.spublish(k.channel, orjson.dumps(ev))
    return {"subscribers_only": subscribers_only}

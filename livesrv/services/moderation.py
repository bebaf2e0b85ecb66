"""Room moderation: moderators, mutes, bans, deleted chat lines and slow mode.

The state lives in the room's slot (``{r:ROOM}``: :class:`~livesrv.store.keys.RoomKeys`
``mods``, ``banned``, ``muted``, ``deleted``, the meta field ``slow``), so every node
enforces it: ``chat_gate.lua`` decides each chat line, ``moderate.lua`` applies each action.
Each action that changes something is logged as a room event, so every node learns it in
seq order; a ``banned`` event makes every node drop the banned user's connections from the
room (``realtime/hub.py``). The rules (who may do what to whom) are
:mod:`livesrv.services.modrules`.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest, Banned, Forbidden, LimitExceeded, Muted, NotFound, SlowMode
from ..store.facade import Backend, now_ms, store_errors
from ..store.keys import RoomKeys
from ..wire.tokens import Identity
from . import modrules
from .rooms import event, log_event


def _keys(k: RoomKeys, user: str) -> list[str]:
    return [k.meta, k.mods, k.banned, k.muted, k.slow(user)]


async def check_chat(b: Backend, room: str, user: str, *, slow: bool = True) -> None:
    """Whether ``user`` may post in ``room`` now (chat, and paid messages with ``slow``
    False); a chat let through under slow mode starts the user's wait.

    Raises:
        Banned: Banned from the room. Muted: Muted (``until`` in the reply).
        SlowMode: Slow mode; the user chatted less than its seconds ago.
    """
    status, value = await b.run(
        "chat_gate", _keys(RoomKeys(room), user), [user, "1" if slow else "0"]
    )
    if status == "banned":
        raise Banned()
    if status == "muted":
        raise Muted(modrules.mute_message(int(value)), until=int(value))
    if status == "slow":
        raise SlowMode(modrules.slow_message(int(value)), retry_after_ms=int(value))


async def require_not_banned(b: Backend, room: str, user: str) -> None:
    """Raises:
    Banned: ``user`` is banned from ``room``."""
    async with store_errors():
        if await b.redis.sismember(RoomKeys(room).banned, user):
            raise Banned()


async def mods(b: Backend, room: str) -> dict[str, Any]:
    """The room's moderators, by name."""
    async with store_errors():
        return {"room": room, "mods": sorted(await b.redis.smembers(RoomKeys(room).mods))}


async def state(b: Backend, room: str) -> dict[str, Any]:
    """The whole moderation state of a room (for its creator, moderators and admins):
    ``mods``, ``slow_mode``, ``banned`` and ``muted`` (``[{user, until}]``, still muted), at
    most ``LIST_LIMIT`` of each list.

    Raises:
        NotFound: No such room.
    """
    k = RoomKeys(room)
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        pipe.hget(k.meta, "creator")
        pipe.smembers(k.mods)
        pipe.hget(k.meta, "slow")
        pipe.sscan(k.banned, 0, count=modrules.LIST_LIMIT)
        pipe.hscan(k.muted, 0, count=modrules.LIST_LIMIT)
        creator, mod_set, slow, (_, banned), (_, muted) = await pipe.execute()
    if creator is None:
        raise NotFound(f"no room {room!r}")
    now = now_ms()
    return {
        "room": room,
        "creator": creator,
        "mods": sorted(mod_set),
        "slow_mode": int(slow or 0),
        "banned": sorted(banned)[: modrules.LIST_LIMIT],
        "muted": sorted(
            ({"user": u, "until": int(t)} for u, t in muted.items() if int(t) > now),
            key=lambda m: m["user"],
        )[: modrules.LIST_LIMIT],
    }


async def state_for(b: Backend, who: Identity, room: str) -> dict[str, Any]:
    """:func:`state`, for the room's creator, its moderators and admins.

    Raises:
        NotFound: No such room. Forbidden: Anyone else.
    """
    view = await state(b, room)
    if not (who.is_admin or who.user == view["creator"] or who.user in view["mods"]):
        raise Forbidden("only the room's creator and its moderators can see its moderation")
    return view


async def act(
    b: Backend, who: Identity, room: str, action: str, user: str = "", value: int = 0
) -> dict[str, Any]:
    """Apply one moderation action as ``who`` (see :func:`modrules.authorize`) and, when
    it changed something, log its room event (a ban is logged even when the user was
    banned already, so retrying a ban always removes the user from the room everywhere).

    Returns:
        The action's result (see docs/protocol.md, "Moderation").

    Raises:
        NotFound: No such room, or (``chat_delete``) no chat line with that seq.
        Forbidden, BadRequest: From the rules. LimitExceeded: ``MAX_MODS`` moderators.
    """
    value = modrules.check_value(action, value)
    k = RoomKeys(room)
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        pipe.hget(k.meta, "creator")
        pipe.sismember(k.mods, who.user)
        pipe.sismember(k.mods, user or "-")
        creator, actor_mod, target_mod = await pipe.execute()
    if creator is None:
        raise NotFound(f"no room {room!r}")
    modrules.authorize(
        action,
        actor=who.user,
        admin=who.is_admin,
        creator=creator,
        actor_is_mod=bool(actor_mod),
        target=user,
        target_is_mod=bool(target_mod),
    )
    status, out = await b.run(
        "moderate",
        [k.meta, k.mods, k.banned, k.muted, k.deleted, k.log],
        [action, user, value, modrules.MAX_MODS, b.settings.log_maxlen],
    )
    if status == "not_found":
        raise NotFound(f"no room {room!r}")
    if status == "no_chat":
        raise NotFound(f"no chat line with seq {value} in the room's log")
    if status == "full":
        raise LimitExceeded(f"a room can have at most {modrules.MAX_MODS} moderators")
    ev = _event(action, room, who.user, user, value, int(out))
    seq = 0
    if status == "ok" or action == "ban":
        seq = await log_event(b, room, ev)
    result = _result(action, room, user, value, int(out), seq)
    if action in modrules.OWNER_ACTIONS:
        result["mods"] = (await mods(b, room))["mods"]
    return result


def _event(action: str, room: str, by: str, user: str, value: int, out: int) -> dict[str, Any]:
    if action in ("mod_add", "mod_remove"):
        return event("moderator", room, user=user, added=action == "mod_add", by=by)
    if action == "mute":
        return event("muted", room, user=user, until=out, by=by)
    if action in ("ban", "unban"):
        return event("banned" if action == "ban" else "unbanned", room, user=user, by=by)
    if action == "chat_delete":
        return event("chat_deleted", room, chat_seq=value, by=by)
    if action == "slow_mode":
        return event("slow_mode", room, seconds=value, by=by)
    raise BadRequest(f"unknown action {action!r}")


def _result(action: str, room: str, user: str, value: int, out: int, seq: int) -> dict[str, Any]:
    """The reply of an action: ``seq`` is its event's (null when nothing changed)."""
    result: dict[str, Any] = {"room": room, "seq": seq or None}
    if action in modrules.TARGETED:
        result["user"] = user
    if action == "mute":
        result["until"] = out
    elif action == "chat_delete":
        result["chat_seq"] = value
    elif action == "slow_mode":
        result["seconds"] = value
    return result

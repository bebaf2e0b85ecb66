"""The ops of the LIVE mechanics: moderation, paid pinned messages, treasure boxes, LIVE
match, goals and the hype train (one service call each)."""

from __future__ import annotations

from typing import Any

from ..services import goals, match, moderation, paid_chat, treasure
from .optable import Caller, joined, op

# -- moderation (livesrv/services/moderation.py; rules: services/modrules.py) --


async def _moderate(s: Caller, a: dict[str, Any], action: str, value: int = 0) -> dict[str, Any]:
    room = a["room"]
    return await moderation.act(s.b, s.identity, room, action, a.get("user", ""), value)


@op("mod_add")
async def _mod_add(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await _moderate(s, a, "mod_add")


@op("mod_remove")
async def _mod_remove(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await _moderate(s, a, "mod_remove")


@op("mods")
async def _mods(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    await s.room(a["room"])
    return await moderation.mods(s.b, a["room"])


@op("moderation")
async def _moderation(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await moderation.state_for(s.b, s.identity, a["room"])


@op("mute")
async def _mute(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await _moderate(s, a, "mute", a["seconds"])


@op("ban")
async def _ban(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await _moderate(s, a, "ban")


@op("unban")
async def _unban(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await _moderate(s, a, "unban")


@op("chat_delete")
async def _chat_delete(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await _moderate(s, a, "chat_delete", a["seq"])


@op("slow_mode")
async def _slow_mode(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await _moderate(s, a, "slow_mode", a["seconds"])


# -- end moderation --


# -- paid pinned messages and treasure boxes (services/paid_chat.py, services/treasure.py) --


@op("paid_chat")
async def _paid_chat(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    info = s.member_of(a["room"])
    return await paid_chat.send(s.b, s.user, a["room"], info, a["text"], a["coins"], a["key"])


@op("unpin")
async def _unpin(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await paid_chat.unpin(s.b, s.identity, await s.room(a["room"]), a["pin"])


@op("box_drop")
async def _box_drop(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    info = s.member_of(a["room"])
    return await treasure.drop(s.b, s.user, a["room"], info, a["coins"], a["seconds"], a["key"])


@op("box_claim")
async def _box_claim(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await treasure.claim(s.b, s.user, await joined(s, a["room"]), a["box"])


# -- end paid pinned messages and treasure boxes --


# -- live match, goals, hype train (services/match.py, services/goals.py) --


@op("match_invite")
async def _match_invite(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await match.invite(s.b, s.identity, a["room"], a["opponent"])


@op("match_accept")
async def _match_accept(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await match.accept(s.b, s.identity, a["match"])


@op("match_decline")
async def _match_decline(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await match.decline(s.b, s.identity, a["match"])


@op("goal_set")
async def _goal_set(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    room = await s.room(a["room"])
    return await goals.set_goal(s.b, s.identity, room, a["kind"], a["target"], a.get("gift"))


# -- end live match, goals, hype train --

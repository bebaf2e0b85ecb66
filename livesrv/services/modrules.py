"""Moderation rules, sans I/O: who may do what to whom, the limits of each action, and how
a deleted chat line is hidden from replay and history.

The I/O around them is :mod:`livesrv.services.moderation` (and ``moderate.lua``,
``chat_gate.lua`` in the room's slot); tested with no socket (tests/test_modrules.py).
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest, Forbidden
from ..wire.schema import MOD_ACTIONS

ACTIONS = MOD_ACTIONS
OWNER_ACTIONS = ("mod_add", "mod_remove")  # the room's creator (or an admin) only
TARGETED = ("mod_add", "mod_remove", "mute", "ban", "unban")  # need a user
PROTECTED = ("mute", "ban")  # may not aim at the creator, nor (for a moderator) a moderator
MAX_MODS = 100  # moderators per room
MAX_MUTE_SECONDS = 7 * 86400
MAX_SLOW_SECONDS = 3600
LIST_LIMIT = 200  # banned / muted users listed by the moderation view
TOMBSTONE = "deleted"  # what replay and history show in place of a deleted chat line


def authorize(
    action: str,
    *,
    actor: str,
    admin: bool,
    creator: str,
    actor_is_mod: bool,
    target: str = "",
    target_is_mod: bool = False,
) -> None:
    """Check that ``actor`` may apply ``action`` to ``target`` in a room of ``creator``.

    The creator and admins may do everything; moderators everything but appoint or remove
    moderators. Nobody mutes or bans the creator or themselves, and a moderator does not
    mute or ban another moderator (the creator removes the moderator first, or bans them:
    a ban also ends the appointment).

    Raises:
        BadRequest: Unknown action, a targeted action without a user, or one aimed at
            oneself or (for ``mod_add``) at the creator.
        Forbidden: The actor may not do it.
    """
    if action not in ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(ACTIONS)}")
    if action in TARGETED and not target:
        raise BadRequest("user is required")
    owner = admin or actor == creator
    if action in OWNER_ACTIONS:
        if not owner:
            raise Forbidden("only the room's creator appoints or removes moderators")
        if target == creator:
            raise BadRequest("the creator moderates the room already")
        return
    if not (owner or actor_is_mod):
        raise Forbidden("only the room's creator and its moderators can moderate it")
    if action in PROTECTED:
        if target == actor:
            raise BadRequest("you cannot do that to yourself")
        if target == creator:
            raise Forbidden("the room's creator cannot be muted or banned")
        if target_is_mod and not owner:
            raise Forbidden("a moderator cannot mute or ban another moderator")


def check_value(action: str, value: int) -> int:
    """The action's number (mute or slow mode seconds, the chat seq), range-checked.

    Raises:
        BadRequest: Out of range for the action.
    """
    if action == "mute" and not 0 <= value <= MAX_MUTE_SECONDS:
        raise BadRequest(f"seconds must be between 0 and {MAX_MUTE_SECONDS}")
    if action == "slow_mode" and not 0 <= value <= MAX_SLOW_SECONDS:
        raise BadRequest(f"seconds must be between 0 and {MAX_SLOW_SECONDS}")
    if action == "chat_delete" and value < 1:
        raise BadRequest("seq is required: the seq of a chat line")
    return value


def chats_in(events: list[dict[str, Any]]) -> list[int]:
    """The seqs of the chat lines among logged events (the ones a deletion may hide)."""
    return [ev["seq"] for ev in events if ev.get("ev") == "chat" and "seq" in ev]


def hide_deleted(events: list[dict[str, Any]], deleted: set[int]) -> list[dict[str, Any]]:
    """Replace each deleted chat line by a tombstone ``{ev: "deleted", room, seq, ts}``: the
    line's text and author are gone, its seq stays, so seqs still grow by exactly 1."""
    if not deleted:
        return events
    return [
        {"ev": TOMBSTONE, "room": ev.get("room"), "seq": ev["seq"], "ts": ev.get("ts")}
        if ev.get("ev") == "chat" and ev.get("seq") in deleted
        else ev
        for ev in events
    ]


def banned_in(batch: list[dict[str, Any]]) -> set[str]:
    """The users a tick's batch bans: their connections leave the room after it is sent."""
    return {ev["user"] for ev in batch if ev.get("ev") == "banned" and "seq" in ev}


def mute_message(until_ms: int) -> str:
    return f"you are muted in this room until {until_ms} (unix ms)"


def slow_message(wait_ms: int) -> str:
    return f"slow mode: you can chat again in {wait_ms} ms"


def join_fields(
    mods: Any, slow: str | None, muted_until: str | None, now_ms: int
) -> dict[str, Any]:
    """What a ``join`` reply says of the room's moderation: ``mods`` (sorted), ``slow_mode``
    (seconds, 0 off) and ``muted_until`` (unix ms, 0 when the joiner is not muted now)."""
    until = int(muted_until or 0)
    return {
        "mods": sorted(mods),
        "slow_mode": int(slow or 0),
        "muted_until": until if until > now_ms else 0,
    }

"""Paid pinned messages (Super Chat): a viewer pays coins for a highlighted chat line that
stays pinned in the room for as long as its tier says; the creator earns a share through
settlement, like a gift.

The debit is ``spend.lua`` (kind ``paid_chat``: idempotent by key, counted in the rolling
day limit, with the outbox entry naming the creator as earner). The pin lives in the room's
meta hash as the field ``pin:ID`` (a JSON object with ``until``), written by the same
``room_event.lua`` call that logs the ``paid_chat`` event, so the event and the pin exist
together or not at all; the settlement worker logs both for a debit whose event was never
logged. Expired pins are dropped when a ``join`` reads them; an unpin writes an empty
value with its ``unpinned`` event.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ..errors import BadRequest, Banned, Forbidden, Muted, NotFound, NotLive
from ..store.facade import Backend, args_hash, now_ms, store_errors
from ..store.keys import RoomKeys
from ..wire.tokens import Identity
from . import moderation, wallet
from .rooms import RoomInfo, event, log_event

PIN_FIELD = "pin:"
MAX_PINS_SHOWN = 50  # pins a join reply carries at most (the most paid first)


def pin_seconds(tiers: tuple[tuple[int, int], ...], coins: int) -> int:
    """How long a message paid ``coins`` stays pinned: the seconds of the highest tier
    whose minimum ``coins`` reaches (sans-I/O).

    Raises:
        BadRequest: Fewer coins than the lowest tier's minimum.
    """
    seconds = None
    for least, secs in tiers:
        if coins >= least:
            seconds = secs
    if seconds is None:
        raise BadRequest(f"a paid message costs at least {tiers[0][0]} coins")
    return seconds


def pin_id(user: str, key: str, exp: int) -> str:
    """The pin of the message paid with ``key`` in the key generation ending at ``exp``."""
    return "m" + hashlib.sha1(f"{user}\n{key}\n{exp}".encode()).hexdigest()[:16]


def paid_digest(room: str, text: str, coins: int) -> str:
    return args_hash("paid_chat", {"room": room, "text": text, "coins": coins})


def live_pins(meta: dict[str, str], now: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The pins of a room meta hash still pinned at ``now`` (the most paid first, then the
    newest), and the fields of ended or unpinned ones (sans-I/O)."""
    pins, ended = [], []
    for name, value in meta.items():
        if not name.startswith(PIN_FIELD):
            continue
        pin = orjson.loads(value) if value else None
        if pin is None or int(pin["until"]) <= now:
            ended.append(name)
        else:
            pins.append(pin)
    pins.sort(key=lambda p: (-int(p["coins"]), -int(p["until"])))
    return pins, ended


async def send(
    b: Backend, user: str, room: str, info: RoomInfo | None, text: str, coins: int, key: str
) -> dict[str, Any]:
    """A member's paid message: debit, then log it (pinned when its tier says so).

    A retry with the same key answers the first result, whatever the room is now.

    Returns:
        ``{coins (balance), seq, pin, until}``: ``until`` is the unix ms the pin ends
        (0: not pinned).

    Raises:
        Forbidden: Not in the room, or the creator's own room. NotLive: Not live.
        Banned, Muted: Moderation (``moderation.check_chat``, without slow mode).
        BadRequest: Below the lowest tier. InsufficientFunds, LimitExceeded,
        IdempotencyConflict: from the debit.
    """
    seconds = pin_seconds(b.catalog.paid_chat_tiers, coins)
    digest = paid_digest(room, text, coins)
    try:
        if info is None:
            raise Forbidden("join the room first")
        if not info.live or info.creator is None:
            raise NotLive()
        if info.creator == user:
            raise Forbidden("you cannot pay for messages in your own room")
        await moderation.check_chat(b, room, user, slow=False)  # banned or muted: refused
    except (Forbidden, NotLive, Banned, Muted):
        first = await wallet.first_result(b, user, key, digest)
        if first is None:
            raise
        return first
    exp = wallet.generation_expiry(b)
    pid = pin_id(user, key, exp)
    until = now_ms() + seconds * 1000 if seconds else 0
    share = b.catalog.paid_chat_share_bps
    ev, meta = message_event(room, user, text, coins, pid, until)
    _, reply, exp = await wallet.spend(
        b,
        user,
        kind="paid_chat",
        amount=coins,
        key=key,
        digest=digest,
        payload={
            "room": room,
            "e": [[info.creator, f"paid_chat:{share}", share]],
            "ev": ev,
            "evid": "pc:" + pid,
            "meta": list(meta),
            "x": exp,
        },
        extra_key=b.user(user).wallet,
        exp=exp,
        reply={"pin": pid, "until": until},
    )
    # a retry: the pin and end of the first try (its event may still be unlogged)
    pid, until = reply["pin"], int(reply["until"])
    ev, meta = message_event(room, user, text, coins, pid, until)
    seq = await log_event(b, room, ev, evid="pc:" + pid, meta=meta, exp=exp)
    return {"coins": reply["coins"], "seq": seq, "pin": pid, "until": until}


def message_event(
    room: str, user: str, text: str, coins: int, pid: str, until: int
) -> tuple[dict[str, Any], tuple[str, str]]:
    fields = {"from": user, "text": text, "coins": coins, "pin": pid, "until": until}
    pin = orjson.dumps(fields).decode() if until else ""
    return event("paid_chat", room, **fields), ((PIN_FIELD + pid, pin) if until else ("", ""))


async def pins(b: Backend, room: str) -> list[dict[str, Any]]:
    """The room's pinned paid messages for a ``join`` reply (``{from, text, coins, pin,
    until}``, the most paid first); ended ones are removed from the store on the way."""
    k = RoomKeys(room)
    async with store_errors():
        meta = await b.redis.hgetall(k.meta)
        shown, ended = live_pins(meta, now_ms())
        if ended:
            await b.redis.hdel(k.meta, *ended)
    return shown[:MAX_PINS_SHOWN]


async def unpin(b: Backend, who: Identity, room: RoomInfo, pin: str) -> dict[str, Any]:
    """End a pin early (no refund); logs ``unpinned``.

    Raises:
        Forbidden: Neither the room's creator, one of its moderators nor an admin.
        NotFound: No such pin, or it already ended.
    """
    k = RoomKeys(room.room)
    async with store_errors():
        raw = await b.redis.hget(k.meta, PIN_FIELD + pin)
        moderator = await b.redis.sismember(k.mods, who.user)
    if room.creator != who.user and not who.is_admin and not moderator:
        raise Forbidden("only the room's creator or a moderator can unpin")
    if not raw or int(orjson.loads(raw)["until"]) <= now_ms():
        raise NotFound(f"no pinned message {pin!r}")
    ev = event("unpinned", room.room, pin=pin, by=who.user)
    seq = await log_event(b, room.room, ev, meta=(PIN_FIELD + pin, ""))
    return {"seq": seq}

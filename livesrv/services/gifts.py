"""Gifts: a viewer pays coins, the room sees the gift, the creator earns diamonds later."""

from __future__ import annotations

from typing import Any

from ..errors import Forbidden, NotFound, NotLive
from ..store.facade import Backend, args_hash
from . import rooms, wallet
from .rooms import RoomInfo, event, log_event


def earners_of_gift(b: Backend, creator: str) -> list[list[Any]]:
    """Who earns from a gift and at what share: the room's creator."""
    share = b.catalog.gift_share_bps
    return [[creator, f"gift:{share}", share]]


async def send_gift(
    b: Backend, user: str, room: RoomInfo, gift: str, count: int, key: str
) -> dict[str, Any]:
    """Debit the viewer and log the gift in the room (both idempotent by ``key``).

    On a store that is not a cluster both happen in one atomic step (``gift.lua``). On a
    cluster the payer's slot and the room's may be on two masters: two steps, and a retry
    after a crash between them finds the debit done and logs the event; the settlement
    worker also logs any gift it finds unlogged, so none is lost.

    Raises:
        NotFound: Unknown gift. NotLive: The room is not live.
        Forbidden: Gifting your own room (a creator would earn its share back).
        InsufficientFunds, LimitExceeded, IdempotencyConflict: from the debit.
    """
    item = b.catalog.gifts.get(gift)
    if item is None:
        raise NotFound(f"unknown gift {gift!r}")
    if not room.live or room.creator is None:
        raise NotLive()
    if room.creator == user:
        raise Forbidden("you cannot send gifts to your own room")
    value = item.coins * count
    ev = event(
        "gift",
        room.room,
        **{
            "from": user,
            "gift": gift,
            "count": count,
            "combo": count,
            "coins": value,
            "streak": item.streak,
        },
    )
    exp = wallet.generation_expiry(b)
    evid = gift_event_id(user, key, exp)
    payload: dict[str, Any] = {"room": room.room, "e": earners_of_gift(b, room.creator)}
    if b.is_cluster:
        # the event goes beside the debit for the settlement worker to log should the node
        # fail between the two steps; gift.lua logs it in the debit's own step (the entry
        # says "logged"), so there it would only take the outbox's memory, for good
        payload.update(ev=ev, evid=evid, x=exp)
    keys, args = wallet.spend_step(
        b,
        user,
        kind="gift",
        amount=value,
        key=key,
        digest=gift_digest(room.room, gift, count),
        payload=payload,
        extra_key=b.user(user).combo(room.room, gift),
        exp=exp,
        params=(b.catalog.streak_window_ms if item.streak else 0, count),
    )
    if b.is_cluster:  # the payer's slot and the room's are apart: two steps
        _, reply, exp = wallet.spend_outcome(b, value, *await b.run("spend", keys, args))
    else:  # one store holds both: the debit and the room event in one step (gift.lua)
        del ev["combo"]  # the script puts in the streak the debit counted
        ekeys, eargs, fence = rooms.event_step(
            b, room.room, ev, evid=evid, top_user=user, top_coins=value, exp=exp
        )
        status, out, gen, *logged = await b.run(
            "gift", [*keys, *ekeys], [len(keys), len(args), *args, *eargs]
        )
        _, reply, exp = wallet.spend_outcome(b, value, status, out, gen)
        if logged:
            rooms.event_outcome(b, room.room, evid, fence, logged[0], logged[1:])
            return {"coins": reply["coins"], "combo": reply["combo"]}
    ev["combo"] = reply["combo"]
    evid = gift_event_id(user, key, exp)  # a replay: the generation of the first send
    await log_event(b, room.room, ev, evid=evid, top_user=user, top_coins=value, exp=exp)
    return {"coins": reply["coins"], "combo": reply["combo"]}


def gift_event_id(user: str, key: str, exp: int) -> str:
    """The room event id of a gift: one per key generation (``exp``), so a gift sent
    again with a key whose record expired is a new gift, and a retry within it is not."""
    return f"g:{user}:{key}:{exp}"


def gift_digest(room: str, gift: str, count: int) -> str:
    return args_hash("gift", {"room": room, "gift": gift, "count": count})


async def replayed_gift(
    b: Backend, user: str, room: str, gift: str, count: int, key: str
) -> dict[str, Any] | None:
    """The first result of a gift already sent with ``key`` and these arguments, or None."""
    reply = await wallet.first_result(b, user, key, gift_digest(room, gift, count))
    return None if reply is None else {"coins": reply["coins"], "combo": reply["combo"]}


async def gift_in_room(
    b: Backend, user: str, room: str, info: RoomInfo | None, gift: str, count: int, key: str
) -> dict[str, Any]:
    """A member's gift; ``info`` is the room as the member's session knows it (None: not a
    member). A retried gift that went through gets its first result, whatever the room is
    now (left, closed, gone).

    Raises:
        Forbidden: Not a member. Otherwise as :func:`send_gift`.
    """
    try:
        if info is None:
            raise Forbidden("join the room first")
        return await send_gift(b, user, info, gift, count, key)
    except (Forbidden, NotLive, NotFound):
        done = await replayed_gift(b, user, room, gift, count, key)
        if done is None:
            raise
        return done

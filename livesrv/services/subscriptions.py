"""LIVE subscriptions: a viewer pays the creator's monthly price; chat shows a badge."""

from __future__ import annotations

import time
from typing import Any

from ..errors import BadRequest, Forbidden, NotFound
from ..store.facade import Backend, args_hash, store_errors
from ..wire.tokens import Identity
from . import wallet
from .rooms import RoomInfo, event, log_event

DAY = 86400


async def price_of(b: Backend, creator: str) -> int:
    async with store_errors():
        raw = await b.redis.hget(b.user(creator).settings, "sub_price")
    return int(raw) if raw else b.catalog.default_sub_price


async def set_price(b: Backend, creator: str, price: int) -> dict[str, Any]:
    """Set a creator's price for future subscriptions.

    Raises:
        BadRequest: Not one of the catalogue's allowed prices.
    """
    if price not in b.catalog.sub_prices:
        allowed = ", ".join(map(str, b.catalog.sub_prices))
        raise BadRequest(f"price must be one of {allowed}")
    async with store_errors():
        await b.redis.hset(b.user(creator).settings, "sub_price", price)
    return {"price": price}


async def set_own_price(b: Backend, who: Identity, price: int) -> dict[str, Any]:
    """A creator sets their own price (:func:`set_price`).

    Raises:
        Forbidden: Not a creator. BadRequest: Not an allowed price.
    """
    if not who.is_creator:
        raise Forbidden("only creators set a subscription price")
    return await set_price(b, who.user, price)


async def until_of(b: Backend, user: str, creator: str) -> int:
    """When ``user``'s subscription to ``creator`` ends (unix s); 0 when it has ended."""
    async with store_errors():
        raw = await b.redis.get(b.user(user).sub(creator))
    until = int(raw) if raw else 0
    return until if until > time.time() else 0


async def subscribe(b: Backend, user: str, room: RoomInfo, key: str) -> dict[str, Any]:
    """Buy (or extend by) ``sub_days`` of the room creator's subscription.

    Raises:
        NotFound: The room has no creator. Forbidden: Subscribing to yourself.
        InsufficientFunds, LimitExceeded, IdempotencyConflict: from the debit.
    """
    creator = room.creator
    if creator is None:
        raise NotFound(f"no room {room.room!r}")
    if creator == user:
        raise Forbidden("you cannot subscribe to yourself")
    price = await price_of(b, creator)
    share = b.catalog.sub_share_bps
    ev = event("sub", room.room, **{"from": user, "until": 0})
    exp = wallet.generation_expiry(b)
    _, reply, exp = await wallet.spend(
        b,
        user,
        kind="sub",
        amount=price,
        key=key,
        digest=args_hash("subscribe", {"room": room.room}),
        payload={
            "room": room.room,
            "e": [[creator, f"sub:{share}", share]],
            "ev": ev,
            "evid": f"s:{user}:{key}:{exp}",
            "x": exp,
        },
        extra_key=b.user(user).sub(creator),
        exp=exp,
        params=(b.catalog.sub_days * DAY, 0),
    )
    ev["until"] = reply["until"]
    # the event id names the key generation (``exp``) of the first subscribe with this key
    await log_event(b, room.room, ev, evid=f"s:{user}:{key}:{exp}", exp=exp)
    return {"until": reply["until"], "coins": reply["coins"]}

"""LIVE subscriptions: a viewer pays the creator's monthly price; chat shows a badge."""

from __future__ import annotations

import time
from typing import Any

from ..errors import BadRequest, Forbidden
from ..store.facade import Backend, store_errors
from ..wire.tokens import Identity
from . import sub_rules, sub_tiers
from .rooms import RoomInfo

DAY = 86400


async def price_of(b: Backend, creator: str) -> int:
    async with store_errors():
        raw = await b.redis.hget(b.user(creator).settings, "sub_price")
    return int(raw) if raw else b.catalog.default_sub_price


async def set_price(b: Backend, creator: str, price: int) -> dict[str, Any]:
    """Set a creator's price for future subscriptions (tier 1; a higher tier of the
    creator's tiers that no longer costs more is dropped).

    Raises:
        BadRequest: Not one of the catalogue's allowed prices.
    """
    if price not in b.catalog.sub_prices:
        allowed = ", ".join(map(str, b.catalog.sub_prices))
        raise BadRequest(f"price must be one of {allowed}")
    k = b.user(creator).settings
    async with store_errors():
        tiers = sub_rules.parse_tiers(await b.redis.hget(k, "sub_tiers"))
        fields: dict[str, Any] = {"sub_price": price}
        if tiers:  # -- subscription tiers: tier 1 is the price (services/sub_tiers.py) --
            fields["sub_tiers"] = ",".join(map(str, sub_rules.with_tier1(tiers, price)))
        await b.redis.hset(k, mapping=fields)
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
    """Buy (or extend by) one period of the room creator's subscription at the current tier
    (tier 1 when none): :func:`.sub_tiers.subscribe`, which also upgrades."""
    return await sub_tiers.subscribe(b, user, room, key)

"""The ops of subscription tiers and gifted subscriptions (one service call each)."""

from __future__ import annotations

from typing import Any

from ..errors import Forbidden
from ..services import moderation, sub_gifts, sub_tiers
from .optable import Caller, op

# -- subscription tiers, gifted subs (services/sub_tiers.py, sub_gifts.py, sub_rules.py) --


@op("sub_tiers")
async def _sub_tiers(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await sub_tiers.set_tiers(s.b, s.identity, a["prices"])


@op("sub_gift")
async def _sub_gift(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    info = s.member_of(a["room"])
    try:
        return await sub_gifts.gift_subs(
            s.b,
            s.user,
            a["room"],
            info,
            tier=a.get("tier", 1),
            count=a.get("count"),
            to=a.get("to"),
            key=a["key"],
        )
    except Forbidden:
        if info is None:  # removed from the room by a ban: say so
            await moderation.require_not_banned(s.b, a["room"], s.user)
        raise


# -- end subscription tiers, gifted subs --

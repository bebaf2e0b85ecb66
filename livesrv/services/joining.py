"""What a viewer learns about a room on joining it, besides the room itself: the part that
is the same for every viewer (:func:`room_view`: read once per batch of joiners of a room,
see ``realtime/replays.py``) and the part that is the viewer's own (:func:`member_view`)."""

from __future__ import annotations

import contextlib
from typing import Any

from ..errors import NotFound
from ..store.facade import Backend
from . import goals, match, paid_chat, shop, sub_tiers, treasure


async def room_view(b: Backend, room: str, pinned: str | None) -> dict[str, Any]:
    """The fields of a ``join`` reply that every viewer of ``room`` gets alike:
    ``pinned_product`` (the pinned product's view, or None), ``pins``, ``boxes``,
    ``match``, ``goal`` and ``hype``.

    A shared snapshot: callers must not change it.
    """
    view: dict[str, Any] = {"pinned_product": None}
    if pinned:
        with contextlib.suppress(NotFound):
            view["pinned_product"] = shop.product_view(await shop.get(b, pinned))
    view["pins"] = await paid_chat.pins(b, room)  # -- paid pins, treasure boxes --
    view["boxes"] = await treasure.join_view(b, room)
    view["match"] = await match.view(b, room)  # -- live match, goal, hype train --
    view.update(await goals.view(b, room))
    return view


async def member_view(b: Backend, user: str, creator: str | None) -> dict[str, Any]:
    """The viewer's own fields of a ``join`` reply: ``sub_price``, ``subscribed_until``,
    ``sub_tiers``, ``sub_tier`` and ``sub_months`` (when the room has a creator)."""
    if not creator:
        return {}
    return await sub_tiers.member_view(b, user, creator)  # one round trip

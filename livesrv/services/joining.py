"""What a viewer learns about a room's creator and shop on joining it."""

from __future__ import annotations

import contextlib
from typing import Any

from ..errors import NotFound
from ..store.facade import Backend
from . import shop, sub_tiers


async def member_view(
    b: Backend, user: str, creator: str | None, pinned: str | None
) -> dict[str, Any]:
    """``sub_price``, ``subscribed_until``, ``sub_tiers``, ``sub_tier`` and ``sub_months``
    (when the room has a creator) and
    ``pinned_product`` (the pinned product's view, or None) for ``user``'s join reply."""
    view: dict[str, Any] = {"pinned_product": None}
    if creator:
        view.update(await sub_tiers.member_view(b, user, creator))  # one round trip
    if pinned:
        with contextlib.suppress(NotFound):
            view["pinned_product"] = shop.product_view(await shop.get(b, pinned))
    return view

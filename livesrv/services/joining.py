"""What a viewer learns about a room's creator and shop on joining it."""

from __future__ import annotations

import contextlib
from typing import Any

from ..errors import NotFound
from ..store.facade import Backend
from . import shop, subscriptions


async def member_view(
    b: Backend, user: str, creator: str | None, pinned: str | None
) -> dict[str, Any]:
    """``sub_price`` and ``subscribed_until`` (when the room has a creator) and
    ``pinned_product`` (the pinned product's view, or None) for ``user``'s join reply."""
    view: dict[str, Any] = {"pinned_product": None}
    if creator:
        view["sub_price"] = await subscriptions.price_of(b, creator)
        view["subscribed_until"] = await subscriptions.until_of(b, user, creator)
    if pinned:
        with contextlib.suppress(NotFound):
            view["pinned_product"] = shop.product_view(await shop.get(b, pinned))
    return view
